"""Every endpoint's happy path answers what the official spec says (deviations: specs.RESPONSE_PATCHES),
and error bodies have the shapes of common-schemas.json."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stsync.sandbox.ghl import GhlSandbox, specs
from tests.sandbox_ghl.conftest import LOC
from tests.sandbox_ghl.contract import assert_matches


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def world(client: httpx.Client) -> dict[str, Any]:
    contact = _ok(
        client.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com", "phone": "+15550001111"})
    )
    pipes = _ok(client.get("/opportunities/pipelines", params={"locationId": LOC}))
    fields = _ok(client.get(f"/locations/{LOC}/customFields", params={"model": "opportunity"}))
    tech = next(f for f in fields["customFields"] if f["name"] == "Technicians")
    sales = pipes["pipelines"][0]
    opp = _ok(
        client.post(
            "/opportunities/",
            json={
                "locationId": LOC,
                "pipelineId": sales["id"],
                "name": "Estimate 1",
                "status": "open",
                "contactId": contact["contact"]["id"],
                "monetaryValue": 1250.5,
                "customFields": [{"id": tech["id"], "field_value": "Ann, Bob"}],
            },
        ),
        201,
    )
    return {"contact": contact, "pipes": pipes, "fields": fields, "opp": opp, "sales": sales}


def test_every_endpoint_matches_its_response_schema(client: httpx.Client, world: dict[str, Any]) -> None:
    """Happy path of each served endpoint, validated against the spec's 2xx schema."""
    cid = world["contact"]["contact"]["id"]
    oid = world["opp"]["opportunity"]["id"]
    sales = world["sales"]
    assert_matches("contacts", "/contacts/upsert", "post", 200, world["contact"])
    assert_matches("opportunities", "/opportunities/pipelines", "get", 200, world["pipes"])
    assert_matches("locations", "/locations/{locationId}/customFields", "get", 200, world["fields"])
    assert_matches("opportunities", "/opportunities/", "post", 201, world["opp"])
    created = _ok(
        client.post("/contacts/", json={"locationId": LOC, "firstName": "Bo", "email": "bo@example.com"}), 201
    )
    assert_matches("contacts", "/contacts/", "post", 201, created)
    assert_matches("contacts", "/contacts/{contactId}", "get", 200, _ok(client.get(f"/contacts/{cid}")))
    upd = _ok(client.put(f"/contacts/{cid}", json={"city": "Austin", "tags": ["st"]}))
    assert_matches("contacts", "/contacts/{contactId}", "put", 200, upd)
    assert_matches("contacts", "/contacts/", "get", 200, _ok(client.get("/contacts/", params={"locationId": LOC})))
    fid = world["fields"]["customFields"][0]["id"]
    one = _ok(client.get(f"/locations/{LOC}/customFields/{fid}"))
    assert_matches("locations", "/locations/{locationId}/customFields/{id}", "get", 200, one)
    assert_matches("opportunities", "/opportunities/{id}", "get", 200, _ok(client.get(f"/opportunities/{oid}")))
    moved = _ok(client.put(f"/opportunities/{oid}", json={"pipelineStageId": sales["stages"][3]["id"]}))
    assert_matches("opportunities", "/opportunities/{id}", "put", 200, moved)
    won = _ok(client.put(f"/opportunities/{oid}/status", json={"status": "won"}))
    assert_matches("opportunities", "/opportunities/{id}/status", "put", 200, won)
    found = _ok(client.get("/opportunities/search", params={"location_id": LOC, "contact_id": cid}))
    assert_matches("opportunities", "/opportunities/search", "get", 200, found)
    assert_matches("opportunities", "/opportunities/{id}", "delete", 200, _ok(client.delete(f"/opportunities/{oid}")))
    assert_matches("contacts", "/contacts/{contactId}", "delete", 200, _ok(client.delete(f"/contacts/{cid}")))


def test_search_bodies_have_the_documented_shape(client: httpx.Client, world: dict[str, Any]) -> None:
    """POST /contacts/search and the duplicate lookup have no 200 schema in the spec: pin the observed shape."""
    body = _ok(client.post("/contacts/search", json={"locationId": LOC, "page": 1, "pageLimit": 10}))
    assert set(body) == {"contacts", "total"} and body["total"] == 1
    assert_matches("contacts", "/contacts/{contactId}", "get", 200, {"contact": body["contacts"][0]})
    dup = _ok(client.get("/contacts/search/duplicate", params={"locationId": LOC, "email": "a@example.com"}))
    assert dup["contact"]["id"] == world["contact"]["contact"]["id"]


def test_error_bodies_match_common_schemas(ghl: GhlSandbox, client: httpx.Client, world: dict[str, Any]) -> None:
    """400, 401 and 422 bodies validate against BadRequestDTO, UnauthorizedDTO and UnprocessableDTO."""
    r400 = client.post("/contacts/", json={"locationId": LOC, "email": "a@example.com"})
    assert r400.status_code == 400
    assert_matches("contacts", "/contacts/", "post", 400, r400.json())
    r401 = httpx.get(f"{ghl.url}/contacts/x", headers={"Version": "2021-07-28", "Authorization": "Bearer nope"})
    assert r401.status_code == 401
    assert_matches("contacts", "/contacts/{contactId}", "get", 401, r401.json())
    r422 = client.post("/contacts/upsert", json={"locationId": LOC, "email": 5, "additionalEmails": []})
    assert r422.status_code == 422
    assert_matches("contacts", "/contacts/upsert", "post", 422, r422.json())
    assert r422.json() == {
        "statusCode": 422,
        "message": ["property additionalEmails should not exist", "email must be a string"],
        "error": "Unprocessable Entity",
    }


@pytest.mark.parametrize(
    ("spec", "dto", "extra"),
    [
        ("contacts", "UpsertContactDto", {}),
        ("contacts", "CreateContactDto", {}),
        ("contacts", "UpdateContactDto", {}),
        ("opportunities", "CreateDto", {"status": "open"}),
        ("opportunities", "UpdateOpportunityDto", {"status": "won"}),
        ("opportunities", "UpdateStatusDto", {"status": "lost"}),
    ],
)
def test_the_specs_own_examples_are_accepted(spec: str, dto: str, extra: dict[str, Any]) -> None:
    """The strict validator never refuses a body built from the DTO's documented examples."""
    props = specs.load(spec)["components"]["schemas"][dto]["properties"]
    body = {k: v["example"] for k, v in props.items() if "example" in v} | extra
    if "dndSettings" in props:
        body["dndSettings"] = {"Call": {"status": "active", "message": "m", "code": "c"}}
    if "customFields" in props:
        body["customFields"] = [{"id": "x", "field_value": "v"}, {"key": "k", "fieldValue": ["a"]}]
    assert specs.validate_body(spec, dto, body) == []
