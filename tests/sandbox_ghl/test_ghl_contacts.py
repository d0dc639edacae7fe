"""Contact rules: upsert matching, the duplicate 400 of create, strict DTOs, location scoping, paging."""

from __future__ import annotations

import httpx
import pytest

from stsync.sandbox.ghl import GhlSandbox
from tests.sandbox_ghl.conftest import LOC, OTHER_LOC, OTHER_TOKEN, TOKEN, FakeClock, options


def _upsert(client: httpx.Client, **fields: object) -> dict:
    r = client.post("/contacts/upsert", json={"locationId": LOC, **fields})
    assert r.status_code == 200, r.text
    return r.json()


def test_upsert_matches_by_email_then_phone(client: httpx.Client) -> None:
    """Same email (any case) or same phone (any formatting) updates the existing contact."""
    first = _upsert(client, email="Ann@Example.com", phone="(512) 555-0100", firstName="Ann")
    assert first["new"] is True
    assert first["contact"]["phone"] == "+15125550100"
    by_email = _upsert(client, email="ann@example.com", lastName="Lee")
    by_phone = _upsert(client, phone="+1 512-555-0100", city="Austin")
    assert (by_email["new"], by_phone["new"]) == (False, False)
    assert by_email["contact"]["id"] == by_phone["contact"]["id"] == first["contact"]["id"]
    assert by_phone["contact"]["name"] == "Ann Lee" and by_phone["contact"]["city"] == "Austin"
    assert _upsert(client, email="other@example.com")["new"] is True


def test_upsert_email_wins_and_conflicting_phone_is_ignored(ghl: GhlSandbox, client: httpx.Client) -> None:
    """Email matches A, phone matches B: A is updated, the phone is dropped, no error (ISSUE #37)."""
    a = _upsert(client, email="a@example.com")["contact"]["id"]
    b = _upsert(client, phone="+15125550199")["contact"]["id"]
    out = _upsert(client, email="a@example.com", phone="+15125550199", firstName="Al")
    assert out["contact"]["id"] == a and "phone" not in out["contact"]
    assert ghl.dump()["contacts"][b]["phone"] == "+15125550199"


def test_phone_first_preference(clock: FakeClock) -> None:
    """duplicate_match=("phone", "email") makes the phone decide."""
    with GhlSandbox.start(options(clock, duplicate_match=("phone", "email"))) as g:
        c = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
        a = c.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com"}).json()["contact"]["id"]
        b = c.post("/contacts/upsert", json={"locationId": LOC, "phone": "5125550100"}).json()["contact"]["id"]
        out = c.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com", "phone": "5125550100"})
        assert out.json()["contact"]["id"] == b != a


def test_create_duplicate_is_400_with_meta_contact_id(client: httpx.Client) -> None:
    """POST /contacts/ on a location without duplicates: 400 naming the existing contact and the field."""
    cid = _upsert(client, email="a@example.com", phone="+15125550100", firstName="Ann")["contact"]["id"]
    r = client.post("/contacts/", json={"locationId": LOC, "phone": "512-555-0100"})
    assert r.status_code == 400
    assert r.json() == {
        "statusCode": 400,
        "message": "This location does not allow duplicated contacts.",
        "meta": {"contactName": "Ann", "contactId": cid, "matchingField": "phone"},
    }


def test_duplicates_allowed_knob(clock: FakeClock) -> None:
    """allow_duplicate_contacts: create always creates; upsert creates only with createNewIfDuplicateAllowed."""
    with GhlSandbox.start(options(clock, allow_duplicate_contacts=True)) as g:
        c = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
        body = {"locationId": LOC, "email": "a@example.com"}
        assert c.post("/contacts/", json=body).status_code == 201
        assert c.post("/contacts/", json=body).status_code == 201
        assert c.post("/contacts/upsert", json=body).json()["new"] is False
        assert c.post("/contacts/upsert", json={**body, "createNewIfDuplicateAllowed": True}).json()["new"] is True
        assert len(g.dump()["contacts"]) == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "post",
            "/contacts/upsert",
            {"locationId": LOC, "additionalEmails": ["x@y.z"]},
            "property additionalEmails should not exist",
        ),
        ("post", "/contacts/upsert", {"email": "a@b.c"}, "locationId should not be empty"),
        ("post", "/contacts/", {"locationId": LOC, "dnd": "yes"}, "dnd must be a boolean value"),
        ("put", "/contacts/{id}", {"gender": "female"}, "property gender should not exist"),
        ("put", "/contacts/{id}", {"locationId": LOC}, "property locationId should not exist"),
    ],
)
def test_strict_dto_422(client: httpx.Client, method: str, path: str, body: dict, message: str) -> None:
    """Fields outside the DTO, wrong types and missing required fields: 422 listing the violation."""
    cid = _upsert(client, email="a@example.com")["contact"]["id"]
    r = client.request(method.upper(), path.format(id=cid), json=body)
    assert r.status_code == 422
    assert message in r.json()["message"]


