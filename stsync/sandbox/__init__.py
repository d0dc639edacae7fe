"""A faithful local ServiceTitan tenant: OAuth, list and export endpoints, time, faults and ground truth.

Python API (the CLI ``stsync sandbox serve`` runs the same code)::

    from stsync.sandbox import Sandbox, SandboxOptions
    with Sandbox.start(SandboxOptions(scale="small", seed=42)) as sb:
        sb.url                                 # "http://127.0.0.1:PORT" (API base == auth base)
        sb.world.dump()                        # {resource: {id: record}} exactly as served
        sb.advance(minutes=60, changes=True)   # summary dict
        sb.faults.set({...}); sb.faults.clear()
        sb.requests                            # [{method, path, query, status}, ...]
        sb.transport()                         # httpx transport into the same app, no sockets

Defaults: tenant 1234567, client_id ``sandbox-client-id``, client_secret ``sandbox-client-secret``,
app key ``sandbox-app-key``, seed 42, scale small, 60 requests/s per (app key, tenant), token TTL 900 s,
export batch 5000.

Admin endpoints (no auth, not rate limited, not logged): ``GET /_sandbox/dump``, ``GET|DELETE
/_sandbox/requests``, ``POST /_sandbox/advance {"minutes": M, "changes": true}``, ``GET|POST|DELETE
/_sandbox/faults``, ``GET /_sandbox/health``.

Fault spec (``POST /_sandbox/faults`` body, ``sb.faults.set(spec)``, ``serve --faults-json``)::

    {
      "seed": 7,                         # seeds the per-rule RNG used by "rate" (default 0)
      "invalidate_tokens": true,         # one-shot: every token issued so far now gets 401
      "rules": [                         # evaluated in order on every API request
        {"kind": "latency", "ms": 200, "jitter_ms": 50},
        {"kind": "status", "status": 503, "count": 3},          # 500, 502, 503 or 504
        {"kind": "rate_limit", "count": 2, "retry_after": 5},   # 429; "retry_after": null omits the header
        {"kind": "drop", "count": 1, "path": "/export/jobs"},   # close the socket, no response
        {"kind": "truncate", "count": 1, "keep": 0.5},          # full Content-Length, half the body, close
        {"kind": "malformed", "resource": "customers", "field": "id", "value": "x", "count": 1}
      ]
    }

Shorthand: a top-level key named after a kind holds one rule or a list of rules of that kind, e.g.
``{"latency": {"ms": 40, "jitter_ms": 0}}``. Every rule takes ``count`` (fire on the next N matching
requests; omitted = unlimited), ``path`` (substring
the request path must contain) and ``rate`` (probability 0..1 drawn from the seeded RNG). Latency rules add
up; the first other rule that fires decides the request. ``malformed`` replaces ``field`` of the first
record of a served page (list or export) of ``resource`` with ``value``; ``sb.faults.malformed_served``
lists what was served that way. ``DELETE /_sandbox/faults`` or ``sb.faults.clear()`` removes all rules.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stsync.sandbox.app import APP_KEY, CLIENT_ID, CLIENT_SECRET, App
from stsync.sandbox.cache import PrewarmCache
from stsync.sandbox.changes import advance
from stsync.sandbox.clock import fmt
from stsync.sandbox.faults import Faults
from stsync.sandbox.server import (
    AsyncSandboxTransport,
    SandboxHTTPServer,
    SandboxTransport,
    make_server,
    serve_in_thread,
)
from stsync.sandbox.world import SCALES, World, counts_for

__all__ = ["APP_KEY", "CLIENT_ID", "CLIENT_SECRET", "Sandbox", "SandboxOptions", "WorldView", "scale_totals"]


@dataclass(frozen=True)
class SandboxOptions:
    scale: str = "small"
    seed: int = 42
    tenant: int = 1234567
    token_ttl: int = 900
    rate_limit: int = 60
    export_batch_size: int = 5000
    state_dir: str | Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    faults: dict[str, Any] | None = None
    prewarm: bool | None = None  # pre-serialise base records in worker processes; None = on for medium/large
    denied_modules: tuple[str, ...] = ()  # API modules (accounting, crm, …) the app has no scope for: 403


def scale_totals() -> dict[str, int]:
    """Base record count (all resources) per scale, as stated in `--help`."""
    return {s: sum(counts_for(s).values()) for s in SCALES}


class WorldView:
    """The `sb.world` face: ground truth of what the sandbox serves."""

    def __init__(self, world: World) -> None:
        self._w = world

    def dump(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Per resource, per id (custom_field_types: "customers:12"), the record exactly as served."""
        return self._w.snapshot()

    @property
    def now(self) -> str:
        return fmt(self._w.now)

    @property
    def raw(self) -> World:
        return self._w


class Sandbox:
    """One running sandbox: world, app, HTTP server thread. Use `Sandbox.start(opts)` as a context manager."""

    def __init__(self, opts: SandboxOptions) -> None:
        self.opts = opts
        world = World(opts.seed, opts.scale)
        self._state_file = Path(opts.state_dir) / "sandbox-state.json" if opts.state_dir else None
        self._replay(world)
        self.faults = Faults()
        if opts.faults:
            self.faults.set(opts.faults)
        cache = None
        prewarm = opts.prewarm if opts.prewarm is not None else opts.scale != "small"
        if prewarm:
            cache = PrewarmCache(opts.seed, opts.scale, world)
        self.cache = cache
        self.app = App(
            world,
            tenant=opts.tenant,
            token_ttl=opts.token_ttl,
            rate_limit=opts.rate_limit,
            export_batch_size=opts.export_batch_size,
            faults=self.faults,
            cache=cache,
            on_advance=self._persist,
            denied_modules=opts.denied_modules,
        )
        self.world = WorldView(world)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    @classmethod
    def start(cls, opts: SandboxOptions | None = None) -> Sandbox:
        sb = cls(opts or SandboxOptions())
        sb._server = make_server(sb.app, sb.opts.host, sb.opts.port, sb.opts.allow_remote)
        sb._thread = serve_in_thread(sb._server)
        if sb.cache is not None:
            sb.cache.start()
        return sb

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.cache is not None:
            self.cache.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (the CLI's `serve`)."""
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox is not running")
        addr = self._server.server_address
        host, port = str(addr[0]), int(addr[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    # --- faces ------------------------------------------------------------------------------------

    def advance(self, minutes: int = 60, changes: bool = True) -> dict[str, Any]:
        return self.app.advance(minutes, changes)

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.app._lock:
            return list(self.app.requests)

    def clear_requests(self) -> None:
        with self.app._lock:
            self.app.requests.clear()

    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(self.app)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return AsyncSandboxTransport(self.app)

    def status(self) -> dict[str, Any]:
        return self.app.status()

    # --- persistence ------------------------------------------------------------------------------

    def _replay(self, world: World) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        state = json.loads(self._state_file.read_text())
        if state.get("seed") != world.seed or state.get("scale") != world.scale:
            raise ValueError(
                f"{self._state_file} holds a world with seed {state.get('seed')} and scale "
                f"{state.get('scale')!r}; use another --state-dir or the same seed and scale"
            )
        for minutes, changes in state.get("advances", []):
            advance(world, int(minutes), bool(changes))

    def _persist(self, minutes: int, changes: bool) -> None:
        if self._state_file is None:
            return
        w = self.app.world
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seed": w.seed, "scale": w.scale, "advances": [list(a) for a in w.advances]}))
        tmp.replace(self._state_file)
