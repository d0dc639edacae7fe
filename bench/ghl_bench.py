"""Benchmark `stsync ghl push` against the GHL sandbox's real rate limit (100 requests / 10 s per location),
with the client at its default pace (ghl.requests_per_10s, reading the X-RateLimit-* headers).

    .venv/bin/python bench/ghl_bench.py [--scale small|medium] [--limit N] [--pushes N]

A throwaway PostgreSQL gets a full sync of the ServiceTitan sandbox; then `stsync ghl push --json` runs
in a child process against the GHL sandbox in this process, routed like the demo (Sales & Service and
Install in api mode, Pool by inbound webhook, Plumbing disabled). `--pushes N` runs the push N times
back to back (with `--limit`, each one continues where the last stopped); then the ServiceTitan sandbox
advances two hours, an incremental sync runs and one more push carries the changes.

Figures per push and in total: API requests the sandbox answered, wall seconds of the child process,
requests/s over the span from its first to its last API request, the most requests in any 10 s window,
and the 429s the sandbox served (all, and after the run's first 10 s = steady state).
Requests per changed entity: API requests over the contacts and opportunities created or updated.
Targets (issue 19): at least 9.5 requests/s per location and no 429 in steady state.
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, git_commit, print_table, run_timed, start_sandbox
from stsync.config import GhlConfig
from stsync.db.migrations import migrate
from stsync.demo import GHL_LOCATION, GHL_TOKEN, POOL_HOOK, demo_business_units
from stsync.sandbox.app import Request, Response
from stsync.sandbox.ghl import GhlOptions, GhlSandbox
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env

WINDOW_S = 10.0
WRITES = ("created", "updated")
TARGET_RPS = 9.5


class Stamps:
    """When the GHL sandbox answered each API call, and with which status (webhook posts left out: GHL
    does not rate-limit them and the client does not pace them)."""

    def __init__(self, handle: Callable[[Request], Response]) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self.calls: list[tuple[float, int]] = []

    def __call__(self, req: Request) -> Response:
        resp = self._handle(req)
        if not req.path.startswith(("/hooks/", "/_ghl/")):
            with self._lock:
                self.calls.append((time.monotonic(), resp.status))
        return resp

    def since(self, started: float) -> list[tuple[float, int]]:
        with self._lock:
            return [c for c in self.calls if c[0] >= started]


@dataclass
class Row:
    label: str
    requests: int
    wall: float
    span: float
    peak: int
    n429: int
    n429_steady: int
    exit_code: int

    @property
    def rps(self) -> float:
        return self.requests / self.span if self.span > 0 else 0.0

    def cells(self) -> list[str]:
        return [
            self.label,
            f"{self.requests:,}",
            f"{self.wall:.1f}",
            f"{self.span:.1f}",
            f"{self.rps:.2f}" if self.span >= WINDOW_S else "-",  # within one burst: no rate to speak of
            str(self.peak),
            str(self.n429),
            str(self.n429_steady),
            str(self.exit_code),
        ]


def dirty() -> str:
    """' (+ uncommitted changes)' when the package differs from HEAD: the figures are then for the working tree."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "stsync"], capture_output=True, text=True, check=False
    )
    return " (+ uncommitted changes)" if out.stdout.strip() else ""


def peak_in_window(times: list[float]) -> int:
    """The most calls in any WINDOW_S-long window (each window starting at a call)."""
    return max((bisect.bisect_left(times, t + WINDOW_S, lo=i) - i for i, t in enumerate(times)), default=0)


def measure(label: str, calls: list[tuple[float, int]], wall: float, exit_code: int, run_start: float) -> Row:
    times = [t for t, _ in calls]
    return Row(
        label=label,
        requests=len(calls),
        wall=wall,
        span=(times[-1] - times[0]) if len(times) > 1 else 0.0,
        peak=peak_in_window(times),
        n429=sum(1 for _, s in calls if s == 429),
        n429_steady=sum(1 for t, s in calls if s == 429 and t >= run_start + WINDOW_S),
        exit_code=exit_code,
    )


def push(env: dict[str, str], limit: int | None) -> tuple[float, int, dict[str, Any]]:
    args = [STSYNC, "ghl", "push", "all", "--json", *(["--limit", str(limit)] if limit else [])]
    wall, _rss, out = run_timed(args, env, ok=(0, 1))
    doc = json.loads(out)
    return wall, int(doc["exit_code"]), doc


