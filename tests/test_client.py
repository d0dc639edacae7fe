"""ServiceTitan client edge cases (respx): auth refresh, Retry-After, retries, rejected tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from stsync import retry
from stsync.errors import ApiUnavailable, AuthError
from stsync.retry import RetryPolicy
from stsync.servicetitan.client import ClientSettings, ContinuationRejected, ServiceTitanClient

API = "https://api.example.test"
AUTH = "https://auth.example.test"
EXPORT = f"{API}/crm/v2/tenant/42/export/customers"
PAGE = {"hasMore": False, "continueFrom": "tok-2", "data": [{"id": 1}]}


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    retry.set_no_wait(True)
    yield
    retry.set_no_wait(False)


def _client(attempts: int = 5, token_cache_dir: Path | None = None) -> ServiceTitanClient:
    return ServiceTitanClient(
        ClientSettings(
            API,
            AUTH,
            42,
            "cid",
            "secret-value",
            "app-key-value",
            requests_per_second=1000,
            retry=RetryPolicy(attempts=attempts, max_seconds=30),
            token_cache_dir=token_cache_dir,
        )
    )


def _export(client: ServiceTitanClient, from_: str | None = None):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with client:
            return await client.export_page("crm", "export/customers", from_, False, {})

    return asyncio.run(go())


def _token_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post(f"{AUTH}/connect/token").mock(
        return_value=httpx.Response(200, json={"access_token": "A", "expires_in": 900, "token_type": "Bearer"})
    )


@respx.mock
def test_sends_bearer_and_app_key_and_form_credentials() -> None:
    token = _token_route(respx.mock)
    api = respx.get(EXPORT).mock(return_value=httpx.Response(200, json=PAGE))
    page = _export(_client(), "tok-1")
    assert page.continue_from == "tok-2" and not page.has_more and page.body.count(b'"id"') == 1
    sent = api.calls.last.request
    assert sent.headers["Authorization"] == "Bearer A"
    assert sent.headers["ST-App-Key"] == "app-key-value"
    assert sent.url.params["from"] == "tok-1"
    body = token.calls.last.request.content.decode()
    assert "grant_type=client_credentials" in body and "client_secret=secret-value" in body


@respx.mock
def test_401_refreshes_the_token_once() -> None:
    token = _token_route(respx.mock)
    respx.get(EXPORT).mock(side_effect=[httpx.Response(401), httpx.Response(200, json=PAGE)])
    assert _export(_client()).continue_from == "tok-2"
    assert token.call_count == 2


@respx.mock
def test_persistent_401_is_an_auth_error() -> None:
    _token_route(respx.mock)
    respx.get(EXPORT).mock(return_value=httpx.Response(401, json={"title": "Unauthorized"}))
    with pytest.raises(AuthError, match="app_key"):
        _export(_client())


@respx.mock
def test_retries_429_5xx_resets_and_truncated_json() -> None:
    _token_route(respx.mock)
    route = respx.get(EXPORT).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
            httpx.ConnectError("reset"),
            httpx.Response(200, content=b'{"hasMore": false, "data": [{"id'),
            httpx.Response(200, json=PAGE),
        ]
    )
    assert _export(_client(attempts=6)).continue_from == "tok-2"
    assert route.call_count == 5


@respx.mock
def test_gives_up_after_the_attempt_cap() -> None:
    _token_route(respx.mock)
    route = respx.get(EXPORT).mock(return_value=httpx.Response(500))
    with pytest.raises(ApiUnavailable, match=r"unreachable for \d+s: HTTP 500"):
        _export(_client(attempts=3))
    assert route.call_count == 3


@respx.mock
def test_rejected_continuation_token() -> None:
    _token_route(respx.mock)
    respx.get(EXPORT).mock(return_value=httpx.Response(400, json={"title": "Invalid continuation token"}))
    with pytest.raises(ContinuationRejected):
        _export(_client(), "stale-token")


@respx.mock
def test_refused_credentials_name_the_keys_not_the_secret() -> None:
    respx.post(f"{AUTH}/connect/token").mock(return_value=httpx.Response(400, json={"error": "invalid_client"}))
    with pytest.raises(AuthError) as err:
        _export(_client())
    assert "client_secret" in str(err.value) and "secret-value" not in str(err.value)


def test_retry_after_parsing() -> None:
    assert retry.parse_retry_after("3") == 3.0
    assert retry.parse_retry_after(None) is None
    assert retry.parse_retry_after("garbage") is None


def test_envelope_is_read_without_parsing_records() -> None:
    """hasMore/continueFrom come from outside the data array, whichever side of it they stand."""
    from stsync.servicetitan.client import read_envelope

    after = b'{"data": [{"id": 1, "note": "\\"hasMore\\": true"}], "hasMore": true, "continueFrom": "abc"}'
    before = b'{"hasMore": false, "continueFrom": null, "data": [{"hasMore": true}]}'
    assert read_envelope(after)[:2] == (True, "abc")
    assert read_envelope(before)[:2] == (False, None)
    assert read_envelope(b'{"page": 1, "hasMore": false, "data": []}')[:2] == (False, None)
    # A record that itself carries the keys, with the envelope on the same side: fall back to parsing.
    assert read_envelope(b'{"hasMore": true, "data": [], "x": {"hasMore": false}}') is None


@respx.mock
def test_a_compressed_page_is_counted_at_its_decompressed_size() -> None:
    """The budget reserves the announced (compressed) length before reading, then counts what the body
    really occupies once decompressed; releasing the page gives all of it back."""
    import gzip

    import orjson

    plain = orjson.dumps(
        {"hasMore": False, "continueFrom": "t", "data": [{"id": i, "name": "x" * 50} for i in range(500)]}
    )
    packed = gzip.compress(plain)
    _token_route(respx)
    respx.get(EXPORT).mock(return_value=httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"}))
    client = _client()

    async def go() -> tuple[int, int, int]:
        async with client:
            page = await client.export_page("crm", "export/customers", None, False, {})
            held = client.budget.held
            client.release(page)
            return page.reserved, held, client.budget.held

    reserved, held, after = asyncio.run(go())
    assert len(packed) < len(plain)
    assert reserved == held == len(plain)
    assert after == 0


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b'{"hasMore":false,"continueFrom":"x","data":[]}', 0),
        (b'{"hasMore":false,"continueFrom":"x","data" : [ ] }', 0),
        (b'{"hasMore":false,"data":[{"id":1,"data":[]}]}', -1),  # a record's own "data": [] does not count
        (b'{"hasMore":false,"data":[{"id":1}]}', -1),
        (b'{"data":[],"hasMore":false}', 0),
    ],
)
def test_an_empty_data_array_is_told_apart_without_parsing(body: bytes, count: int) -> None:
    """count 0 lets the engine skip the COPY and merge; -1 means "records, counted by the merge"."""
    from stsync.servicetitan.client import _page

    for raw in (body, bytearray(body)):
        page = _page(raw)
        assert page is not None and page.count == count
