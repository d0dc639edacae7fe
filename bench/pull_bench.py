"""Benchmark `stsync ghl pull` of a location that an old system filled: 50,000 contacts and as many
opportunities, against the GHL sandbox's real limit (100 requests / 10 s per location). Figures, not pass/fail.

    .venv/bin/python bench/pull_bench.py [--scale large] [--contacts 50000]

On a fresh throwaway PostgreSQL and the in-process sandboxes:
- `sync full` of the ServiceTitan world;
- the GHL location seeded as the old system left it: a contact for every other customer the push would create
  (under its email, else its phone, as the push would send them), unrelated contacts up to --contacts, and one
  opportunity in Sales per contact;
- `ghl pull` killed with SIGKILL once it has read 10,000 opportunities, then run again to the end: requests
  of both, links, and the resumed run's first page;
- the same pull uninterrupted (a finished pull starts over): wall, peak RSS, requests, requests/s, 429s;
- `ghl push --dry-run`: how many contacts the first push would create, against the customers without an old
  contact (a duplicate would show as more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from bench.ghl_bench import write_config
from stsync.config import load_config
from stsync.db.migrations import migrate
from stsync.demo import GHL_LOCATION, GHL_TOKEN
from stsync.ghl import plan
from stsync.ghl.push import batches
from stsync.ghl.service import store_settings
from stsync.ghl.store import open_store
from stsync.sandbox.ghl import GhlOptions, GhlSandbox
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env

KILL_AFTER = 10_000  # opportunities read when the first pull is killed


async def push_keys(config_path: Path) -> list[dict[str, Any]]:
    """The email and phone the push would send for each customer it would create a contact for."""
    out = []
    async with open_store(store_settings(load_config(config_path, {}))) as store:
        for ids in batches([r["customer_id"] for r in await store.fetch("push_customers")]):
            for cust in await store.fetch("desired_contacts", {"mode": "api", "ids": ids}):
                fields = plan.contact_fields(cust)
                out.append(
                    {"customer_id": cust["customer_id"], **{k: fields[k] for k in ("email", "phone") if k in fields}}
                )
    return out


def seed(ghl: GhlSandbox, customers: list[dict[str, Any]], total: int) -> list[int]:
    """Fill the location as the old system left it; returns the customers that got an old contact."""
    store = ghl.app.store
    sales = next(p for p in store.pipelines[GHL_LOCATION] if p["name"] == "Sales")
    old = [c for c in customers[::2] if "email" in c or "phone" in c]
    with store.lock:
        for i in range(total):
            if i < len(old):
                c = old[i]
                data = {"firstName": "Old", **({"email": c["email"]} if "email" in c else {"phone": c["phone"]})}
            else:
                data = {"firstName": "Stranger", "email": f"stranger{i}@example.org"}
            contact = store.create_contact(GHL_LOCATION, data)
            body = {"name": "old", "pipelineId": sales["id"], "status": "open", "contactId": contact["id"]}
            store.create_opportunity(GHL_LOCATION, body, sales["stages"][0]["id"])
    return [c["customer_id"] for c in old]


def pull_state(dsn: str) -> tuple[str, int] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT phase, seen FROM integrations.ghl_pull_state").fetchone()
    return (row[0], row[1]) if row else None


def killed_pull(env: dict[str, str], dsn: str) -> float:
    """Start `ghl pull` and SIGKILL it once KILL_AFTER opportunities are committed; returns its wall seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [STSYNC, "ghl", "pull", "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while proc.poll() is None:
        state = pull_state(dsn)
        if state and state[0] == "opportunities" and state[1] >= KILL_AFTER:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    return time.monotonic() - started


def counted(ghl: GhlSandbox, since: int) -> tuple[int, int]:
    reqs = ghl.requests[since:]
    return len(reqs), sum(1 for r in reqs if r["status"] == 429)


def bench(scale: str, contacts: int) -> tuple[list[list[str]], list[str]]:
    rows: list[list[str]] = []
    notes: list[str] = []
    opts = GhlOptions(seed=42, locations={GHL_LOCATION: GHL_TOKEN})  # the real 100 / 10 s, 200,000 / day
    with (
        tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp,
        EmbeddedPostgres() as pg,
        start_sandbox(scale) as sb,
        GhlSandbox.start(opts) as ghl,
    ):
        migrate(pg.dsn)
        path = write_config(Path(tmp), pg.dsn, ghl, None)
        env = cli_env(sb.url, pg.dsn, STSYNC_CONFIG=str(path))
        env.pop("STSYNC_RETRY_NO_WAIT", None)  # real back-off waits, as in production
        run_timed([STSYNC, "sync", "full", "--json"], env)
        customers = asyncio.run(push_keys(path))
        old = seed(ghl, customers, contacts)
        with_old = len(old)
        notes.append(
            f"world {scale}: {len(customers):,} customers the push would create contacts for; GHL location: "
            f"{contacts:,} contacts ({with_old:,} of them those customers' old contacts), {contacts:,} opportunities"
        )

        mark = len(ghl.requests)
        wall = killed_pull(env, pg.dsn)
        n, n429 = counted(ghl, mark)
        rows.append([f"pull killed at {KILL_AFTER:,} opportunities", f"{wall:.1f}", "-", f"{n:,}", "-", str(n429), "-"])
        mark = len(ghl.requests)
        wall, rss, out = run_timed([STSYNC, "ghl", "pull", "--json"], env)
        n2, n429 = counted(ghl, mark)
        resumed = json.loads(out)
        rows.append(
            ["pull resumed", f"{wall:.1f}", f"{rss:.0f}", f"{n2:,}", f"{n2 / wall:.2f}", str(n429), json.dumps(resumed)]
        )
        mark = len(ghl.requests)
        wall, rss, out = run_timed([STSYNC, "ghl", "pull", "--json"], env)
        n3, n429 = counted(ghl, mark)
        rows.append(
            [
                "pull uninterrupted",
                f"{wall:.1f}",
                f"{rss:.0f}",
                f"{n3:,}",
                f"{n3 / wall:.2f}",
                str(n429),
                json.dumps(json.loads(out)),
            ]
        )
        notes.append(f"killed + resumed: {n + n2:,} requests against {n3:,} uninterrupted ({(n + n2) / n3 - 1:+.1%})")

        with psycopg.connect(pg.dsn) as conn:
            linked = conn.execute(
                "SELECT count(*) FROM integrations.ghl_contacts WHERE ghl_contact_id IS NOT NULL"
            ).fetchone()
            opps = conn.execute("SELECT count(*) FROM integrations.ghl_opportunities").fetchone()
            missed = conn.execute(
                "SELECT count(*) FROM unnest(%s::bigint[]) AS o(id) WHERE NOT EXISTS (SELECT 1 FROM "
                "integrations.ghl_contacts c WHERE c.st_customer_id = o.id AND c.ghl_contact_id IS NOT NULL)",
                (old,),
            ).fetchone()
        notes.append(
            f"links: {linked[0]:,} contacts, {opps[0]:,} opportunities; customers with an old contact left unlinked: "
            f"{missed[0]:,}"
        )
        _, _, out = run_timed([STSYNC, "ghl", "push", "--dry-run", "--json"], env, ok=(0, 1))
        planned = json.loads(out)["counts"]["contacts"]
        creates = planned.get("planned_create", 0)
        notes.append(
            f"first push (dry run) would create {creates:,} contacts for {len(customers) - with_old:,} customers "
            f"without an old contact; planned contacts: {dict(planned)}"
        )
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", default="large", help="ServiceTitan sandbox world")
    parser.add_argument("--contacts", type=int, default=50_000, help="contacts (and opportunities) in the location")
    args = parser.parse_args()
    rows, notes = bench(args.scale, args.contacts)
    print(f"\nstsync {git_commit()}: `stsync ghl pull` vs the GHL sandbox at 100 requests / 10 s per location\n")
    print_table(["run", "wall s", "peak RSS MB", "requests", "req/s", "429s", "counts"], rows)
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
