"""Helpers of the events tests: merge pages with capture (as a sync does), a local HTTP sink that counts what
it is sent, workflows stored from YAML text, and polls with a clock the test moves."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import psycopg

from stsync.events.actions import Actions, ActionSettings, SmtpSettings
from stsync.events.definitions import read_workflows
from stsync.events.poll import PollResult, PollSettings, poll
from stsync.events.service import store_workflows
from stsync.events.store import open_events
from stsync.ghl.client import GhlSettings
from stsync.sync.merge import Capture
from stsync.sync.repository import ConnectionPool, SyncLog
from stsync.sync.streams import STREAMS_BY_NAME

CHECKPOINT: dict[str, str | None] = {"continue_from": "t", "high_water": None}
_T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _stamp(n: int) -> str:
    return (_T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")


DEFAULT = Capture()


def write(dsn: str, stream: str, *pages: list[dict[str, Any]], capture: Capture | None = DEFAULT) -> list[int]:
    """Merge each page on one connection; the events each page wrote."""

    async def go() -> list[int]:
        pool = ConnectionPool(dsn)
        repo = await pool.stream(STREAMS_BY_NAME[stream], capture)
        log = SyncLog(uuid.uuid4(), stream, "incremental", datetime.now(UTC))
        try:
            out = []
            for records in pages:
                body = orjson.dumps({"hasMore": False, "continueFrom": "t", "data": records})
                out.append((await repo.write_page(body, log, CHECKPOINT)).events)
            return out
        finally:
            await pool.close()

    return asyncio.run(go())


def events(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT entity, st_id, event_type, old_values, new_values FROM automation.events ORDER BY id"
        ).fetchall()


def estimate(i: int, status: str = "Open", n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": i, "jobId": 100 + i, "customerId": 200 + i, "status": {"name": status, "value": 1},
        "subtotal": 1500.0, "tax": 0, "active": True, "createdOn": _stamp(0), "modifiedOn": _stamp(n), **extra,
    }  # fmt: skip


def job(i: int, status: str = "Scheduled", n: int = 0, bu: int = 1) -> dict[str, Any]:
    return {
        "id": i, "jobNumber": str(i), "customerId": 200 + i, "locationId": 300 + i, "businessUnitId": bu,
        "jobStatus": status, "total": 10, "active": True, "createdOn": _stamp(0), "modifiedOn": _stamp(n),
    }  # fmt: skip


def invoice(i: int, balance: str = "100.00", due: str = "2099-01-01T00:00:00Z", n: int = 0) -> dict[str, Any]:
    return {
        "id": i, "customer": {"id": 200 + i}, "balance": balance, "total": "100.00", "dueDate": due,
        "active": True, "createdOn": _stamp(0), "modifiedOn": _stamp(n),
    }  # fmt: skip


def appointment(i: int, n: int = 0, status: str = "Scheduled") -> dict[str, Any]:
    return {
        "id": i,
        "jobId": 100 + i,
        "status": status,
        "active": True,
        "createdOn": _stamp(0),
        "modifiedOn": _stamp(n),
    }


class Clock:
    """A clock the test moves; starts at the real time so that the merge's now() and the poll agree."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def load(dsn: str, yaml_text: str, tmp: Path) -> None:
    path = tmp / f"workflows-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml_text)
    workflows = read_workflows(path)

    async def go() -> None:
        async with open_events(dsn) as store:
            await store_workflows(store, workflows, str(path))

    asyncio.run(go())


def run_poll(
    dsn: str,
    clock: Clock,
    env: dict[str, str] | None = None,
    smtp: SmtpSettings | None = None,
    ghl_location: str | None = None,
    **settings: Any,
) -> PollResult:
    async def go() -> PollResult:
        ghl = GhlSettings("http://127.0.0.1:9", ghl_location, "token") if ghl_location else None
        action_settings = ActionSettings(timeout_seconds=5, smtp=smtp, ghl=ghl, env=env or {})
        async with open_events(dsn) as store, Actions(action_settings, store) as actions:
            return await poll(store, PollSettings(**{"retry_base_seconds": 60, **settings}), actions, clock)

    return asyncio.run(go())


def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


class Sink:
    """A local HTTP server that records every POST (path, Idempotency-Key, JSON body) and answers ``status``;
    with ``hold`` set, it takes the request and never answers until released."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.hold = threading.Event()
        self.released = threading.Event()
        self.received = threading.Event()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.requests.append({"path": self.path, "key": self.headers.get("Idempotency-Key"),
                                          "body": json.loads(body or b"null"), "at": time.monotonic()})  # fmt: skip
                sink.received.set()
                if sink.hold.is_set():  # take the request and never answer it
                    sink.released.wait()
                    return
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def keys(self) -> list[str | None]:
        with self._lock:
            return [r["key"] for r in self.requests]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
