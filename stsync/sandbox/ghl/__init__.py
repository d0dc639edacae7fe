"""A local GoHighLevel (LeadConnector API v2, ``Version: 2021-07-28``) for tests and demos.

Python API::

    from stsync.sandbox.ghl import GhlSandbox, GhlOptions
    opts = GhlOptions(seed=42, locations={"loc-sandbox-1": "pit-sandbox-token-1"})
    with GhlSandbox.start(opts) as g:     # own port on 127.0.0.1, daemon thread
        g.url                             # "http://127.0.0.1:PORT"; the API base (f"{g.url}/contacts/upsert")
        g.dump()                          # {"contacts", "opportunities", "pipelines", "custom_fields", "webhooks"}
        g.requests                        # [{method, path, query, status, body}] of API and webhook calls
        g.count_429                       # 429s served (limiter and faults)
        g.webhook_url("sales")            # an inbound webhook-trigger URL; payloads land in dump()["webhooks"]["sales"]
        g.faults.set({...}); g.faults.clear()   # the ServiceTitan sandbox's rule format (stsync.sandbox.faults)
        g.transport()                     # httpx transport into the same app, no sockets

Endpoints, error shapes and the known differences from the real API: ``docs/ghl-sandbox.md``.
Admin endpoints (no auth, not rate limited, not logged): ``GET /_ghl/dump``, ``GET|DELETE /_ghl/requests``,
``GET|POST|DELETE /_ghl/faults``, ``POST /_ghl/hooks {"name": ..., "locationId"?: ...}``.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import httpx

from stsync.sandbox.faults import Faults
from stsync.sandbox.ghl.app import GhlApp
from stsync.sandbox.ghl.options import API_VERSION, INSTALL_STAGES, SALES_STAGES, GhlOptions
from stsync.sandbox.server import (
    LOOPBACK,
    AsyncSandboxTransport,
    SandboxHTTPServer,
    SandboxTransport,
    _Handler,
    serve_in_thread,
)

__all__ = ["API_VERSION", "INSTALL_STAGES", "SALES_STAGES", "GhlApp", "GhlOptions", "GhlSandbox"]


def _make_server(app: GhlApp, opts: GhlOptions) -> SandboxHTTPServer:
    """`stsync.sandbox.server.make_server` with TCP_NODELAY: GHL calls are many small request/response
    pairs on one keep-alive connection, where Nagle plus delayed ACKs would add ~40 ms to each."""
    if opts.host not in LOOPBACK and not opts.allow_remote:
        raise ValueError(f"refusing to listen on non-loopback host {opts.host!r} without allow_remote")
    # The adapters only call `.handle(Request) -> Response`, which GhlApp provides.
    handler = type("GhlHandler", (_Handler,), {"app": app, "disable_nagle_algorithm": True})
    return SandboxHTTPServer((opts.host, opts.port), handler)


class GhlSandbox:
    """One running GHL sandbox: store, app, HTTP server thread. Use `GhlSandbox.start(opts)` as a context manager."""

    def __init__(self, opts: GhlOptions) -> None:
        self.opts = opts
        self.faults = Faults()
        if opts.faults:
            self.faults.set(opts.faults)
        self.app = GhlApp(opts, self.faults)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, opts: GhlOptions | None = None) -> GhlSandbox:
        g = cls(opts or GhlOptions())
        g._server = _make_server(g.app, g.opts)
        g._thread = serve_in_thread(g._server)
        return g

    def __enter__(self) -> GhlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_forever(self) -> None:
        """Block until interrupted (for a CLI)."""
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("GHL sandbox is not running")
        addr = self._server.server_address
        host, port = str(addr[0]), int(addr[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def dump(self) -> dict[str, Any]:
        """Ground truth: contacts and opportunities by id (as served), pipelines, custom fields, webhooks."""
        return self.app.store.dump()

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.app._lock:
            return list(self.app.requests)

    def clear_requests(self) -> None:
        with self.app._lock:
            self.app.requests.clear()

    @property
    def count_429(self) -> int:
        return self.app.count_429

    def webhook_url(self, name: str, location_id: str | None = None) -> str:
        """A live inbound webhook-trigger URL (``/hooks/{locationId}/webhook-trigger/{uuid}``) for `name`."""
        path = self.app.register_hook(name, location_id)
        return f"{self.url}{path}" if self._server is not None else path

    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(cast(Any, self.app))

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return AsyncSandboxTransport(cast(Any, self.app))
