"""What a client (httpx) sees for each fault knob, and the auth / rate-limit behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sbhelpers import Api, prefix

from stsync.sandbox import Sandbox, SandboxOptions
from tests.sandbox_creds import APP_KEY, TENANT, token_form

CUSTOMERS = f"{prefix('crm')}/customers"
EXPORT = f"{prefix('crm')}/export/customers"


def test_status_burst_then_recovery(api: Api) -> None:
    """`status` fires on the next N matching requests, then the endpoint answers normally."""
    api.sb.faults.set({"rules": [{"kind": "status", "status": 502, "count": 2, "path": "/export/"}]})
    assert api.get(CUSTOMERS).status_code == 200  # path filter: lists are untouched
    assert [api.get(EXPORT).status_code for _ in range(3)] == [502, 502, 200]
    api.sb.faults.set({"status": {"status": 500, "count": 1}})
    assert api.get(EXPORT).status_code == 500 and api.get(EXPORT).status_code == 200


def test_429_with_and_without_retry_after(api: Api) -> None:
    """429 storms with a Retry-After header, or without one (title still names the wait)."""
    api.sb.faults.set(
        {
            "rules": [
                {"kind": "rate_limit", "count": 1, "retry_after": 3},
                {"kind": "rate_limit", "count": 1, "retry_after": None},
            ]
        }
    )
    r1, r2, r3 = api.get(CUSTOMERS), api.get(CUSTOMERS), api.get(CUSTOMERS)
    assert r1.status_code == 429 and r1.headers["Retry-After"] == "3"
    assert r1.json()["title"] == "Rate limit is exceeded. Try again in 3 seconds."
    assert r2.status_code == 429 and "Retry-After" not in r2.headers
    assert r3.status_code == 200


def test_dropped_connection(api: Api) -> None:
    """`drop` closes the socket without a response: httpx raises a transport error."""
    api.sb.faults.set({"drop": {"count": 1}})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.get(CUSTOMERS)
    assert api.get(CUSTOMERS).status_code == 200


def test_truncated_body(api: Api) -> None:
    """`truncate` sends the full Content-Length, then part of the body, then closes."""
    api.sb.faults.set({"truncate": {"count": 1, "keep": 0.3}})
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(EXPORT)
    assert api.get(EXPORT).status_code == 200


def test_faults_through_the_in_process_transport(fresh: Sandbox) -> None:
    """The socket-less transport surfaces drop and truncate as httpx.RemoteProtocolError too."""
    api = Api(fresh, transport=True)
    fresh.faults.set({"rules": [{"kind": "drop", "count": 1}, {"kind": "truncate", "count": 1}]})
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            api.get(CUSTOMERS)
    assert api.get(CUSTOMERS).status_code == 200


def test_invalidated_tokens_get_401(api: Api) -> None:
    """Invalidating tokens mid-run makes the next call 401; a new token works."""
    assert api.get(CUSTOMERS).status_code == 200
    api.sb.faults.set({"invalidate_tokens": True})
    r = api.get(CUSTOMERS)
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    api.token = api.new_token()
    assert api.get(CUSTOMERS).status_code == 200


def test_malformed_record_in_page(api: Api) -> None:
    """`malformed` puts a wrong-typed field into a served page and records which id it was."""
    api.sb.faults.set({"malformed": {"resource": "jobs", "field": "customerId", "value": "not-a-number", "count": 1}})
    body = api.get(f"{prefix('jpm')}/export/jobs").json()
    bad = [r for r in body["data"] if r["customerId"] == "not-a-number"]
    assert len(bad) == 1
    assert api.sb.faults.malformed_served == [
        {
            "resource": "jobs",
            "id": bad[0]["id"],
            "field": "customerId",
            "path": f"{prefix('jpm')}/export/jobs",
        }
    ]
    again = api.get(f"{prefix('jpm')}/export/jobs").json()
    assert all(isinstance(r["customerId"], int) for r in again["data"])


def test_latency_rule_is_consumed(api: Api) -> None:
    """Latency rules delay matching requests (no timing assertion: the rule's count is consumed)."""
    api.sb.faults.set({"latency": {"ms": 5, "jitter_ms": 5, "count": 2}})
    assert api.get(CUSTOMERS).status_code == 200 and api.get(CUSTOMERS).status_code == 200
    assert api.sb.faults.describe()["remaining"] == [0]


def test_seeded_rate_is_deterministic() -> None:
    """A `rate` rule fires on the same requests for the same fault seed."""
    patterns = []
    for _ in range(2):
        with Sandbox.start(SandboxOptions(faults={"seed": 3, "status": {"rate": 0.5}})) as sb:
            api = Api(sb, transport=True)
            patterns.append([api.get(CUSTOMERS).status_code for _ in range(20)])
    assert patterns[0] == patterns[1] and {200, 503} == set(patterns[0])


def test_admin_faults_endpoint(api: Api) -> None:
    """POST /_sandbox/faults sets rules, DELETE clears them; admin calls need no auth."""
    r = api.http.post("/_sandbox/faults", json={"status": {"status": 503, "count": 5}})
    assert r.status_code == 200
    assert api.get(CUSTOMERS).status_code == 503
    assert api.http.delete("/_sandbox/faults").status_code == 200
    assert api.get(CUSTOMERS).status_code == 200
    assert api.http.post("/_sandbox/faults", json={"rules": [{"kind": "nope"}]}).status_code == 400


def test_rate_limit_per_app_key_and_tenant() -> None:
    """Past N requests per second the gateway answers 429 with Retry-After."""
    with Sandbox.start(SandboxOptions(rate_limit=3)) as sb:
        api = Api(sb, transport=True)
        codes = [api.get(CUSTOMERS) for _ in range(12)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and all(r.headers["Retry-After"] == "1" for r in limited)
    assert limited[0].json()["title"] == "Rate limit is exceeded. Try again in 1 seconds."


def test_token_endpoint(fresh: Sandbox) -> None:
    """client_credentials only; wrong credentials are 400 invalid_client (IdentityServer)."""
    http = httpx.Client(base_url=fresh.url)
    ok = http.post("/connect/token", data=token_form()).json()
    assert ok["expires_in"] == 900 and ok["token_type"] == "Bearer" and ok["access_token"] and ok["scope"]
    bad = http.post("/connect/token", data=token_form(client_secret="nope"))
    assert bad.status_code == 400 and bad.json() == {"error": "invalid_client"}


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({"ST-App-Key": APP_KEY}, CUSTOMERS, 401),  # no token
        ({"ST-App-Key": APP_KEY, "Authorization": "Bearer nope"}, CUSTOMERS, 401),
        ({"Authorization": "TOKEN"}, CUSTOMERS, 401),  # no app key
        ({"ST-App-Key": "other-app", "Authorization": "TOKEN"}, CUSTOMERS, 403),
        (
            {"ST-App-Key": APP_KEY, "Authorization": "TOKEN"},
            "/crm/v2/tenant/7654321/customers",
            403,
        ),
        ({"ST-App-Key": APP_KEY, "Authorization": "TOKEN"}, "/crm/v2/tenant/abc/customers", 404),
        (
            {"ST-App-Key": APP_KEY, "Authorization": "TOKEN"},
            f"/dispatch/v2/tenant/{TENANT}/appointments",
            404,
        ),
    ],
)
def test_auth_errors(api: Api, headers: dict[str, str], path: str, status: int) -> None:
    """Missing/bad token 401, bad app key 401/403, wrong tenant 403/404, unknown path 404."""
    h = {k: (f"Bearer {api.token}" if v == "TOKEN" else v) for k, v in headers.items()}
    r = api.http.get(path, headers=h)
    assert r.status_code == status
    assert set(r.json()) == {"type", "title", "status", "traceId", "errors", "data"}


