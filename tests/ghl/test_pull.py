"""`stsync ghl pull` links a location's existing contacts and opportunities (from the old system) to
ServiceTitan customers by email or phone, so the first push updates them instead of duplicating."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from stsync.ghl import plan
from stsync.ghl.pull import PullProgress
from stsync.ghl.service import make_client, pull
from tests.ghl.conftest import LOCATION, config_at, write_config
from tests.ghl.scenario import cli, duplicates, env_for, expected_customers, push_json, rows

# Expected customers with their own email, and with only a phone (no email anywhere).
WITH_EMAIL = """
SELECT c.customer_id, min(c.value) FROM servicetitan.st_customer_contacts c
 WHERE c.type = 'Email' AND c.active AND c.customer_id = ANY(%s) GROUP BY 1 ORDER BY 1 LIMIT 2
"""
PHONE_ONLY = """
SELECT c.customer_id, min(c.value) FROM servicetitan.st_customer_contacts c
 WHERE c.type IN ('Phone', 'MobilePhone') AND c.active AND c.customer_id = ANY(%s)
   AND NOT EXISTS (SELECT 1 FROM servicetitan.st_customer_contacts e WHERE e.customer_id = c.customer_id
                    AND e.type = 'Email' AND e.active)
 GROUP BY 1 ORDER BY 1 LIMIT 1
"""


def test_pull_links_old_contacts_and_opportunities_so_push_does_not_duplicate(
    mirror_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    path = write_config(tmp_path, mirror_dsn, ghl.url)
    config = config_at(path)
    customers = sorted(expected_customers(mirror_dsn))
    by_email = rows(mirror_dsn, WITH_EMAIL, (customers,))
    by_phone = rows(mirror_dsn, PHONE_ONLY, (customers,))
    assert len(by_email) == 2 and len(by_phone) == 1

    async def old_system() -> dict[int, str]:
        """What the old webhook flow left: contacts under other names, one opportunity in Sales."""
        ids = {}
        async with make_client(config) as client:
            for cid, email in by_email:  # the first asked not to be disturbed
                old = {"email": email.upper(), "firstName": "Old", "dnd": cid == by_email[0][0]}
                ids[cid] = (await client.upsert(old))[0]
            for cid, phone in by_phone:
                ids[cid] = (await client.upsert({"phone": plan.e164(phone), "firstName": "Old"}))[0]
            stage = await client.stage("Sales", "New Lead")
            await client.create_opportunity(
                {
                    "pipelineId": stage.pipeline_id,
                    "pipelineStageId": stage.id,
                    "name": "old",
                    "status": "open",
                    "contactId": ids[by_email[0][0]],
                }
            )
        return ids

    old = asyncio.run(old_system())
    old_opportunity = next(iter(ghl.dump()["opportunities"]))
    env = env_for("http://127.0.0.1:9", mirror_dsn, path)
    proc = cli(["ghl", "pull", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)
    assert counts["ghl_contacts"] == 3 and counts["contacts_linked"] == 3
    assert counts["opportunities_linked"] == 1
    linked = dict(rows(mirror_dsn, "SELECT st_customer_id, ghl_contact_id FROM integrations.ghl_contacts"))
    assert linked == old
    dnd = rows(mirror_dsn, "SELECT st_customer_id FROM integrations.ghl_contacts WHERE dnd")
    assert dnd == [(by_email[0][0],)]  # workflows' messages to this customer are skipped (opted_out)
    assert cli(["ghl", "pull", "--json"], env).stdout.count('"contacts_already_linked": 3') == 1

    code, doc = push_json(env)
    assert code == 0, doc
    assert doc["counts"]["contacts"]["updated"] == 3
    assert doc["counts"]["contacts"]["created"] == len(customers) - 3
    dump = ghl.dump()
    assert duplicates(dump) == []
    assert len(dump["contacts"]) == len(customers)
    for gid in old.values():
        assert dump["contacts"][gid]["firstName"] != "Old"  # now the ServiceTitan customer's data
    o = dump["opportunities"][old_opportunity]
    assert o["name"] != "old" and o["contactId"] == old[by_email[0][0]]
    assert rows(
        mirror_dsn,
        "SELECT ghl_opportunity_id FROM integrations.ghl_opportunities WHERE st_customer_id = %s AND pipeline = 'Sales'",
        (by_email[0][0],),
    ) == [(old_opportunity,)]


class Crash(Exception):
    """Stands for a kill right after a page committed: the pull's state is what the database holds."""


