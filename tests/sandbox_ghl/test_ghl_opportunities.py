"""Opportunity rules: one per contact per pipeline, stage moves, status, search, deterministic pipelines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stsync.sandbox.ghl import INSTALL_STAGES, SALES_STAGES, GhlSandbox
from tests.sandbox_ghl.conftest import LOC, TOKEN, FakeClock, options


def _contact(client: httpx.Client, email: str) -> str:
    return client.post("/contacts/upsert", json={"locationId": LOC, "email": email}).json()["contact"]["id"]


def _pipes(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {
        p["name"]: p for p in client.get("/opportunities/pipelines", params={"locationId": LOC}).json()["pipelines"]
    }


def _create(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/opportunities/", json={"locationId": LOC, "status": "open", "name": "Job", **fields})


def test_pipelines_and_stages(client: httpx.Client) -> None:
    """Sales has the seven stsync stages, Install four, in order; stage ids are UUIDs, pipeline ids 20 chars."""
    pipes = _pipes(client)
    assert [s["name"] for s in pipes["Sales"]["stages"]] == list(SALES_STAGES)
    assert [s["name"] for s in pipes["Install"]["stages"]] == list(INSTALL_STAGES)
    assert len(pipes["Sales"]["id"]) == 20 and len(pipes["Sales"]["stages"][0]["id"]) == 36


def test_same_seed_same_ids(clock: FakeClock) -> None:
    """Pipelines, stages, custom fields and record ids depend on the seed only; another seed differs."""

    def run(seed: int) -> tuple[Any, Any, list[str]]:
        with GhlSandbox.start(options(clock, seed=seed)) as g:
            c = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
            cid = _contact(c, "a@example.com")
            oid = _create(c, pipelineId=_pipes(c)["Sales"]["id"], contactId=cid).json()["opportunity"]["id"]
            d = g.dump()
            return d["pipelines"], d["custom_fields"], [cid, oid, g.webhook_url("sales").split("/hooks/")[1]]

    assert run(42) == run(42)
    assert run(42)[0] != run(7)[0]


def test_duplicate_opportunity_names_the_existing_one(client: httpx.Client) -> None:
    """Second opportunity for a contact in the same pipeline: 400 OPPORTUNITY_NO_DUPLICATE with meta.existingId."""
    cid = _contact(client, "a@example.com")
    pipes = _pipes(client)
    first = _create(client, pipelineId=pipes["Sales"]["id"], contactId=cid).json()["opportunity"]["id"]
    r = _create(client, pipelineId=pipes["Sales"]["id"], contactId=cid, name="Another")
    assert r.status_code == 400
    assert r.json() == {
        "statusCode": 400,
        "message": "Can not create duplicate opportunity for the contact.",
        "code": "OPPORTUNITY_NO_DUPLICATE",
        "meta": {"existingId": first},
        "error": "Bad Request",
    }
    assert _create(client, pipelineId=pipes["Install"]["id"], contactId=cid).status_code == 201


def test_multiple_opportunities_knob(clock: FakeClock) -> None:
    with GhlSandbox.start(options(clock, allow_multiple_opportunities=True)) as g:
        c = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
        cid, pid = _contact(c, "a@example.com"), _pipes(c)["Sales"]["id"]
        assert [_create(c, pipelineId=pid, contactId=cid).status_code for _ in range(2)] == [201, 201]


def test_stage_moves_status_and_custom_fields(ghl: GhlSandbox, client: httpx.Client) -> None:
    """Create lands in the first stage; PUT moves stage and writes Technicians; status is separate from stage."""
    cid = _contact(client, "a@example.com")
    sales = _pipes(client)["Sales"]
    stage = {s["name"]: s["id"] for s in sales["stages"]}
    tech = next(
        f
        for f in client.get(f"/locations/{LOC}/customFields", params={"model": "opportunity"}).json()["customFields"]
        if f["name"] == "Technicians"
    )
    opp = _create(client, pipelineId=sales["id"], contactId=cid).json()["opportunity"]
    assert opp["pipelineStageId"] == stage["New Lead"] and opp["status"] == "open"
    moved = client.put(
        f"/opportunities/{opp['id']}",
        json={"pipelineStageId": stage["Job Sold"], "customFields": [{"id": tech["id"], "field_value": "Ann"}]},
    ).json()["opportunity"]
    assert moved["pipelineStageId"] == stage["Job Sold"] and moved["status"] == "open"
    assert moved["customFields"] == [{"id": tech["id"], "fieldValue": "Ann"}]
    assert client.put(f"/opportunities/{opp['id']}/status", json={"status": "won"}).json() == {"succeded": True}
    assert ghl.dump()["opportunities"][opp["id"]]["status"] == "won"
    assert client.put(f"/opportunities/{opp['id']}", json={"pipelineStageId": "nope"}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"status": "all"},
        {"status": "closed"},
        {"contactId": "x"},
        {"followers": []},
    ],
)
def test_update_rejects_bad_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    """`all` is a search filter, not a status; contactId and followers are not in UpdateOpportunityDto."""
    cid = _contact(client, "a@example.com")
    oid = _create(client, pipelineId=_pipes(client)["Sales"]["id"], contactId=cid).json()["opportunity"]["id"]
    assert client.put(f"/opportunities/{oid}", json=body).status_code == 422


def test_create_requires_the_dto_fields(client: httpx.Client) -> None:
    r = client.post("/opportunities/", json={"locationId": LOC, "name": "x"})
    assert r.status_code == 422
    assert {"pipelineId should not be empty", "status should not be empty", "contactId should not be empty"} <= set(
        r.json()["message"]
    )


def test_search_by_contact_pipeline_and_status(client: httpx.Client) -> None:
    """GET /opportunities/search with snake_case filters and paging."""
    pipes = _pipes(client)
    ids = {}
    for i in range(3):
        cid = _contact(client, f"c{i}@example.com")
        ids[cid] = _create(client, pipelineId=pipes["Sales"]["id"], contactId=cid).json()["opportunity"]["id"]
    cid0, oid0 = next(iter(ids.items()))
    client.put(f"/opportunities/{oid0}/status", json={"status": "lost"})

    def search(**q: Any) -> dict[str, Any]:
        r = client.get("/opportunities/search", params={"location_id": LOC, **q})
        assert r.status_code == 200, r.text
        return r.json()

    assert [o["id"] for o in search(contact_id=cid0, pipeline_id=pipes["Sales"]["id"])["opportunities"]] == [oid0]
    assert search(pipeline_id=pipes["Install"]["id"])["opportunities"] == []
    assert search(status="open")["meta"]["total"] == 2
    first = search(limit=2)
    assert len(first["opportunities"]) == 2 and first["meta"]["nextPage"] == 2
    assert len(search(limit=2, page=2)["opportunities"]) == 1
    assert client.get("/opportunities/search", params={"locationId": LOC}).status_code == 422
