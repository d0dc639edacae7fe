"""Benchmark `stsync sync` against the sandbox: full sync of the medium and large worlds, then a
no-change incremental run. Prints figures, not pass/fail.

    .venv/bin/python bench/sync_bench.py [--scales medium,large]

Each world gets a fresh throwaway PostgreSQL; the sandbox runs in this process and is fully warmed
before timing starts; `stsync` runs in a child process whose own peak RSS comes from wait4().
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import run_timed, start_sandbox
from stsync.db.embedded import EmbeddedPostgres
from stsync.db.migrations import migrate
from tests.e2e.harness import STSYNC, cli_env


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """Run `stsync ARGS --json`; return wall seconds, the child's own peak RSS (MB), and its summary."""
    wall, rss, out = run_timed([STSYNC, *args, "--json"], env, ok=(0, 1))
    return wall, rss, json.loads(out)


def bench(scale: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with EmbeddedPostgres() as pg, start_sandbox(scale) as sb:
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
