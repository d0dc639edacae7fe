"""GHL client edge cases with respx: headers, duplicate quirks, stage resolution, limits and errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import respx

from stsync.errors import ApiUnavailable, AuthError, ConfigError, TemporaryError
from stsync.ghl.client import GhlClient, GhlRequestError, GhlSettings, pacer
from stsync.retry import RetryPolicy, set_no_wait

BASE = "https://ghl.test"
LOC = "loc-1"


@pytest.fixture(autouse=True)
def _no_wait() -> Any:
    set_no_wait(True)
    yield
    set_no_wait(False)


def _client(**kw: Any) -> GhlClient:
    settings = GhlSettings(base_url=BASE, location_id=LOC, token="pit-secret", retry=RetryPolicy(attempts=3), **kw)
    return GhlClient(settings)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


PIPELINES = {
    "pipelines": [
        {
            "id": "p-sales",
            "name": "Sales",
            "stages": [
                {"id": "s1", "name": "New Lead", "position": 0},
                {"id": "s2", "name": "Contacted", "position": 1},
                {"id": "s6", "name": "Job Sold", "position": 5},
            ],
        },
    ]
}


@respx.mock
def test_headers_are_pinned_and_bearer() -> None:
    """Every call carries Version 2021-07-28 and the location's bearer token."""
    route = respx.post(f"{BASE}/contacts/upsert").respond(200, json={"new": True, "contact": {"id": "c1"}})

    async def go() -> str:
        async with _client() as c:
            return (await c.upsert({"email": "a@b.c"}))[0]

    assert run(go()) == "c1"
    req = route.calls.last.request
    assert req.headers["Version"] == "2021-07-28"
    assert req.headers["Authorization"] == "Bearer pit-secret"
    assert b'"locationId":"loc-1"' in req.content


@respx.mock
def test_contact_create_duplicate_uses_meta_contact_id() -> None:
    """POST /contacts/ 400 'does not allow duplicated contacts' returns meta.contactId."""
    respx.post(f"{BASE}/contacts/").respond(
        400,
        json={
            "statusCode": 400,
            "message": "This location does not allow duplicated contacts.",
            "meta": {"contactId": "dup-1", "matchingField": "email"},
        },
    )

    async def go() -> str:
        async with _client() as c:
            return await c.create_contact({"email": "a@b.c"})

    assert run(go()) == "dup-1"


@respx.mock
def test_opportunity_no_duplicate_uses_existing_id() -> None:
    """OPPORTUNITY_NO_DUPLICATE with meta.existingId returns that id instead of failing."""
    respx.post(f"{BASE}/opportunities/").respond(
        400,
        json={
            "statusCode": 400,
            "message": "Can not create duplicate opportunity for the contact.",
            "code": "OPPORTUNITY_NO_DUPLICATE",
            "meta": {"existingId": "opp-9"},
            "error": "Bad Request",
        },
    )

    async def go() -> tuple[str, bool]:
        async with _client() as c:
            return await c.create_opportunity({"pipelineId": "p", "name": "x", "status": "open", "contactId": "c"})

    assert run(go()) == ("opp-9", False)


@respx.mock
def test_other_400_is_a_record_error() -> None:
    """A 422 is one record's problem: GhlRequestError with the server's message."""
    respx.post(f"{BASE}/opportunities/").respond(422, json={"statusCode": 422, "message": ["name should not be empty"]})

    async def go() -> None:
        async with _client() as c:
            await c.create_opportunity({})

    with pytest.raises(GhlRequestError, match="HTTP 422: name should not be empty"):
        run(go())


@respx.mock
def test_stage_resolved_by_name_and_cached() -> None:
    """Stages resolve by case/space-insensitive name; pipelines are fetched once."""
    route = respx.get(f"{BASE}/opportunities/pipelines").respond(200, json=PIPELINES)

    async def go() -> Any:
        async with _client() as c:
            a = await c.stage("sales", "job  sold")
            b = await c.stage("p-sales", "Contacted")
            return a, b

    a, b = run(go())
    assert (a.id, a.position, b.id) == ("s6", 5, "s2")
    assert route.call_count == 1
    assert route.calls.last.request.url.params["locationId"] == LOC


@respx.mock
def test_missing_stage_is_config_error_naming_it() -> None:
    respx.get(f"{BASE}/opportunities/pipelines").respond(200, json=PIPELINES)

    async def go() -> Any:
        async with _client() as c:
            await c.stage("Sales", "Estimate Lost")

    with pytest.raises(ConfigError, match="stage 'Estimate Lost' not found in pipeline 'Sales'"):
        run(go())


@respx.mock
def test_missing_pipeline_is_config_error() -> None:
    respx.get(f"{BASE}/opportunities/pipelines").respond(200, json=PIPELINES)

    async def go() -> Any:
        async with _client() as c:
            await c.stage("Install", "Scheduled")

    with pytest.raises(ConfigError, match="pipeline 'Install' not found"):
        run(go())