def test_other_location_is_403(ghl: GhlSandbox, client: httpx.Client) -> None:
    """A locationId (body or query) or a record of another location: 403 with the real message."""
    forbidden = {"statusCode": 403, "message": "The token does not have access to this location."}
    r = client.post("/contacts/upsert", json={"locationId": OTHER_LOC, "email": "a@example.com"})
    assert (r.status_code, r.json()) == (403, forbidden)
    assert client.get("/contacts/", params={"locationId": OTHER_LOC}).status_code == 403
    other = httpx.post(
        f"{ghl.url}/contacts/upsert",
        json={"locationId": OTHER_LOC, "email": "z@example.com"},
        headers={"Authorization": f"Bearer {OTHER_TOKEN}", "Version": "2021-07-28"},
    ).json()["contact"]["id"]
    assert client.get(f"/contacts/{other}").status_code == 403
    assert client.get("/contacts/nope").json() == {"statusCode": 400, "message": "Contact with id nope not found"}


def test_list_pages_with_start_after_id(client: httpx.Client) -> None:
    """GET /contacts/ pages oldest first; meta.startAfterId / startAfter lead to the next page."""
    ids = [_upsert(client, email=f"c{i}@example.com")["contact"]["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, object] = {"locationId": LOC, "limit": 2}
    while True:
        body = client.get("/contacts/", params=params).json()
        seen += [c["id"] for c in body["contacts"]]
        if "startAfterId" not in body["meta"]:
            break
        params = {**params, "startAfterId": body["meta"]["startAfterId"], "startAfter": body["meta"]["startAfter"]}
    assert seen == ids
    assert client.get("/contacts/", params={"locationId": LOC, "limit": 101}).status_code == 422
    assert [
        c["id"] for c in client.get("/contacts/", params={"locationId": LOC, "query": "c3@"}).json()["contacts"]
    ] == [ids[3]]


def test_search_filters_on_email_and_phone(client: httpx.Client) -> None:
    """POST /contacts/search: eq filters on email (case-insensitive) and phone (normalised), paging."""
    a = _upsert(client, email="a@example.com", phone="+15125550100")["contact"]["id"]
    for i in range(3):
        _upsert(client, email=f"x{i}@example.com")

    def search(**body: object) -> dict:
        r = client.post("/contacts/search", json={"locationId": LOC, **body})
        assert r.status_code == 200, r.text
        return r.json()

    assert [
        c["id"] for c in search(filters=[{"field": "email", "operator": "eq", "value": "A@example.com"}])["contacts"]
    ] == [a]
    assert [
        c["id"] for c in search(filters=[{"field": "phone", "operator": "eq", "value": "512 555 0100"}])["contacts"]
    ] == [a]
    page2 = search(page=2, pageLimit=3)
    assert page2["total"] == 4 and len(page2["contacts"]) == 1
    assert client.post("/contacts/search", json={"locationId": LOC, "bogus": 1}).status_code == 422


def test_contact_custom_fields_by_id_and_key(ghl: GhlSandbox, client: httpx.Client) -> None:
    """Technicians on a contact, written by id (field_value) or by key (fieldValue), read back as {id, value}."""
    fields = client.get(f"/locations/{LOC}/customFields", params={"model": "contact"}).json()["customFields"]
    tech = next(f for f in fields if f["name"] == "Technicians")
    assert tech["fieldKey"] == "contact.technicians"
    c = _upsert(client, email="a@example.com", customFields=[{"id": tech["id"], "field_value": "Ann"}])["contact"]
    assert c["customFields"] == [{"id": tech["id"], "value": "Ann"}]
    c = _upsert(client, email="a@example.com", customFields=[{"key": "contact.technicians", "fieldValue": "Bob"}])[
        "contact"
    ]
    assert c["customFields"] == [{"id": tech["id"], "value": "Bob"}]
