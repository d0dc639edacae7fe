"""Benchmark what a recurring `stsync ghl push` costs as the tenant grows: the push with nothing changed, the
push after a small incremental sync, and the full reconcile (`ghl push --full`), on the large world and on
xlarge (5 x large). Figures, not pass/fail.

    .venv/bin/python bench/push_changes_bench.py [--scales large,xlarge]

Per world, on a fresh throwaway PostgreSQL and a fully warmed in-process sandbox, after `sync full` (which
analyzes what it loaded):
- the location is recorded as pushed up to now with the current settings (as after a complete first push;
  pushing a large world for real takes hours at GHL's 10 requests/s), GHL itself unreachable: a push that
  asked it anything would fail;
- `ghl push` with nothing changed: wall and peak RSS, the median of 3 runs, customers examined (goal: at most
  0.5 s and 100 MB, flat across sizes);
- 20 sandbox minutes of changes, `sync incremental`, then `ghl push --dry-run`: customers examined, changes
  planned, wall and RSS;
- `ghl push --full --dry-run`: every customer compared in batches (goal: at most 150 MB at xlarge).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from stsync.config import load_config
from stsync.db.migrations import migrate
from stsync.demo import demo_business_units
from stsync.ghl import push as push_module
from stsync.ghl.service import push_settings, store_settings
from stsync.ghl.store import open_store
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env

RUNS = 3
LOCATION = "bench-location"


def write_config(directory: Path, dsn: str) -> Path:
    doc = {
        "database": {"url": dsn},
        "ghl": {
            "location_id": LOCATION,
            "api_base_url": "http://127.0.0.1:9",  # nothing listens: a push that asked GHL anything fails
            "allow_insecure_http": True,
            "retry_attempts": 1,
            "business_units": demo_business_units("https://hooks.invalid/pool"),
        },
    }
    path = directory / "stsync.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def record_pushed(config_path: Path) -> None:
    """Record the location as pushed up to now with the current settings, as a complete push would."""
    config = load_config(config_path)
    settings = push_settings(config)
    async with open_store(store_settings(config)) as store:
        digest = await push_module.settings_digest(store, settings)
        through = (await store.fetch("push_through"))[0]["through"]
        state = {"location_id": LOCATION, "through": through, "digest": digest, "full": True}
        await store.write("save_push_state", state)


def timed_push(env: dict[str, str], *args: str, runs: int = 1) -> tuple[float, float, dict[str, object]]:
    """Median wall and RSS of RUNS pushes, and the last one's JSON summary."""
    walls, rsss, doc = [], [], {}
    for _ in range(runs):
        wall, rss, out = run_timed([STSYNC, "ghl", "push", "--json", *args], env)
        walls.append(wall)
        rsss.append(rss)
        doc = json.loads(out)
    return statistics.median(walls), statistics.median(rsss), doc


def bench(scale: str) -> list[list[str]]:
    with (
        tempfile.TemporaryDirectory(prefix="push-changes-") as tmp,
        EmbeddedPostgres() as pg,
        start_sandbox(scale) as sb,
    ):
        migrate(pg.dsn)
        config = write_config(Path(tmp), pg.dsn)
        env = cli_env(sb.url, pg.dsn, STSYNC_CONFIG=str(config), STSYNC_GHL__TOKEN="bench-token")
        wall, _, out = run_timed([STSYNC, "sync", "full", "--json"], env)
        records = sum(s["fetched"] for s in json.loads(out)["streams"])
        world = f"{scale} ({records:,} records)"
        print(f"{world}: sync full {wall:.1f} s", file=sys.stderr, flush=True)
        asyncio.run(record_pushed(config))

        rows = []
        nothing = timed_push(env, runs=RUNS)
        assert nothing[2]["examined"] == 0 and nothing[2]["requests"] == 0, nothing[2]
        rows.append([world, "ghl push, nothing changed", nothing])

        sb.advance(minutes=20, changes=True)
        sb.advance(minutes=20, changes=False)  # past the export delay, so the incremental sees the changes
        _, _, inc_out = run_timed([STSYNC, "sync", "incremental", "--json"], env)
        changed = sum(s["created"] + s["updated"] for s in json.loads(inc_out)["streams"])
        after = timed_push(env, "--dry-run", runs=RUNS)
        rows.append([world, f"ghl push --dry-run after an incremental ({changed:,} rows changed)", after])

        with psycopg.connect(pg.dsn) as conn:
            customers = conn.execute("SELECT count(*) FROM servicetitan.st_customers").fetchone()
        full = timed_push(env, "--full", "--dry-run")
        rows.append([world, "ghl push --full --dry-run", full])
    out_rows = []
    for world_, case, (w, rss, doc) in rows:
        out_rows.append(
            [world_, case, f"{w:.2f}", f"{rss:.0f}", f"{doc['examined']:,}", f"{doc['planned_total']:,}", doc["mode"]]
        )
    print(f"{world}: {customers[0] if customers else 0:,} customers in the mirror", file=sys.stderr, flush=True)
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scales", default="large,xlarge", help="comma-separated sandbox worlds")
    args = parser.parse_args()
    rows = []
    for scale in args.scales.split(","):
        rows += bench(scale)
        for row in rows[-3:]:
            print(" | ".join(row), file=sys.stderr, flush=True)  # a later world's failure keeps this one
    print(f"\nstsync {git_commit()}: what a recurring push costs (median of {RUNS} runs; --full: one run)\n")
    header = ["world", "case", "wall s", "peak RSS MB", "customers examined", "changes planned", "mode"]
    print_table(header, rows)


if __name__ == "__main__":
    main()