@respx.mock
def test_429_is_retried_then_succeeds() -> None:
    """429 (no Retry-After) is retried through stsync.retry."""
    route = respx.get(f"{BASE}/contacts/c1").mock(
        side_effect=[
            httpx.Response(429, headers={"X-RateLimit-Interval-Milliseconds": "10"}),
            httpx.Response(200, json={"contact": {"id": "c1"}}),
        ]
    )

    async def go() -> Any:
        async with _client() as c:
            return await c.get_contact("c1")

    assert run(go()) == {"id": "c1"}
    assert route.call_count == 2


@respx.mock
def test_persistent_5xx_is_unavailable() -> None:
    respx.get(f"{BASE}/contacts/c1").respond(503)

    async def go() -> Any:
        async with _client() as c:
            return await c.get_contact("c1")

    with pytest.raises(ApiUnavailable, match="kept failing"):
        run(go())


@respx.mock
def test_bad_token_is_auth_error_without_secret() -> None:
    respx.get(f"{BASE}/opportunities/pipelines").respond(
        401, json={"statusCode": 401, "message": "Invalid token: access token is invalid"}
    )

    async def go() -> Any:
        async with _client() as c:
            await c.pipelines()

    with pytest.raises(AuthError) as info:
        run(go())
    assert "pit-secret" not in str(info.value)
    assert "check ghl.token" in str(info.value)


@respx.mock
def test_daily_budget_guard_stops_before_next_request() -> None:
    """Once X-RateLimit-Daily-Remaining falls below the reserve, the next call raises TemporaryError."""
    route = respx.get(f"{BASE}/contacts/c1").respond(
        200, json={"contact": {"id": "c1"}}, headers={"X-RateLimit-Daily-Remaining": "5"}
    )

    async def go() -> Any:
        async with _client(daily_reserve=10) as c:
            await c.get_contact("c1")
            await c.get_contact("c1")

    with pytest.raises(TemporaryError, match="daily request budget"):
        run(go())
    assert route.call_count == 1


def test_unreachable_is_unavailable() -> None:
    async def go() -> Any:
        settings = GhlSettings(base_url="http://127.0.0.1:9", location_id=LOC, token="t", retry=RetryPolicy(attempts=2))
        async with GhlClient(settings) as c:
            await c.pipelines()

    with pytest.raises(ApiUnavailable, match="connection refused"):
        run(go())


@respx.mock
def test_upsert_says_whether_ghl_created_the_contact() -> None:
    """The upsert's `new` tells a created contact from an existing one it found by the location's duplicate rules;
    a 400 naming the duplicate's meta.contactId updates that contact instead."""
    respx.post(f"{BASE}/contacts/upsert").mock(
        side_effect=[
            httpx.Response(200, json={"new": True, "contact": {"id": "c1"}}),
            httpx.Response(200, json={"new": False, "contact": {"id": "c2"}}),
            httpx.Response(400, json={"statusCode": 400, "message": "duplicated", "meta": {"contactId": "c3"}}),
        ]
    )
    update = respx.put(f"{BASE}/contacts/c3").respond(200, json={"succeded": True})

    async def go() -> list[tuple[str, bool]]:
        async with _client() as c:
            return [await c.upsert({"email": "a@b.c"}) for _ in range(3)]

    assert run(go()) == [("c1", True), ("c2", False), ("c3", False)]
    assert update.call_count == 1


@respx.mock
def test_webhook_post_returns_body() -> None:
    respx.post("https://hooks.test/h/1").respond(200, json={"status": "Success: test request received"})

    async def go() -> Any:
        async with _client() as c:
            return await c.post_webhook("https://hooks.test/h/1", {"email": "a@b.c"})

    status, body = run(go())
    assert status == 200 and "id" not in body


def test_pacer_never_allows_more_than_its_budget_in_any_window() -> None:
    """The bucket's burst plus ten seconds of refill is requests_per_10s; the default leaves GHL's 100 a margin."""
    for n in (10, 50, 98):
        limiter = pacer(n)
        assert limiter.burst + 10 * limiter.rate == pytest.approx(n)
    assert GhlSettings(base_url=BASE, location_id=LOC, token="t").requests_per_10s == 98


@pytest.mark.parametrize(("remaining", "paused"), [("5", False), ("1", True), ("0", True)])
@respx.mock
def test_a_nearly_full_server_window_slows_the_pace(remaining: str, paused: bool) -> None:
    """X-RateLimit-Remaining of 1 or less (other apps share the location's budget) holds the next request for one
    request's share of the window (interval / max), not the whole window."""
    respx.get(f"{BASE}/contacts/c1").respond(
        200,
        json={"contact": {"id": "c1"}},
        headers={
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Max": "100",
            "X-RateLimit-Interval-Milliseconds": "10000",
        },
    )

    async def go() -> float:
        async with _client() as c:
            before = time.monotonic()
            await c.get_contact("c1")
            return c.limiter._paused_until - before

    held = run(go())
    if paused:
        assert 0.05 < held <= 0.2
    else:
        assert held <= 0
