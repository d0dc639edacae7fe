"""Benchmark what spreading a first push over runs costs: `ghl push --max-requests N` run until nothing is left,
against one uninterrupted push of the same mirror into an empty location. Counts, not times, so the GHL sandbox
runs without its rate limit.

    .venv/bin/python bench/spread_bench.py [--scale medium] [--max-requests 1000,250]

One `sync full` of the ServiceTitan world; its database is copied (CREATE DATABASE … TEMPLATE) for every
push. Per cap: runs, total requests against the uninterrupted push (goal: within 2 %), duplicates in GHL,
and whether GHL ends in the same state (modulo generated ids and timestamps).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from stsync.db.migrations import migrate
from stsync.demo import GHL_LOCATION, GHL_TOKEN, POOL_HOOK, demo_business_units
from stsync.sandbox.ghl import GhlOptions, GhlSandbox
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env
from tests.ghl.scenario import duplicates, normalized


def config(directory: Path, dsn: str, ghl: GhlSandbox, name: str) -> Path:
    doc = {
        "database": {"url": dsn},
        "ghl": {
            "api_base_url": ghl.url,
            "location_id": GHL_LOCATION,
            "token": GHL_TOKEN,
            "requests_per_10s": 100_000,  # counts, not pace
            "business_units": demo_business_units(ghl.webhook_url(POOL_HOOK, GHL_LOCATION)),
        },
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def copy_of(pg: EmbeddedPostgres, template: str, name: str) -> str:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return pg.dsn.rsplit("/", 1)[0] + f"/{name}"


def push(env: dict[str, str], *args: str) -> dict[str, Any]:
    _, _, out = run_timed([STSYNC, "ghl", "push", "all", "--json", *args], env, ok=(0, 1))
    return dict(json.loads(out))


def bench(scale: str, caps: list[int]) -> tuple[list[list[str]], str]:
    rows: list[list[str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="spread-bench-") as tmp,
        EmbeddedPostgres() as pg,
        start_sandbox(scale) as sb,
    ):
        template = "mirror"
        dsn = copy_of(pg, "template1", template)
        migrate(dsn)
        with GhlSandbox.start(GhlOptions(seed=42, locations={GHL_LOCATION: GHL_TOKEN}, rate_limit=0)) as ghl:
            run_timed(
                [STSYNC, "sync", "full", "--json"],
                cli_env(sb.url, dsn, STSYNC_CONFIG=str(config(Path(tmp), dsn, ghl, "t"))),
            )
        with GhlSandbox.start(GhlOptions(seed=42, locations={GHL_LOCATION: GHL_TOKEN}, rate_limit=0)) as ghl:
            db = copy_of(pg, template, "whole")
            whole = push(cli_env(sb.url, db, STSYNC_CONFIG=str(config(Path(tmp), db, ghl, "whole"))))
            want = normalized(ghl.dump())
        rows.append(["one push", "1", f"{whole['requests']:,}", "-", str(len(duplicates(ghl.dump()))), "-"])
        for cap in caps:
            with GhlSandbox.start(GhlOptions(seed=42, locations={GHL_LOCATION: GHL_TOKEN}, rate_limit=0)) as ghl:
                db = copy_of(pg, template, f"cap{cap}")
                env = cli_env(sb.url, db, STSYNC_CONFIG=str(config(Path(tmp), db, ghl, f"cap{cap}")))
                runs, total = 0, 0
                while True:
                    doc = push(env, "--max-requests", str(cap))
                    runs += 1
                    total += int(doc["requests"])
                    if not doc["stopped"]:
                        break
                dump = ghl.dump()
            rows.append(
                [
                    f"--max-requests {cap:,}",
                    str(runs),
                    f"{total:,}",
                    f"{total / whole['requests'] - 1:+.2%}",
                    str(len(duplicates(dump))),
                    "yes" if normalized(dump) == want else "NO",
                ]
            )
            print(rows[-1], file=sys.stderr, flush=True)
    note = f"world {scale}: the first push makes {whole['planned_total']:,} changes"
    return rows, note


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", default="medium", help="ServiceTitan sandbox world")
    parser.add_argument("--max-requests", default="1000,250", help="caps to spread the push by, comma-separated")
    args = parser.parse_args()
    rows, note = bench(args.scale, [int(c) for c in args.max_requests.split(",")])
    print(f"\nstsync {git_commit()}: a first push spread over runs of `ghl push --max-requests N`\n")
    print_table(["push", "runs", "requests", "vs one push", "duplicates", "same GHL state"], rows)
    print(f"\n{note}")


if __name__ == "__main__":
    main()
