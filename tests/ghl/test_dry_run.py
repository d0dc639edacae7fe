"""`stsync ghl push --dry-run` prints the counts and the first planned changes, and writes nothing: no
request reaches GHL (so its state is unchanged) and the integrations tables stay as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.ghl.conftest import default_units, write_config
from tests.ghl.scenario import cli, env_for, push_json

TABLES = ("business_units", "ghl_contacts", "ghl_opportunities", "ghl_webhook_posts")


def snapshot(dsn: str) -> dict[str, list[Any]]:
    with psycopg.connect(dsn) as conn:
        return {
            t: sorted(map(str, conn.execute(f"SELECT to_jsonb(x) FROM integrations.{t} x").fetchall())) for t in TABLES
        }


def test_dry_run_lists_changes_and_writes_nothing(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """First on an empty record (even the business-unit seeding is rolled back), then after a push and a
    change in the mirror: the planned count is what the real push then does."""
    config = write_config(tmp_path, mirror_dsn, ghl.url, units=default_units(ghl.webhook_url("pool")))
    env = env_for("http://127.0.0.1:9", mirror_dsn, config)
    before_db, before_ghl = snapshot(mirror_dsn), ghl.dump()
    assert before_db["business_units"] == []

    proc = cli(["ghl", "push", "--dry-run", "--limit", "5"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip().splitlines()
    assert len(lines) == 6
    assert all(line.startswith("  contact create customer=") for line in lines[:5])
    summary = lines[-1]
    assert summary.startswith("ghl push all (dry run): exit=0 contacts[planned=")
    assert "webhooks[planned=" in summary and "opportunities[planned=" in summary
    assert ghl.requests == []
    assert ghl.dump() == before_ghl
    assert snapshot(mirror_dsn) == before_db

    code, dry = push_json(env, "--dry-run")
    assert code == 0 and len(dry["planned"]) == 20 and ghl.requests == []
    contacts = dry["counts"]["contacts"]
    assert contacts["planned_create"] == contacts["planned"] and "planned_update" not in contacts  # all new
    code, real = push_json(env)
    # 1: two Pool jobs' customers have neither email nor phone, so they cannot go to a webhook
    assert code == 1 and real["counts"]["webhooks"] == {"posted": 18, "failed": 2}, real
    done = sum(n for kind in real["counts"].values() for k, n in kind.items() if k in ("created", "updated", "posted"))
    done += real["counts"]["webhooks"]["failed"]
    assert done == dry["planned_total"]

    # after a change in the mirror: only the changed contacts are planned, as updates
    with psycopg.connect(mirror_dsn) as conn:
        renamed = conn.execute(
            "UPDATE servicetitan.st_customers SET last_synced_at = now(), name = name || ' Sr' WHERE st_id IN "
            "(SELECT st_customer_id FROM integrations.ghl_contacts ORDER BY 1 LIMIT 3)"
        ).rowcount
    before_db, before_ghl = snapshot(mirror_dsn), ghl.dump()
    ghl.clear_requests()
    code, dry = push_json(env, "--dry-run")
    assert code == 0
    assert [p for p in dry["planned"] if p.startswith("contact ")] == [
        p for p in dry["planned"] if p.startswith("contact update customer=") and p.endswith("(changed)")
    ]
    assert dry["counts"]["contacts"]["planned"] == dry["counts"]["contacts"]["planned_update"] == renamed
    assert ghl.requests == [] and ghl.dump() == before_ghl and snapshot(mirror_dsn) == before_db
    assert json.loads(cli(["ghl", "status", "--json"], env).stdout)["statistics"]


def test_limit_pushes_at_most_n_changes_and_the_next_run_goes_on(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    code, doc = push_json(env, "--limit", "7")
    assert code == 0 and doc["counts"]["contacts"] == {"created": 7}, doc
    assert len(ghl.dump()["contacts"]) == 7
    code, doc = push_json(env, "contacts")
    assert code == 0 and doc["counts"]["contacts"]["unchanged"] == 7
    assert len(ghl.dump()["contacts"]) == 7 + doc["counts"]["contacts"]["created"]


def test_a_dry_run_without_a_location_says_what_it_planned_against(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """Bookkeeping is per location: without ghl.location_id a dry run plans a first push into an empty location,
    and says so rather than passing that off as the state of the location pushed to before."""
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    assert push_json(env)[0] == 0
    unset = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, location_id=None))
    proc = cli(["ghl", "push", "--dry-run"], unset)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("(no ghl.location_id: planned as the first push into an empty location)")
    code, doc = push_json(env, "--dry-run")  # with the location: nothing left to push there
    assert code == 0 and doc["planned_total"] == 0 and doc["location_id"] is not None
