"""One outage, one line: what `stsync sync incremental` does when ServiceTitan is down.

    .venv/bin/python bench/outage_bench.py [--scale small] [--runs 3]

A throwaway PostgreSQL and the sandbox; one full sync to have checkpoints and a cached token; then, with
real retry waits (no STSYNC_RETRY_NO_WAIT), incremental runs against:
- the API gone (connection refused), token cached: the streams' own requests fail;
- the API gone, no token cached: the token request fails first;
- the API answering 503 to everything.
Prints per scenario the exit code, the seconds the run took and the lines it wrote (stdout + stderr).
The bar (issue 18): exit 69 within 20 s, at most 5 lines.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import cli_env, run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _measure(name: str, env: dict[str, str], runs: int) -> None:
    for _ in range(runs):
        started = time.monotonic()
        proc = run_cli(["sync", "incremental"], env, timeout=300)
        seconds = time.monotonic() - started
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        print(f"{name:<34} exit={proc.returncode:<3} {seconds:6.2f}s  lines={len(lines)}", flush=True)
        for line in lines:
            print(f"    {line[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with EmbeddedPostgres() as pg, Sandbox.start(SandboxOptions(scale=args.scale, seed=7)) as sb:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        full = run_cli(["sync", "full"], env)
        assert full.returncode == 0, full.stderr[-2000:]
        real_waits = {k: v for k, v in env.items() if k != "STSYNC_RETRY_NO_WAIT"}

        sb.faults.set({"rules": [{"kind": "status", "status": 503, "retry_after": None}]})
        _measure("API answers 503 to everything", real_waits, args.runs)
        sb.faults.clear()

        gone = f"http://127.0.0.1:{_closed_port()}"
        # The token cache is keyed by the auth host: keep the cached token by pointing only the API elsewhere.
        _measure("API down, token cached", {**real_waits, "STSYNC_SERVICETITAN__API_BASE_URL": gone}, args.runs)
        empty_cache = tempfile.mkdtemp(prefix="stsync-bench-cache-")
        try:
            no_token = {
                **real_waits,
                "STSYNC_SERVICETITAN__API_BASE_URL": gone,
                "STSYNC_SERVICETITAN__AUTH_URL": gone,
                "STSYNC_SERVICETITAN__TOKEN_CACHE_DIR": empty_cache,
            }
            _measure("API and auth down, no token", no_token, args.runs)
        finally:
            shutil.rmtree(empty_cache, ignore_errors=True)


if __name__ == "__main__":
    main()
