"""The in-process API works end to end over a real socket."""

from __future__ import annotations

import httpx

from stsync.sandbox.ghl import GhlSandbox
from tests.sandbox_ghl.conftest import LOC


def test_upsert_then_read_back(ghl: GhlSandbox, client: httpx.Client) -> None:
    """An upserted contact is served by GET and shows up in the dump exactly as served."""
    r = client.post("/contacts/upsert", json={"locationId": LOC, "email": "ann@example.com", "firstName": "Ann"})
    assert r.status_code == 200
    assert r.json()["new"] is True
    cid = r.json()["contact"]["id"]
    got = client.get(f"/contacts/{cid}").json()["contact"]
    assert got == ghl.dump()["contacts"][cid]
    assert ghl.url.startswith("http://127.0.0.1:")
    assert [(q["method"], q["path"], q["status"]) for q in ghl.requests] == [
        ("POST", "/contacts/upsert", 200),
        ("GET", f"/contacts/{cid}", 200),
    ]
