"""Completeness of lists and export feeds, the 15-minute delay, token reuse and the list filters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sbhelpers import EXPORT_ENDPOINTS, LIST_ENDPOINTS, Api, export_params, list_params, prefix


def _key(res: Any, rec: dict[str, Any]) -> Any:
    return f"{res.name[4:]}:{rec['id']}" if res.name.startswith("cft_") else rec["id"]


def _expected(sb: Any, res: Any, list_only_active: bool = False) -> set[Any]:
    world = sb.world.dump()[res.public]
    keys = {k for k in world if not res.name.startswith("cft_") or k.startswith(res.name[4:] + ":")}
    if list_only_active:
        keys = {k for k in keys if world[k].get("active", True)}
    return keys


@pytest.mark.parametrize(("res", "path"), LIST_ENDPOINTS, ids=[p for _, p in LIST_ENDPOINTS])
def test_list_pages_return_every_record_once(shared: Any, res: Any, path: str) -> None:
    """Paging with active=Any (activeState=All) returns every record exactly once; totalCount agrees.
    Contact lists have no `active` parameter and show only live contacts."""
    api = Api(shared)
    rows, total = api.walk_list(path, pageSize=7, **list_params(res))
    counts = Counter(_key(res, r) for r in rows)
    assert max(counts.values()) == 1
    assert set(counts) == _expected(shared, res, list_only_active=res.list_drop_active and res.name != "jobs")
    assert total == len(rows)


@pytest.mark.parametrize(("res", "path"), EXPORT_ENDPOINTS, ids=[p for _, p in EXPORT_ENDPOINTS])
def test_export_feed_returns_every_record_once(shared: Any, res: Any, path: str) -> None:
    """Walking the export feed returns every record (inactive ones too) exactly once, over many batches."""
    api = Api(shared)
    rows, _, calls = api.walk_export(path, **export_params(res))
    counts = Counter(r["id"] for r in rows)
    assert max(counts.values()) == 1
    assert set(counts) == _expected(shared, res)
    assert calls > 1 or len(rows) < 37


def test_export_active_parameter_defaults(shared: Any) -> None:
    """export/appointments defaults to all rows, export/appointment-assignments to active rows only."""
    api = Api(shared)
    appts, _, _ = api.walk_export(f"{prefix('jpm')}/export/appointments")
    assert any(not r["active"] for r in appts)
    assigns, _, _ = api.walk_export(f"{prefix('dispatch')}/export/appointment-assignments")
    assert assigns and all(r["active"] for r in assigns)
    every, _, _ = api.walk_export(f"{prefix('dispatch')}/export/appointment-assignments", active="Any")
    assert len(every) > len(assigns)


def test_list_active_defaults_to_true(shared: Any) -> None:
    """Without `active`, lists hide inactive records (the classic silent-drop trap); False shows only them."""
    api = Api(shared)
    path = f"{prefix('crm')}/customers"
    default, _ = api.walk_list(path, pageSize=50)
    inactive, _ = api.walk_list(path, pageSize=50, active="False")
    everything, _ = api.walk_list(path, pageSize=50, active="any")
    assert all(r["active"] for r in default) and all(not r["active"] for r in inactive) and inactive
    assert len(default) + len(inactive) == len(everything)
    invoices, _ = api.walk_list(f"{prefix('accounting')}/invoices", pageSize=100)
    all_invoices, _ = api.walk_list(f"{prefix('accounting')}/invoices", pageSize=100, activeState="All")
    assert all(r["active"] for r in invoices) and len(all_invoices) > len(invoices)


def test_list_filters(shared: Any) -> None:
    """ids, modified/created bounds (OnOrAfter inclusive, Before exclusive), sort, per-resource filters."""
    api = Api(shared)
    path = f"{prefix('crm')}/customers"
    world = shared.world.dump()["customers"]
    some = sorted(world)[5:9]
    r = api.get(path, ids=",".join(map(str, some)), active="Any").json()
    assert sorted(x["id"] for x in r["data"]) == some
    pivot = world[some[0]]["modifiedOn"]
    after, _ = api.walk_list(path, pageSize=100, active="Any", modifiedOnOrAfter=pivot)
    before, _ = api.walk_list(path, pageSize=100, active="Any", modifiedBefore=pivot)
    assert some[0] in {x["id"] for x in after} and some[0] not in {x["id"] for x in before}
    assert len(after) + len(before) == len(world)
    desc = api.get(path, active="Any", sort="-Id", pageSize=5).json()["data"]
    assert [x["id"] for x in desc] == sorted(world, reverse=True)[:5]
    by_mod = api.get(path, active="Any", sort="+ModifiedOn", pageSize=200).json()["data"]
    assert [x["modifiedOn"] for x in by_mod] == sorted(x["modifiedOn"] for x in by_mod)
    locs = api.get(f"{prefix('crm')}/locations", customerId=str(some[1]), active="Any").json()["data"]
    assert locs and all(x["customerId"] == some[1] for x in locs)
    jt = api.get(f"{prefix('jpm')}/job-types", orderBy="Name", orderByDirection="desc", active="Any").json()["data"]
    assert [x["name"] for x in jt] == sorted((x["name"] for x in jt), reverse=True)
    assert api.get(f"{prefix('crm')}/customers/contacts").status_code == 400  # needs a modified bound


def test_export_from_date_starts_at_modified_on(shared: Any) -> None:
    """`from=<date>` starts at the first record whose modifiedOn >= that date."""
    api = Api(shared)
    path = f"{prefix('jpm')}/export/jobs"
    everything, _, _ = api.walk_export(path)
    pivot = sorted(r["modifiedOn"] for r in everything)[len(everything) // 2]
    tail, _, _ = api.walk_export(path, start=pivot)
    assert {r["id"] for r in tail} == {r["id"] for r in everything if r["modifiedOn"] >= pivot}


def test_token_reuse_after_advance_yields_only_changes(fresh: Any) -> None:
    """A stored continueFrom, reused after time moves, returns exactly the records changed since."""
    api = Api(fresh)
    path = f"{prefix('crm')}/export/customers"
    _, token, _ = api.walk_export(path)
    summary = fresh.advance(minutes=180)
    fresh.advance(minutes=20, changes=False)  # past the 15-minute export delay
    changed = set(summary["created"].get("customers", [])) | set(summary["updated"].get("customers", []))
    assert changed
    rows, token2, _ = api.walk_export(path, start=token)
    assert Counter(r["id"] for r in rows) == Counter(changed)
    world = fresh.world.dump()["customers"]
    assert all(r == world[r["id"]] for r in rows)  # the current version, never a stale one
    again, _, _ = api.walk_export(path, start=token2)
    assert again == []
    full, _, _ = api.walk_export(path)
    assert sorted(r["id"] for r in full) == sorted(world)  # changed records moved, not duplicated


def test_fifteen_minute_delay_and_include_recent_changes(fresh: Any) -> None:
    """Fresh changes are hidden for 15 virtual minutes unless includeRecentChanges=true, which returns
    them without advancing the token, so the next call repeats them."""
    api = Api(fresh)
    path = f"{prefix('jpm')}/export/jobs"
    _, token, _ = api.walk_export(path)
    summary = fresh.advance(minutes=10)  # every change is younger than 15 minutes
    changed = set(summary["created"].get("jobs", [])) | set(summary["updated"].get("jobs", []))
    assert changed
    hidden, token_a, _ = api.walk_export(path, start=token)
    assert hidden == [] and token_a == token
    first = api.get(path, **{"from": token, "includeRecentChanges": "true"}).json()
    assert {r["id"] for r in first["data"]} == changed and first["hasMore"] is False
    second = api.get(path, **{"from": first["continueFrom"], "includeRecentChanges": "true"}).json()
    assert {r["id"] for r in second["data"]} == changed  # repeated, as documented
    fresh.advance(minutes=15, changes=False)
    visible, _, _ = api.walk_export(path, start=token)
    assert {r["id"] for r in visible} == changed


def test_modified_filter_sees_advanced_changes(fresh: Any) -> None:
    """modifiedOnOrAfter on a list finds the records advance changed."""
    api = Api(fresh)
    summary = fresh.advance(minutes=60)
    changed = set(summary["created"].get("jobs", [])) | set(summary["updated"].get("jobs", []))
    rows, _ = api.walk_list(f"{prefix('jpm')}/jobs", pageSize=50, modifiedOnOrAfter=summary["from"])
    assert {r["id"] for r in rows} == changed