def test_expired_token_is_401() -> None:
    """A token past its TTL is refused (TTL 0: expired on issue; no sleeping)."""
    with Sandbox.start(SandboxOptions(token_ttl=0)) as sb:
        api = Api(sb)
        assert api.get(CUSTOMERS).status_code == 401


def test_request_log(api: Api) -> None:
    """The request log records method, path, query and status of API calls (admin calls excluded)."""
    api.sb.clear_requests()
    api.get(EXPORT, **{"from": "2025-01-01"})
    api.http.get("/_sandbox/health")
    log = api.sb.requests
    assert log == [{"method": "GET", "path": EXPORT, "query": {"from": "2025-01-01"}, "status": 200}]
    assert api.http.get("/_sandbox/requests").json() == log


def test_admin_advance_and_dump(api: Api) -> None:
    """POST /_sandbox/advance returns a summary; GET /_sandbox/dump equals the Python dump."""
    s = api.http.post("/_sandbox/advance", json={"minutes": 30, "changes": True}).json()
    assert s["minutes"] == 30 and s["counts"]
    dump = api.http.get("/_sandbox/dump").json()
    py: dict[str, Any] = api.sb.world.dump()
    assert dump == {res: {str(k): v for k, v in recs.items()} for res, recs in py.items()}


def test_non_loopback_host_is_refused() -> None:
    """The server refuses to bind a non-loopback host unless allowed."""
    with pytest.raises(ValueError, match="non-loopback"):
        Sandbox.start(SandboxOptions(host="0.0.0.0"))


def test_async_transport(fresh: Sandbox) -> None:
    """The async in-process transport serves the same app (token, then an export page)."""

    async def run() -> int:
        async with httpx.AsyncClient(base_url=fresh.url, transport=fresh.async_transport()) as client:
            tok = await client.post("/connect/token", data=token_form())
            headers = {"Authorization": f"Bearer {tok.json()['access_token']}", "ST-App-Key": APP_KEY}
            r = await client.get(EXPORT, headers=headers)
            return len(r.json()["data"])

    assert asyncio.run(run()) == 37
