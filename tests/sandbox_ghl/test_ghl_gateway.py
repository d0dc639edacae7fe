"""What happens before an endpoint: Version header, token, rate limits, faults; plus webhooks and admin."""

from __future__ import annotations

import httpx
import pytest

from stsync.sandbox.ghl import GhlSandbox
from tests.sandbox_ghl.conftest import LOC, OTHER_LOC, OTHER_TOKEN, TOKEN, FakeClock, options

RATE_HEADERS = (
    "X-RateLimit-Limit-Daily",
    "X-RateLimit-Daily-Remaining",
    "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max",
    "X-RateLimit-Remaining",
)


def _get(client: httpx.Client) -> httpx.Response:
    return client.get("/opportunities/pipelines", params={"locationId": LOC})


def test_version_header_is_checked_before_the_token(ghl: GhlSandbox) -> None:
    """No Version: 401 "version header was not found." even with a bad token; an unknown one is invalid."""
    r = httpx.get(f"{ghl.url}/contacts/", params={"locationId": LOC}, headers={"Authorization": "Bearer bad"})
    assert (r.status_code, r.json()) == (401, {"statusCode": 401, "message": "version header was not found."})
    r = httpx.get(f"{ghl.url}/contacts/", headers={"Authorization": f"Bearer {TOKEN}", "Version": "2020-01-01"})
    assert (r.status_code, r.json()["message"]) == (401, "version header is invalid")


@pytest.mark.parametrize(
    ("auth", "body"),
    [
        (None, {"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"}),
        (
            "Bearer eyJhbGciOi.bad",
            {"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"},
        ),
        ("Bearer pit-revoked", {"statusCode": 401, "message": "Invalid Private Integration token"}),
    ],
)
def test_bad_token_is_401(ghl: GhlSandbox, auth: str | None, body: dict) -> None:
    headers = {"Version": "2021-07-28", **({"Authorization": auth} if auth else {})}
    r = httpx.get(f"{ghl.url}/opportunities/pipelines", params={"locationId": LOC}, headers=headers)
    assert (r.status_code, r.json()) == (401, body)
    assert "X-RateLimit-Remaining" not in r.headers


def test_burst_limit_429_with_headers(ghl: GhlSandbox, client: httpx.Client, clock: FakeClock) -> None:
    """101 requests inside 10 s: the 101st is 429; every answer carries the X-RateLimit-* headers."""
    answers = [_get(client) for _ in range(101)]
    assert [r.status_code for r in answers] == [200] * 100 + [429]
    for r in answers:
        assert all(h in r.headers for h in RATE_HEADERS)
    first, last = answers[0].headers, answers[-1].headers
    assert (first["X-RateLimit-Max"], first["X-RateLimit-Remaining"], first["X-RateLimit-Interval-Milliseconds"]) == (
        "100",
        "99",
        "10000",
    )
    assert (last["X-RateLimit-Remaining"], last["X-RateLimit-Limit-Daily"], last["X-RateLimit-Daily-Remaining"]) == (
        "0",
        "200000",
        "199900",
    )
    assert answers[-1].json() == {"statusCode": 429, "message": "Too Many Requests"}
    assert ghl.count_429 == 1
    clock.advance(10)
    assert _get(client).status_code == 200


def test_eight_per_second_never_sees_429(ghl: GhlSandbox, client: httpx.Client, clock: FakeClock) -> None:
    """A client pacing itself at 8 req/s for a simulated minute (480 requests) is never limited."""
    for _ in range(60 * 8):
        assert _get(client).status_code == 200
        clock.advance(1 / 8)
    assert ghl.count_429 == 0
    assert len(ghl.requests) == 480


def test_limits_are_per_location(clock: FakeClock) -> None:
    with GhlSandbox.start(options(clock, rate_limit=2)) as g:
        a = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
        b = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {OTHER_TOKEN}", "Version": "2021-07-28"})
        assert [a.get("/contacts/", params={"locationId": LOC}).status_code for _ in range(3)] == [200, 200, 429]
        assert b.get("/contacts/", params={"locationId": OTHER_LOC}).status_code == 200