def test_pull_pages_past_the_first_page_resumes_after_a_crash_and_links_by_the_customer_id(
    mirror_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    """1,414 old contacts (three pages of 500), 14 of them carrying a customer's ServiceTitan id under an email
    the mirror does not know, each with an opportunity in Sales. A crash after two pages; the next pull reads
    only the third page, links all 14 contacts by the id and their opportunities, and the push then updates
    them instead of creating duplicates."""
    config = config_at(write_config(tmp_path, mirror_dsn, ghl.url))
    picked = sorted(expected_customers(mirror_dsn))[::3][:14]
    store = ghl.app.store
    field = next(f["id"] for f in store.custom_fields[LOCATION] if f["name"] == plan.CUSTOMER_ID_FIELD)
    old: dict[int, str] = {}
    with store.lock:
        for i in range(1400):
            store.create_contact(LOCATION, {"email": f"stranger{i}@example.org", "firstName": "Stranger"})
            if i % 100 == 50:
                cid = picked[len(old)]
                c = store.create_contact(
                    LOCATION,
                    {
                        "email": f"old-{cid}@example.org",
                        "firstName": "Old",
                        "customFields": [{"id": field, "field_value": str(cid)}],
                    },
                )
                old[cid] = c["id"]
    assert len(old) == 14

    async def old_opportunities() -> None:
        async with make_client(config) as client:
            stage = await client.stage("Sales", "New Lead")
            for gid in old.values():
                await client.create_opportunity(
                    {
                        "pipelineId": stage.pipeline_id,
                        "pipelineStageId": stage.id,
                        "name": "old",
                        "status": "open",
                        "contactId": gid,
                    }
                )

    asyncio.run(old_opportunities())
    reports: list[PullProgress] = []

    def crash_after_two_pages(p: PullProgress) -> None:
        reports.append(p)
        if len(reports) == 2:
            raise Crash

    with pytest.raises(Crash):
        asyncio.run(pull(config, progress=crash_after_two_pages))
    assert [(r.phase, r.seen, r.total) for r in reports] == [("contacts", 500, 1414), ("contacts", 1000, 1414)]
    ghl.clear_requests()
    counts = asyncio.run(pull(config, progress=reports.append))
    searches = [r for r in ghl.requests if r["path"] == "/contacts/search"]
    assert len(searches) == 1 and "searchAfter" in searches[0]["body"]  # the third page only
    assert counts["resumed_at"] == 1000 and counts["ghl_contacts"] == 414
    assert reports[-1].phase == "opportunities" and reports[-1].seen == 14
    linked = dict(rows(mirror_dsn, "SELECT st_customer_id, ghl_contact_id FROM integrations.ghl_contacts"))
    assert linked == old
    assert counts["opportunities_linked"] == 14

    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    code, doc = push_json(env)
    assert code == 0, doc
    assert doc["counts"]["contacts"]["updated"] == 14
    dump = ghl.dump()
    assert duplicates(dump) == []
    assert all(dump["contacts"][gid]["firstName"] != "Old" for gid in old.values())
    # The old opportunity of each customer with Sales work was taken over, not duplicated; a customer whose jobs
    # are all installs keeps its old Sales opportunity untouched (and still only linked).
    taken = rows(
        mirror_dsn,
        "SELECT ghl_opportunity_id, sync_status FROM integrations.ghl_opportunities WHERE pipeline = 'Sales'"
        " AND st_customer_id = ANY(%s)",
        (list(old),),
    )
    assert len(taken) == 14
    for gid, status in taken:
        assert (dump["opportunities"][gid]["name"] == "old") == (status == "pending"), (gid, status)
    assert sum(status == "synced" for _, status in taken) >= 10
