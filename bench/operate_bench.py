"""The operator's commands on a real-sized mirror: `stsync health`, `gap-analysis` (counts and --deep) and
`backfill --from-gap-report`, right after a full sync of the world (a bulk load).

    .venv/bin/python bench/operate_bench.py [--scale large] [--health-runs 5] [--seed 42]

After the full sync it runs `health` (median wall of N runs; it is asked to take ≤ 1 s on the large world),
then loses rows from the mirror at random (jobs, appointments, invoices, customers: their jobs become
orphans) and adds two jobs ServiceTitan never had. `gap-analysis` (counts) and `gap-analysis --deep` run
against it: wall, ServiceTitan requests, records received, and whether the deep walk found exactly the
damage. A full read of the compared streams through their lists would take Σ ⌈total / page⌉ requests: the
table shows that at 5,000-record pages (ServiceTitan's largest, what sync asks for) and at 50 (its default),
and the records a full read transfers. Then `backfill --from-gap-report` restores the rows: its requests, and
whether every cursor stayed as it was and the next incremental fetched what a run with nothing new fetches.
`health` runs once more at the end, with the deleted rows' dead tuples not yet vacuumed.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_table, run_timed, start_sandbox  # noqa: E402
from stsync.db.migrations import migrate  # noqa: E402
from stsync.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from tests.e2e.harness import STSYNC, cli_env  # noqa: E402
from tests.ops.damage import CURSORS, EXTRA_IDS, add_unknown_jobs  # noqa: E402

LOSE = {"st_jobs": 5, "st_appointments": 3, "st_invoices": 4, "st_customers": 2}
EXTRA_JOBS = EXTRA_IDS


def damage(dsn: str, seed: int) -> dict[str, list[int]]:
    """Lose random rows of each LOSE table and add the extra jobs; the ids lost per stream."""
    lost: dict[str, list[int]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT setseed(%s)", (seed / 1000,))
        for table, n in LOSE.items():
            visible = " AND active" if table == "st_jobs" else ""  # the jobs list serves active jobs only
            rows = conn.execute(
                f"DELETE FROM servicetitan.{table} WHERE st_id IN (SELECT st_id FROM servicetitan.{table}"
                f" WHERE true{visible} ORDER BY random() LIMIT {n}) RETURNING st_id"
            ).fetchall()
            lost[table.removeprefix("st_")] = sorted(r[0] for r in rows)
        add_unknown_jobs(conn, EXTRA_JOBS, copy_of=1000)
    return lost


def run_json(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, Any]:
    wall, rss, out = run_timed([STSYNC, *argv], env, ok=ok)
    return wall, rss, json.loads(out)


def health(env: dict[str, str], runs: int) -> tuple[float, float, float, str]:
    walls, status = [], ""
    for _ in range(runs):
        wall, _, doc = run_json(["health", "--json"], env, ok=(0, 1, 2, 3))
        walls.append(wall)
        status = doc["status"]
    return statistics.median(walls), min(walls), max(walls), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--health-runs", type=int, default=5)
    parser.add_argument(
        "--deep-page-sizes",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[5000, 1000, 500],
        help="also run --deep (without marking) at these page sizes",
    )
    args = parser.parse_args()

    with EmbeddedPostgres() as pg, start_sandbox(args.scale, args.seed) as sb:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        wall, _, full = run_json(["sync", "full", "--json"], env)
        records = full["totals"]["fetched"]
        rows: list[list[str]] = [["sync full (the bulk load)", f"{wall:.1f}", "", str(full["requests"]), ""]]
        med, lo, hi = health(env, args.health_runs)[:3]
        rows.append(
            [f"health right after it (median of {args.health_runs})", f"{med:.2f} ({lo:.2f}-{hi:.2f})", "", "", ""]
        )

        lost = damage(pg.dsn, args.seed)
        wall, _, counts = run_json(["gap-analysis", "--json"], env, ok=(1,))
        rows.append(["gap-analysis (counts)", f"{wall:.2f}", "", str(counts["requests"]), ""])
        report = Path(tempfile.mkdtemp(prefix="stsync-bench-")) / "gaps.json"
        for size in args.deep_page_sizes:  # the page a window must fit before its ids are compared
            sized = {**env, "STSYNC_SERVICETITAN__PAGE_SIZE": str(size)}
            wall, rss, trial = run_json(["gap-analysis", "--deep", "--no-mark-deleted", "--json"], sized, ok=(1,))
            got = sum(s["read"] for s in trial["streams"])
            rows.append(
                [
                    f"gap-analysis --deep, {size}-record pages",
                    f"{wall:.2f}",
                    f"{rss:.0f}",
                    str(trial["requests"]),
                    f"{got:,}",
                ]
            )
        wall, rss, deep = run_json(["gap-analysis", "--deep", "--json", "--out", str(report)], env, ok=(1,))
        read = sum(s["read"] for s in deep["streams"])
        rows.append(
            [
                "gap-analysis --deep (as configured; marks)",
                f"{wall:.2f}",
                f"{rss:.0f}",
                str(deep["requests"]),
                f"{read:,}",
            ]
        )
        compared = [s for s in deep["streams"] if s["servicetitan"] is not None]
        total = sum(s["servicetitan"] for s in compared)
        full_5000 = sum(max(1, math.ceil(s["servicetitan"] / 5000)) for s in compared)
        full_50 = sum(max(1, math.ceil(s["servicetitan"] / 50)) for s in compared)
        rows.append(["a full read of the same lists, 5,000-record pages", "", "", str(full_5000), f"{total:,}"])
        rows.append(["a full read of the same lists, 50-record pages", "", "", str(full_50), f"{total:,}"])
        found = {s["stream"]: s.get("missing") for s in deep["streams"] if s.get("missing")}
        exact = (
            found == {k: v for k, v in lost.items() if v}
            and next(s["extra"] for s in deep["streams"] if s["stream"] == "jobs") == EXTRA_JOBS
        )

        _, _, baseline = run_json(["sync", "incremental", "--json"], env)  # what a run with nothing new fetches
        with psycopg.connect(pg.dsn) as conn:
            cursors = conn.execute(CURSORS).fetchall()
        wall, _, filled = run_json(["backfill", "--from-gap-report", str(report), "--json"], env)
        rows.append(
            [
                "backfill --from-gap-report",
                f"{wall:.2f}",
                "",
                str(filled["requests"]),
                f"{filled['totals']['fetched']:,}",
            ]
        )
        with psycopg.connect(pg.dsn) as conn:
            kept = conn.execute(CURSORS).fetchall() == cursors
        _, _, after = run_json(["sync", "incremental", "--json"], env)
        extra_fetch = after["totals"]["fetched"] - baseline["totals"]["fetched"]
        med, lo, hi = health(env, args.health_runs)[:3]
        rows.append(
            [
                f"health at the end, dead tuples unvacuumed (median of {args.health_runs})",
                f"{med:.2f} ({lo:.2f}-{hi:.2f})",
                "",
                "",
                "",
            ]
        )
        shutil.rmtree(report.parent, ignore_errors=True)

    print(
        f"\n{args.scale} world: {records:,} records; lost {sum(map(len, lost.values()))} rows, added {len(EXTRA_JOBS)}"
    )
    print_table(["step", "wall s", "peak RSS MB", "ServiceTitan requests", "records received"], rows)
    print(
        f"\n--deep requests / a full read's: {deep['requests'] / full_5000:.1%} at 5,000-record pages, "
        f"{deep['requests'] / full_50:.2%} at 50; records received / a full read's: {read / total:.2%}"
    )
    print(f"--deep found exactly the damage: {'yes' if exact else 'NO'}; orphans reported: {len(deep['orphans'])}")
    print(
        f"backfill left every cursor as it was: {'yes' if kept else 'NO'}; "
        f"the next incremental fetched {extra_fetch} more records than one with nothing new"
    )


if __name__ == "__main__":
    main()