def test_daily_limit(clock: FakeClock) -> None:
    """The daily budget runs out independently of the burst window and comes back the next day."""
    with GhlSandbox.start(options(clock, daily_limit=3)) as g:
        c = httpx.Client(base_url=g.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"})
        codes = []
        for _ in range(4):
            codes.append(_get(c).status_code)
            clock.advance(60)
        assert codes == [200, 200, 200, 429]
        assert _get(c).headers["X-RateLimit-Daily-Remaining"] == "0"
        clock.advance(86_400)
        assert _get(c).status_code == 200


def test_faults_reuse_the_servicetitan_rule_format(ghl: GhlSandbox, client: httpx.Client) -> None:
    """status / rate_limit / drop rules fire on the next N matching requests, then stop."""
    ghl.faults.set(
        {
            "rules": [
                {"kind": "status", "status": 503, "count": 1, "path": "/contacts/upsert"},
                {"kind": "rate_limit", "count": 1, "retry_after": 3, "path": "/contacts/upsert"},
                {"kind": "drop", "count": 1, "path": "/contacts/upsert"},
            ]
        }
    )
    body = {"locationId": LOC, "email": "a@example.com"}
    assert client.post("/contacts/upsert", json=body).status_code == 503
    limited = client.post("/contacts/upsert", json=body)
    assert (limited.status_code, limited.headers["Retry-After"], limited.headers["X-RateLimit-Remaining"]) == (
        429,
        "3",
        "0",
    )
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/contacts/upsert", json=body)
    assert client.post("/contacts/upsert", json=body).status_code == 200
    assert ghl.count_429 == 1
    ghl.faults.clear()
    assert ghl.faults.rules == []


def test_webhook_trigger_records_payloads(ghl: GhlSandbox) -> None:
    """A live trigger answers 200 with an execution id and records the payload under the hook's name."""
    url = ghl.webhook_url("sales")
    assert url.startswith(f"{ghl.url}/hooks/{LOC}/webhook-trigger/")
    r = httpx.post(url, json={"email": "a@example.com", "stage": "Job Sold"})
    assert r.status_code == 200
    assert r.json()["status"] == "Success: request sent to trigger execution server" and len(r.json()["id"]) == 20
    assert httpx.put(url, json={"phone": "+15125550100"}).status_code == 200
    assert ghl.dump()["webhooks"] == {
        "sales": [{"email": "a@example.com", "stage": "Job Sold"}, {"phone": "+15125550100"}]
    }
    assert ghl.requests[0]["body"] == {"email": "a@example.com", "stage": "Job Sold"}


def test_dead_webhook_url_still_answers_200_without_id(ghl: GhlSandbox) -> None:
    """A deleted or mistyped trigger: 200 "test request received", no `id`, nothing recorded."""
    ghl.webhook_url("sales")
    r = httpx.post(
        f"{ghl.url}/hooks/{LOC}/webhook-trigger/00000000-0000-4000-8000-000000000000", json={"email": "a@b.c"}
    )
    assert (r.status_code, r.json()) == (200, {"status": "Success: test request received"})
    assert ghl.dump()["webhooks"] == {"sales": []}


def test_admin_endpoints(ghl: GhlSandbox, client: httpx.Client) -> None:
    """/_ghl/dump, /_ghl/requests, /_ghl/faults and /_ghl/hooks need no auth and are not logged."""
    client.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com"})
    dump = httpx.get(f"{ghl.url}/_ghl/dump").json()
    assert set(dump) == {"contacts", "opportunities", "pipelines", "custom_fields", "webhooks"}
    assert len(dump["contacts"]) == 1
    reqs = httpx.get(f"{ghl.url}/_ghl/requests").json()
    assert [r["path"] for r in reqs["requests"]] == ["/contacts/upsert"] and reqs["count_429"] == 0
    assert httpx.post(f"{ghl.url}/_ghl/faults", json={"status": {"status": 502, "count": 1}}).status_code == 200
    assert client.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com"}).status_code == 502
    assert httpx.post(f"{ghl.url}/_ghl/faults", json={"bogus": 1}).status_code == 400
    assert httpx.delete(f"{ghl.url}/_ghl/faults").json()["spec"] == {}
    hook = httpx.post(f"{ghl.url}/_ghl/hooks", json={"name": "install"}).json()
    assert httpx.post(hook["url"], json={"email": "a@example.com"}).json()["id"]
    httpx.delete(f"{ghl.url}/_ghl/requests")
    assert ghl.requests == []


def test_in_process_transport(ghl: GhlSandbox) -> None:
    """g.transport() serves the same app without sockets."""
    with httpx.Client(
        transport=ghl.transport(),
        base_url="http://ghl",
        headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"},
    ) as c:
        assert c.post("/contacts/upsert", json={"locationId": LOC, "email": "a@example.com"}).json()["new"] is True
    assert len(ghl.dump()["contacts"]) == 1


def test_refuses_non_loopback_host(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        GhlSandbox.start(options(clock, host="0.0.0.0"))


def test_unknown_route_is_404(client: httpx.Client) -> None:
    r = client.get("/contacts/lookup/x")
    assert (r.status_code, r.json()["message"]) == (404, "Cannot GET /contacts/lookup/x")