def write_config(directory: Path, dsn: str, ghl: GhlSandbox, concurrency: int | None) -> Path:
    token_file = directory / "ghl-token"
    token_file.write_text(GHL_TOKEN)
    doc = {
        "database": {"url": dsn},
        "ghl": {  # requests_per_10s left at its default: that is what is measured
            "api_base_url": ghl.url,
            "location_id": GHL_LOCATION,
            "token_file": str(token_file),
            "business_units": demo_business_units(ghl.webhook_url(POOL_HOOK, GHL_LOCATION)),
            **({"concurrency": concurrency} if concurrency else {}),
        },
    }
    path = directory / "stsync.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def bench(
    scale: str, limit: int | None, pushes: int, latency_ms: int, concurrency: int | None
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    faults = {"latency": {"ms": latency_ms}} if latency_ms else None
    # the real 100 / 10 s, 200,000 / day
    opts = GhlOptions(seed=42, locations={GHL_LOCATION: GHL_TOKEN}, faults=faults)
    with (
        tempfile.TemporaryDirectory(prefix="ghl-bench-") as tmp,
        EmbeddedPostgres() as pg,
        start_sandbox(scale) as sb,
        GhlSandbox.start(opts) as ghl,
    ):
        stamps = Stamps(ghl.app.handle)
        # GhlApp.handle is the sandbox's one entry point; wrapping it on the instance timestamps every answer
        # without changing what is answered.
        ghl.app.handle = stamps  # type: ignore[method-assign]
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn, STSYNC_CONFIG=str(write_config(Path(tmp), pg.dsn, ghl, concurrency)))
        env.pop("STSYNC_RETRY_NO_WAIT", None)  # real back-off waits, as in production
        run_timed([STSYNC, "sync", "full", "--json"], env)
        run_start = time.monotonic()
        labels = [f"push {i + 1}" + (f" (--limit {limit})" if limit else "") for i in range(pushes)]
        for label in labels:
            started = time.monotonic()
            wall, code, doc = push(env, limit)
            rows.append(measure(label, stamps.since(started), wall, code, run_start))
            extra[label] = doc
            print(f"{label}: {rows[-1].cells()}", file=sys.stderr, flush=True)
        sb.advance(minutes=120, changes=True)
        sb.advance(minutes=20, changes=False)
        run_timed([STSYNC, "sync", "incremental", "--json"], env)
        started = time.monotonic()
        wall, code, doc = push(env, limit)
        rows.append(measure("push after advance + incremental", stamps.since(started), wall, code, run_start))
        extra["after advance"] = doc
        total_wall = time.monotonic() - run_start
        total = measure("all pushes", stamps.since(run_start), sum(r.wall for r in rows), 0, run_start)
        total.exit_code = max(r.exit_code for r in rows)
        rows.append(total)
        dump = ghl.dump()
        extra["ghl"] = {
            "contacts": len(dump["contacts"]),
            "opportunities": len(dump["opportunities"]),
            "webhook payloads": sum(len(v) for v in dump["webhooks"].values()),
            "sandbox 429s (all)": ghl.count_429,
            "elapsed incl. the incremental sync": round(total_wall, 1),
        }
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", default="small", choices=("small", "medium"), help="ServiceTitan sandbox world")
    parser.add_argument("--limit", type=int, default=None, help="pass --limit N to each push (changes per push)")
    parser.add_argument("--pushes", type=int, default=1, help="pushes back to back before the advance")
    parser.add_argument("--latency-ms", type=int, default=0, help="latency of every GHL API call (real GHL: 100-300)")
    parser.add_argument("--concurrency", type=int, default=None, help="ghl.concurrency (default: the config's)")
    args = parser.parse_args()
    rows, extra = bench(args.scale, args.limit, args.pushes, args.latency_ms, args.concurrency)
    print(
        f"\nstsync {git_commit()}{dirty()}: `stsync ghl push` vs the GHL sandbox at 100 requests / 10 s per location, "
        f"client at ghl.requests_per_10s = {GhlConfig().requests_per_10s} (default), ghl.concurrency = "
        f"{args.concurrency or GhlConfig().concurrency}, {args.latency_ms} ms per API call; ServiceTitan world "
        f"{args.scale}, seed 42\n"
    )
    header = ["run", "API requests", "wall s", "span s", "req/s", "peak / 10 s", "429s", "429s steady", "exit"]
    print_table(header, [r.cells() for r in rows])
    main_rows = [r for r in rows[:-1] if r.requests >= 2 * WINDOW_S * TARGET_RPS]  # long enough to judge
    ok_rps = all(r.rps >= TARGET_RPS for r in main_rows)
    ok_429 = rows[-1].n429_steady == 0
    print(
        f"\ntargets: >= {TARGET_RPS:.1f} req/s per location on pushes spanning >= {2 * WINDOW_S:.0f} s: "
        f"{'met' if ok_rps else 'NOT met'}; 429 = 0 in steady state: {'met' if ok_429 else 'NOT met'}"
    )
    for label, doc in extra.items():
        if label != "ghl":
            counts = " ".join(
                f"{kind}[" + " ".join(f"{k}={v}" for k, v in sorted(c.items())) + "]"
                for kind, c in doc["counts"].items()
                if c
            )
            changed = sum(
                n for kind in ("contacts", "opportunities") for k, n in doc["counts"][kind].items() if k in WRITES
            )
            per = f"{doc['requests'] / changed:.2f}" if changed else "-"
            print(f"{label}: {counts} client requests={doc['requests']} requests per changed entity={per}")
    print("GHL sandbox afterwards: " + ", ".join(f"{k} {v}" for k, v in extra["ghl"].items()))


if __name__ == "__main__":
    main()
