"""Benchmark `stsync sync` against the sandbox: full sync of the medium and large worlds, then a
no-change incremental run. Prints figures, not pass/fail.

    .venv/bin/python bench/sync_bench.py [--scales medium,large]

Each world gets a fresh throwaway PostgreSQL; the sandbox runs in this process, `stsync` in a child
process whose own peak RSS comes from wait4().
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stsync.db.embedded import EmbeddedPostgres
from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import STSYNC, cli_env


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """Run `stsync ARGS --json`; return wall seconds, the child's own peak RSS (MB), and its summary."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([STSYNC, *args, "--json"], env=env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read()
        # wait4 on this pid alone: RUSAGE_CHILDREN would mix in the sandbox's worker processes.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        if code not in (0, 1):
            err.seek(0)
            raise SystemExit(f"stsync {' '.join(args)} exited {code}: {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, json.loads(out)


def bench(scale: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with EmbeddedPostgres() as pg, Sandbox.start(SandboxOptions(scale=scale, seed=42)) as sb:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        env.pop("STSYNC_RETRY_NO_WAIT", None)
        before = len(sb.requests)
        wall, rss, full = run(["sync", "full"], env)
        records = full["totals"]["fetched"]
        rows += [
            (f"{scale}: full sync records", f"{records:,}"),
            (f"{scale}: full sync wall", f"{wall:.2f} s"),
            (f"{scale}: full sync records/s", f"{records / wall:,.0f}"),
            (f"{scale}: full sync requests", f"{len(sb.requests) - before}"),
            (f"{scale}: full sync peak RSS", f"{rss:.0f} MB"),
        ]
        before = len(sb.requests)
        wall, _rss, inc = run(["sync", "incremental"], env)
        rows += [
            (f"{scale}: no-change incremental wall", f"{wall:.2f} s"),
            (f"{scale}: no-change incremental requests", f"{len(sb.requests) - before}"),
            (f"{scale}: no-change incremental changed", f"{inc['totals']['created'] + inc['totals']['updated']}"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="medium,large", help="comma-separated sandbox scales")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    for scale in args.scales.split(","):
        rows += bench(scale.strip())
        width = max(len(r[0]) for r in rows)
        print("\n".join(f"{name:<{width}}  {value}" for name, value in rows[-8:]), flush=True)


if __name__ == "__main__":
    main()
