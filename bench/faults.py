"""The whole fault matrix of `stsync sync`: kills, a PostgreSQL restart, API faults, overlapping runs.

    .venv/bin/python bench/faults.py [--kills 20] [--scale small] [--seed 42]

Prints one row per scenario: runs, converged, and what "converged" checked. The automated tests in
tests/e2e/ run a fast subset of the same scenarios in CI.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import (
    STSYNC,
    cli_env,
    committed_pages,
    export_requests,
    mirror_differences,
    run_cli,
    stored_tokens,
    wait_for,
)

Row = tuple[str, int, int, str]


def _fresh_db(pg: EmbeddedPostgres, name: str) -> str:
    dsn = pg.create_database(name)
    migrate(dsn)
    return dsn


def _converged(dsn: str, sb: Any) -> bool:
    with psycopg.connect(dsn) as conn:
        return mirror_differences(conn, sb.world.dump()) == []


def _kill_then_finish(sb: Any, env: dict[str, str], args: list[str], point: int) -> tuple[bool, bool]:
    """Kill `stsync sync ARGS` after `point` export requests, rerun to the end.

    Returns (no committed page refetched, rerun succeeded)."""
    before = len(sb.requests)
    proc = subprocess.Popen([STSYNC, "sync", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(export_requests(sb.requests[before:])) >= point or proc.poll() is not None, 300, "kill point")
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = committed_pages(export_requests(sb.requests[before:]), stored_tokens(env["STSYNC_DATABASE__URL"]))
    rerun_start = len(sb.requests)
    ok = run_cli(["sync", *args], env).returncode == 0
    refetched = [p for p in export_requests(sb.requests[rerun_start:]) if p in committed]
    return not refetched, ok


def kills(pg: EmbeddedPostgres, opts: SandboxOptions, n: int, rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for kind in ("full", "incremental"):
        converged = 0
        for i in range(n):
            with Sandbox.start(opts) as sb:
                dsn = _fresh_db(pg, f"kill_{kind}_{i}")
                env = cli_env(sb.url, dsn)
                if kind == "incremental":
                    assert run_cli(["sync", "full"], env).returncode == 0
                    sb.advance(minutes=240, changes=True)
                    sb.advance(minutes=20, changes=False)
                    total = 16  # one page per export feed at least
                else:
                    total = 40
                clean, ok = _kill_then_finish(sb, env, [kind], rng.randint(1, total))
                converged += int(clean and ok and _converged(dsn, sb))
        rows.append(
            (f"kill -9 during {kind} sync", n, converged, "mirror == ground truth, no committed page refetched")
        )
    return rows


def db_restart(pg_unused: EmbeddedPostgres, opts: SandboxOptions) -> list[Row]:
    with EmbeddedPostgres() as own, Sandbox.start(opts) as sb:
        migrate(own.dsn)
        sb.faults.set({"rules": [{"kind": "latency", "ms": 30, "jitter_ms": 0, "path": "/export/"}]})
        env = cli_env(sb.url, own.dsn)
        proc = subprocess.Popen(
            [STSYNC, "sync", "full"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_for(lambda: len(export_requests(sb.requests)) >= 10, 60, "10 export requests")
        own.restart()
        _, err = proc.communicate(timeout=300)
        sb.faults.clear()
        ok = proc.returncode == 69 and "Traceback" not in err and run_cli(["sync", "full"], env).returncode == 0
        return [
            (
                "PostgreSQL restarted mid-sync",
                1,
                int(ok and _converged(own.dsn, sb)),
                "exit 69 + one line, rerun converges",
            )
        ]


API = "/v2/tenant/"
FAULTS: dict[str, dict[str, Any]] = {
    "429 storm with Retry-After": {"rules": [{"kind": "rate_limit", "count": 20, "retry_after": 0, "path": API}]},
    "429 storm without Retry-After": {"rules": [{"kind": "rate_limit", "count": 20, "retry_after": None, "path": API}]},
    "5xx bursts (500/502/503)": {
        "rules": [{"kind": "status", "status": s, "count": 4, "path": API} for s in (500, 502, 503)]
    },
    "connection resets": {"rules": [{"kind": "drop", "rate": 0.15, "path": API}], "seed": 1},
    "truncated JSON bodies": {"rules": [{"kind": "truncate", "rate": 0.15, "path": API}], "seed": 2},
}


def api_faults(pg: EmbeddedPostgres, opts: SandboxOptions) -> list[Row]:
    rows: list[Row] = []
    for i, (name, spec) in enumerate(FAULTS.items()):
        with Sandbox.start(opts) as sb:
            dsn = _fresh_db(pg, f"fault_{i}")
            env = cli_env(sb.url, dsn)
            sb.faults.set(spec)
            ok = run_cli(["sync", "full"], env).returncode == 0
            sb.faults.clear()
            rows.append((name, 1, int(ok and _converged(dsn, sb)), "mirror == fault-free result"))
    with Sandbox.start(opts) as sb:
        dsn = _fresh_db(pg, "fault_token")
        env = cli_env(sb.url, dsn, STSYNC_SERVICETITAN__RETRY_ATTEMPTS="8")
        # Revoke every token once the run is under way: the client must re-authenticate.
        proc = subprocess.Popen([STSYNC, "sync", "full"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(export_requests(sb.requests)) >= 3 or proc.poll() is not None, 60, "3 requests")
        sb.faults.set({"invalidate_tokens": True})
        ok = proc.wait(timeout=300) == 0
        rows.append(("token expiring mid-run", 1, int(ok and _converged(dsn, sb)), "mirror == fault-free result"))
    return rows


def overlap(pg: EmbeddedPostgres, opts: SandboxOptions, n: int = 10) -> list[Row]:
    """N identical `sync incremental` runs started together: one syncs, the others exit 75. Prints how long
    the losers took from launch to exit (the target is under a second)."""
    with Sandbox.start(opts) as sb:
        dsn = _fresh_db(pg, "overlap")
        sb.faults.set({"rules": [{"kind": "latency", "ms": 40, "jitter_ms": 0}]})
        env = cli_env(sb.url, dsn)
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [STSYNC, "sync", "incremental"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for _ in range(n)
        ]
        ended: dict[int, float] = {}
        while len(ended) < n:
            for i, proc in enumerate(procs):
                if i not in ended and proc.poll() is not None:
                    ended[i] = time.monotonic() - started
            time.sleep(0.005)
        codes = sorted(p.returncode for p in procs)
        ok = codes == [0] + [75] * (n - 1)
        losers = [ended[i] for i, p in enumerate(procs) if p.returncode == 75]
        slowest = f"{max(losers):.2f} s" if losers else "-"
        return [(f"{n} concurrent incremental runs", 1, int(ok), f"exit codes {codes}; losers exited by {slowest}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 moments per sync type")
    parser.add_argument("--scale", default="small", help="sandbox scale")
    parser.add_argument("--seed", type=int, default=42, help="sandbox and kill-point seed")
    args = parser.parse_args()
    opts = SandboxOptions(scale=args.scale, seed=args.seed, export_batch_size=50 if args.scale == "small" else 2000)
    rng = random.Random(args.seed)
    rows: list[Row] = []
    scenarios: list[Callable[[EmbeddedPostgres], list[Row]]] = [
        lambda pg: kills(pg, opts, args.kills, rng),
        lambda pg: db_restart(pg, opts),
        lambda pg: api_faults(pg, opts),
        lambda pg: overlap(pg, opts),
    ]
    with EmbeddedPostgres() as pg:
        for scenario in scenarios:
            for row in scenario(pg):
                rows.append(row)
                print(f"{row[0]:<34} runs={row[1]:<3} converged={row[2]:<3} ({row[3]})", flush=True)
    print()
    print(f"{'scenario':<34} {'runs':>5} {'converged':>10}")
    for name, runs, conv, _ in rows:
        print(f"{name:<34} {runs:>5} {conv:>10}")


if __name__ == "__main__":
    main()
