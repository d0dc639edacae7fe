"""Benchmark the mirror's readers right after a bulk load: `stsync ghl push --dry-run` just after `stsync sync
full` into a fresh mirror (with only the statistics stsync's own ANALYZE left), then the same dry run after a
manual ANALYZE of every mirror table. Figures, not pass/fail.

    .venv/bin/python bench/push_bench.py [--scales large] [--autovacuum on,off]

Per world and autovacuum setting, on a fresh throwaway PostgreSQL (autovacuum off is a busy server where
autovacuum lags: only stsync's ANALYZE runs) and a fully warmed in-process sandbox:
- `sync full`: wall, the tables it analyzed and the time that took;
- `ghl push --dry-run` right after it: wall and peak RSS, the median of 3 runs;
- the same after `ANALYZE` of every servicetitan table: the goal is at most 2 x this (issue 19).
The dry run plans the whole push (every query of a real push, no GHL request), routed like the demo.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from stsync.db.migrations import migrate
from stsync.demo import demo_business_units
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env

RUNS = 3
GOAL = 2.0


def write_config(directory: Path, dsn: str) -> Path:
    doc = {
        "database": {"url": dsn},
        "ghl": {"location_id": "bench-location", "business_units": demo_business_units("https://hooks.invalid/pool")},
    }
    path = directory / "stsync.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def dry_runs(env: dict[str, str]) -> tuple[float, float, int]:
    """Median wall and RSS of RUNS dry runs, and the changes planned."""
    walls, rsss, planned = [], [], 0
    for _ in range(RUNS):
        wall, rss, out = run_timed([STSYNC, "ghl", "push", "--dry-run", "--json"], env)
        walls.append(wall)
        rsss.append(rss)
        planned = int(json.loads(out)["planned_total"])
    return statistics.median(walls), statistics.median(rsss), planned


def bench(scale: str, autovacuum: str) -> list[list[str]]:
    with tempfile.TemporaryDirectory(prefix="push-bench-") as tmp, EmbeddedPostgres() as pg, start_sandbox(scale) as sb:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET autovacuum = {autovacuum}")
            conn.execute("SELECT pg_reload_conf()")
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn, STSYNC_CONFIG=str(write_config(Path(tmp), pg.dsn)))
        wall, _, out = run_timed([STSYNC, "sync", "full", "--json"], env)
        full = json.loads(out)
        records = sum(s["fetched"] for s in full["streams"])
        print(f"{scale}/autovacuum {autovacuum}: sync full {wall:.1f} s", file=sys.stderr, flush=True)
        after_load = dry_runs(env)
        started = time.monotonic()
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'servicetitan'")]
            for table in tables:
                conn.execute(f'ANALYZE servicetitan."{table}"')
        manual_s = time.monotonic() - started
        after_manual = dry_runs(env)
    ratio = after_load[0] / after_manual[0]
    return [
        [
            f"{scale} ({records:,} records)",
            autovacuum,
            f"{wall:.1f}",
            f"{len(full['analyzed'])} in {full['analyze_ms'] / 1000:.1f} s",
            f"{after_load[0]:.2f} / {after_load[1]:.0f} MB",
            f"{manual_s:.1f}",
            f"{after_manual[0]:.2f} / {after_manual[1]:.0f} MB",
            f"{ratio:.2f} ({'met' if ratio <= GOAL else 'NOT met'})",
            str(after_load[2]),
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scales", default="large", help="comma-separated sandbox worlds (small, medium, large)")
    parser.add_argument("--autovacuum", default="on,off", help="comma-separated: on, off")
    args = parser.parse_args()
    rows = []
    for scale in args.scales.split(","):
        for autovacuum in args.autovacuum.split(","):
            rows += bench(scale, autovacuum)
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)  # a later world's failure keeps this one
    print(f"\nstsync {git_commit()}: `ghl push --dry-run` right after `sync full`, median of {RUNS} runs\n")
    header = [
        "world",
        "autovacuum",
        "sync full s",
        "tables analyzed by it",
        "dry run after load (wall s / RSS)",
        "manual ANALYZE s",
        "dry run after manual ANALYZE",
        f"ratio (goal <= {GOAL:.0f})",
        "changes planned",
    ]
    print_table(header, rows)


if __name__ == "__main__":
    main()
