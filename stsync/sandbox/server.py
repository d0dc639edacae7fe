"""Adapters around ``App``: a stdlib threading HTTP/1.1 server and in-process httpx transports.

The stdlib server is used (not an ASGI stack) because fault injection needs the raw socket: a dropped
connection closes it without a status line, a truncated body promises the full Content-Length and then
stops. Keep-alive (HTTP/1.1) matters for client speed, as it does against the real gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from stsync.sandbox.app import App, Request, Response

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stsync-sandbox"
    sys_version = ""
    # TCP_NODELAY: headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK, ~40 ms on every small response, which the real gateway does not add.
    disable_nagle_algorithm = True
    app: App  # set on the subclass made per server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request.from_target(self.command, self.path, dict(self.headers.items()), body)
        resp = self.app.handle(req)
        if resp.delay_s:
            time.sleep(resp.delay_s)  # injected latency, the whole point of that fault
        if resp.action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if resp.action == "truncate":
            self.send_header("Connection", "close")
        self.end_headers()
        if resp.action == "truncate":
            self.wfile.write(resp.body[: resp.keep])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(resp.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: core code never prints; the request log lives in App.requests."""


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A slow client must not starve others; the default backlog (5) is too small for parallel clients.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response (killed by a crash test, timed out) is normal here, not a
        traceback on stderr; anything else is still reported."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(app: App, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False) -> SandboxHTTPServer:
    """Bind the sandbox; a non-loopback host is refused unless `allow_remote` (the data is fake, the
    credentials are public: exposing it on a network is almost always a mistake)."""
    if host not in LOOPBACK and not allow_remote:
        raise ValueError(f"refusing to listen on non-loopback host {host!r} without allow_remote")
    handler = type("BoundHandler", (_Handler,), {"app": app})
    return SandboxHTTPServer((host, port), handler)


def serve_in_thread(server: SandboxHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="stsync-sandbox", daemon=True)
    t.start()
    return t


def _to_request(request: httpx.Request, body: bytes) -> Request:
    target = request.url.raw_path.decode("ascii")
    return Request.from_target(request.method, target, dict(request.headers.items()), body)


def _to_response(resp: Response, request: httpx.Request) -> httpx.Response:
    if resp.action == "drop":
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    if resp.action == "truncate":
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body: received {resp.keep} bytes, "
            f"expected {len(resp.body)}",
            request=request,
        )
    headers = [*resp.headers, ("Content-Length", str(len(resp.body)))]
    return httpx.Response(resp.status, headers=headers, content=resp.body, request=request)


class SandboxTransport(httpx.BaseTransport):
    """Calls the same App without sockets; drop/truncate faults surface as httpx.RemoteProtocolError."""

    def __init__(self, app: App) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = self.app.handle(_to_request(request, request.read()))
        if resp.delay_s:
            time.sleep(resp.delay_s)
        return _to_response(resp, request)


class AsyncSandboxTransport(httpx.AsyncBaseTransport):
    """Async twin of SandboxTransport (the App is synchronous and fast; no thread hop needed)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        resp = self.app.handle(_to_request(request, body))
        if resp.delay_s:
            await asyncio.sleep(resp.delay_s)
        return _to_response(resp, request)
