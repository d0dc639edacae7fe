"""End to end: ServiceTitan sandbox → `stsync sync` → `stsync ghl push` → GHL sandbox, all over loopback
with the real CLI; expectations are computed from the mirror with SQL (tests/ghl/scenario.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.ghl.conftest import INSTALL, PLUMBING, SALES, write_config
from tests.ghl.scenario import (
    check_against_mirror,
    cli,
    contact_customer,
    duplicates,
    env_for,
    expected_customers,
    expected_opportunities,
    field_names,
    opportunity_view,
    push_json,
    rows,
    write_requests,
)

ADVANCE_MINUTES = 240


@pytest.fixture
def st() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        yield sb


def test_push_then_advance_moves_stages_and_leaves_disabled_units_alone(
    st: Any, ghl: Any, db_dsn: str, tmp_path: Path
) -> None:
    """Acceptance 1, 2 and 4: after sync + push every expected customer has exactly one contact and every
    (customer, pipeline) its opportunity in the right stage; after `advance` (estimates sold, jobs
    completed, install jobs created) + incremental sync + push the stages follow, a protected stage never
    moves backward, a disabled business unit is left untouched; no request is ever rejected."""
    config = write_config(tmp_path, db_dsn, ghl.url)
    env = env_for(st.url, db_dsn, config)
    assert cli(["sync", "full"], env).returncode == 0
    code, doc = push_json(env)
    assert code == 0, doc
    assert [r for r in ghl.requests if r["status"] >= 400] == []
    before = check_against_mirror(db_dsn, ghl.dump())
    assert doc["counts"]["contacts"]["created"] == len(expected_customers(db_dsn))

    # a second push with nothing changed looks at no customer and asks GHL nothing; the full reconcile
    # compares every customer and finds nothing to write either
    ghl.clear_requests()
    code, doc = push_json(env)
    assert code == 0 and (doc["mode"], doc["examined"], doc["planned_total"]) == ("changes", 0, 0), doc
    assert ghl.requests == []
    code, doc = push_json(env, "--full")
    assert code == 0 and doc["mode"] == "full" and doc["examined"] >= len({k[0] for k in before}), doc
    assert write_requests(ghl.requests) == []
    assert doc["counts"]["opportunities"].get("unchanged") == len(before)

    # Install is switched off before ServiceTitan moves on: its opportunities must not change.
    assert cli(["bu", "disable", str(INSTALL)], env).returncode == 0
    install_before = {k: v for k, v in before.items() if k[1] == "Install"}
    before_customers = {k[0] for k in before}
    install_pipeline = next(p["id"] for p in ghl.dump()["pipelines"] if p["name"] == "Install")
    summary = st.advance(ADVANCE_MINUTES)
    sold = [
        e
        for e in summary["updated"].get("estimates", [])
        if st.world.dump()["estimates"][e]["status"]["name"] == "Sold"
    ]
    jobs = st.world.dump()["jobs"]
    completed = [j for j in summary["updated"].get("jobs", []) if jobs[j]["jobStatus"] == "Completed"]
    install_new = [j for j in summary["created"].get("jobs", []) if jobs[j]["businessUnitId"] == INSTALL]
    assert sold and completed and install_new, summary["counts"]
    assert cli(["sync", "incremental"], env).returncode == 0
    ghl.clear_requests()
    code, doc = push_json(env)
    assert code == 0, doc
    assert [r for r in ghl.requests if r["status"] >= 400] == []

    after_dump = ghl.dump()
    assert duplicates(after_dump) == []
    after = {}
    fields = field_names(after_dump)
    by_contact = {cid: int(contact_customer(c, fields) or 0) for cid, c in after_dump["contacts"].items()}
    for o in opportunity_view(after_dump).values():
        after[(by_contact[o["contactId"]], o["pipeline"])] = o
    assert {k: v for k, v in after.items() if k[1] == "Install"} == install_before

    want = expected_opportunities(db_dsn, [SALES])
    moved = 0
    for k, w in want.items():
        g = after[k]
        old = before.get(k)
        if old is not None and old["stage"] in ("Job Sold", "Estimate Lost") and w["stage"] != old["stage"]:
            # protected: only Estimate Lost → Job Sold is forward
            assert (g["stage"], g["status"]) in {(old["stage"], old["status"]), ("Job Sold", "won")}, (k, g, w)
            continue
        assert (g["stage"], g["status"]) == (w["stage"], w["status"]), (k, g, w)
        moved += old is not None and old["stage"] != g["stage"]
    assert moved > 0
    # the estimates sold in ServiceTitan are Job Sold/won in GHL when their job is in Sales & Service
    est = st.world.dump()["estimates"]
    sold_sales = {jobs[est[e]["jobId"]]["customerId"] for e in sold if jobs[est[e]["jobId"]]["businessUnitId"] == SALES}
    for cid in sold_sales:
        assert (after[(cid, "Sales")]["stage"], after[(cid, "Sales")]["status"]) == ("Job Sold", "won")
    # nothing of the disabled business units in the push's record
    assert rows(
        db_dsn,
        "SELECT count(*) FROM integrations.ghl_opportunities WHERE st_business_unit_id = ANY(%s)",
        ([PLUMBING, INSTALL],),
    )[0][0] == len(install_before)
    # contacts: the earlier ones stay, new customers only for the enabled unit
    assert set(by_contact.values()) == set(before_customers) | expected_customers(db_dsn, [SALES])
    assert len(after_dump["contacts"]) == len(by_contact)
    install_ids = {o["id"] for o in after_dump["opportunities"].values() if o["pipelineId"] == install_pipeline}
    assert not [r for r in write_requests(ghl.requests) if any(i in r["path"] for i in install_ids)]
