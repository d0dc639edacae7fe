"""The push's bookkeeping is per GHL location: switching `ghl.location_id` from A to B gives B a first push and
leaves A's maps alone; switching back to A sends only what changed meanwhile."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.ghl import GhlSandbox
from tests.ghl.conftest import ghl_options, write_config
from tests.ghl.scenario import cli, env_for, push_json, rows

A, TOKEN_A = "loc-test-a", "pit-test-a"
B, TOKEN_B = "loc-prod-b", "pit-prod-b"
BOOKKEEPING = """
SELECT 'contact', st_customer_id::text, ghl_contact_id, pushed_hash, sync_status FROM integrations.ghl_contacts
 WHERE location_id = %(loc)s
UNION ALL
SELECT 'opportunity', st_customer_id || '/' || pipeline_id, ghl_opportunity_id, pushed_hash, sync_status
  FROM integrations.ghl_opportunities WHERE location_id = %(loc)s
ORDER BY 1, 2
"""


@pytest.fixture
def st() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        yield sb


def _in(dump: dict[str, Any], location: str) -> Counter[str]:
    contacts = {k for k, c in dump["contacts"].items() if c["locationId"] == location}
    opportunities = [o for o in dump["opportunities"].values() if o["contactId"] in contacts]
    return Counter({"contacts": len(contacts), "opportunities": len(opportunities)})


def test_a_then_b_then_a(st: Any, db_dsn: str, tmp_path: Path) -> None:
    with GhlSandbox.start(ghl_options(locations={A: TOKEN_A, B: TOKEN_B})) as ghl:
        env_a = env_for(st.url, db_dsn, write_config(tmp_path, db_dsn, ghl.url, location_id=A, token=TOKEN_A))
        env_b = env_for(st.url, db_dsn, write_config(tmp_path, db_dsn, ghl.url, location_id=B, token=TOKEN_B))
        assert cli(["sync", "full"], env_a).returncode == 0

        code, first_a = push_json(env_a)
        assert code == 0, first_a
        in_a = _in(ghl.dump(), A)
        assert in_a["contacts"] == first_a["counts"]["contacts"]["created"] > 0
        a_books = rows(db_dsn, BOOKKEEPING, {"loc": A})

        code, first_b = push_json(env_b)  # the production location: a first push of its own
        assert code == 0, first_b
        assert first_b["counts"]["contacts"] == first_a["counts"]["contacts"]
        assert first_b["counts"]["opportunities"] == first_a["counts"]["opportunities"]
        assert _in(ghl.dump(), B) == in_a
        assert _in(ghl.dump(), A) == in_a
        assert rows(db_dsn, BOOKKEEPING, {"loc": A}) == a_books  # A's maps untouched

        status = json.loads(cli(["ghl", "status", "--json"], env_b).stdout)
        assert {r["location_id"] for r in status["statistics"]} >= {A, B}

        ghl.clear_requests()
        code, back = push_json(env_a)  # back to A, nothing changed: nothing sent
        assert code == 0 and back["planned_total"] == 0 and back["requests"] == 0
        assert ghl.requests == []

        st.advance(minutes=240, changes=True)
        st.advance(minutes=20, changes=False)
        assert cli(["sync", "incremental"], env_a).returncode == 0
        code, later_a = push_json(env_a)
        assert code == 0, later_a
        code, later_b = push_json(env_b)
        assert code == 0, later_b
    # Both locations stood at the same state before the advance: each is sent the same changes, and only those.
    assert 0 < later_a["planned_total"] == later_b["planned_total"] < first_a["planned_total"]
    assert later_a["counts"] == later_b["counts"]
    assert later_a["counts"]["contacts"]["unchanged"] > 0

    # A customer never pushed to B (its B rows gone) is pending in B, and only there.
    customer = rows(
        db_dsn, "SELECT min(st_customer_id) FROM integrations.ghl_opportunities WHERE location_id = %s", (B,)
    )
    with psycopg.connect(db_dsn) as conn:
        for table in ("ghl_opportunities", "ghl_contacts"):
            conn.execute(
                f"DELETE FROM integrations.{table} WHERE location_id = %s AND st_customer_id = %s", (B, customer[0][0])
            )
    pending = rows(
        db_dsn,
        "SELECT DISTINCT location_id, st_customer_id FROM integrations.jobs_pending_ghl_sync WHERE mode = 'api'",
    )
    assert pending == [(B, customer[0][0])]
