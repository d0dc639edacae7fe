"""Async ServiceTitan API v2 client.

- OAuth client credentials: the token is cached (in memory, and on disk for the next runs: see
  ``stsync.servicetitan.tokens``), refreshed a minute before it expires and once on a 401, and re-applied
  on every retry attempt (a long back-off can outlive a 900 s token).
- ``ST-App-Key`` on every call; one shared ``RateLimiter``; the one retry policy of ``stsync.retry``.
- ``export_page`` walks ``/export/…`` feeds (``from`` / ``continueFrom`` / ``hasMore``);
  ``list_page`` walks page/pageSize endpoints.
Pages are returned with their raw body, which the repository bulk-loads as it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from stsync.budget import ByteBudget, Lane, PageBudget
from stsync.errors import AccessDenied, ApiUnavailable, AuthError, StsyncError
from stsync.httplog import event_hooks
from stsync.ratelimit import WindowLimiter
from stsync.retry import (
    Breaker,
    RetryableStatus,
    RetryPolicy,
    describe,
    is_outage_sign,
    parse_retry_after,
    retrying,
)
from stsync.servicetitan.tokens import CachedToken, TokenCache

log = logging.getLogger("stsync.servicetitan")

TOKEN_REFRESH_MARGIN = 60.0  # seconds before expiry at which a cached token is replaced


class ContinuationRejected(StsyncError):
    """The API refused a stored continuation token (expired or foreign); fall back to a date."""


class _TokenRefused(Exception):
    """A 401 on a token believed valid: it is replaced once, then the request is tried again."""


class BadPage(Exception):
    """A 200 whose body is not the documented envelope; retried like a truncated body."""


@dataclass(frozen=True)
class ClientSettings:
    api_base: str
    auth_base: str
    tenant_id: int
    client_id: str
    client_secret: str = field(repr=False)
    app_key: str = field(repr=False)
    requests_per_second: float = 50.0
    timeout_seconds: float = 100.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    page_memory_bytes: int = 48 * 1024 * 1024
    token_cache_dir: Path | None = None  # None: every run asks for a token of its own
    outage_seconds: float = 10.0  # failing this long with no success stops every request (see retry.Breaker)


@dataclass(frozen=True)
class Page:
    """One page of a feed: the raw body, the number of records, and where to continue."""

    body: bytes | bytearray  # as received; never parsed on the hot path
    count: int  # -1 when not counted client-side (the merge statement counts the records)
    has_more: bool
    continue_from: str | None  # export feeds only
    reserved: int = 0  # bytes held in the client's page budget until ``ServiceTitanClient.release``
    budget: ByteBudget | None = None  # which part of it holds them


class ServiceTitanClient:
    def __init__(self, settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.limiter = WindowLimiter.per_second(settings.requests_per_second)
        self.budget = PageBudget(settings.page_memory_bytes)
        self._writing_lane = self.budget.lane()
        self.requests_sent = 0
        self.breaker = Breaker("ServiceTitan", settings.outage_seconds)
        self._http = httpx.AsyncClient(
            # Every stream downloads at once; a request waits for a free connection as long as it takes.
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds), pool=None),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),  # a connection per stream
            transport=transport,
            event_hooks=event_hooks(),
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._token_cache = (
            TokenCache(settings.token_cache_dir, settings.auth_base, settings.client_id, settings.client_secret)
            if settings.token_cache_dir is not None
            else None
        )

    async def __aenter__(self) -> ServiceTitanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- auth ----------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token and time.monotonic() < self._token_expires - TOKEN_REFRESH_MARGIN:
                return self._token
            cached = self._token_cache.load(TOKEN_REFRESH_MARGIN) if self._token_cache is not None else None
            if cached is not None:
                self._token = cached.value
                self._token_expires = time.monotonic() + (cached.expires_at - time.time())
                return self._token
            url = self.settings.auth_base.rstrip("/") + "/connect/token"
            form = {
                "grant_type": "client_credentials",
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret,
            }
            try:
                async for attempt in retrying(self.settings.retry, "ServiceTitan auth", self.breaker):
                    with attempt:
                        resp = await self._token_attempt(url, form)
            except (httpx.TransportError, RetryableStatus) as exc:
                if outage := await self.breaker.exhausted(exc, url):
                    raise outage from None
                raise ApiUnavailable(f"ServiceTitan auth at {url} unreachable: {describe(exc)}") from None
            if resp.status_code in (400, 401, 403):
                raise AuthError(
                    f"ServiceTitan refused the client credentials at {url} "
                    f"(HTTP {resp.status_code}: {_error_title(resp)}); check servicetitan.client_id "
                    "and servicetitan.client_secret"
                )
            if resp.status_code != 200:
                raise ApiUnavailable(f"ServiceTitan auth at {url} answered HTTP {resp.status_code}")
            try:
                payload = orjson.loads(resp.content)
                token = str(payload["access_token"])
                lifetime = float(payload.get("expires_in", 900))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ApiUnavailable(f"ServiceTitan auth at {url} sent no access_token") from None
            self._token, self._token_expires = token, time.monotonic() + lifetime
            if self._token_cache is not None:
                self._token_cache.store(CachedToken(token, time.time() + lifetime))
            return token

    async def _token_attempt(self, url: str, form: dict[str, str]) -> httpx.Response:
        self.breaker.check()
        self.requests_sent += 1
        try:
            resp = await self._http.post(url, data=form)
            if resp.status_code == 429 or resp.status_code >= 500:
                raise RetryableStatus(resp.status_code, url, parse_retry_after(resp.headers.get("Retry-After")))
        except (httpx.TransportError, RetryableStatus) as exc:
            if is_outage_sign(exc):
                self.breaker.failed(exc, url)
            raise
        self.breaker.succeeded()
        return resp

    async def authenticate(self) -> None:
        """Get a token now, so refused credentials or an unreachable API fail the run at once."""
        await self._access_token()

    async def _invalidate_token(self, token: str) -> None:
        async with self._token_lock:
            if self._token == token:
                self._token = None
            if self._token_cache is not None:
                self._token_cache.discard(token)

    # --- requests ------------------------------------------------------------------------------

    def url(self, module: str, path: str) -> str:
        return f"{self.settings.api_base.rstrip('/')}/{module}/v2/tenant/{self.settings.tenant_id}/{path}"

    async def get(self, module: str, path: str, params: Mapping[str, Any], lane: Lane | None = None) -> Page:
        """GET one page: its raw body and envelope, its bytes reserved through ``lane``. Retries per policy.

        A 200 whose body is cut short or is not the documented envelope is retried like a reset.
        """
        url = self.url(module, path)
        lane = lane or self._writing_lane
        room: _Room | None = None
        try:
            if not lane.writing and lane.last_size:
                # A waiting stream asks for its next page once there is room for one like its last: closing a
                # response unread (below) costs a request, so it is left for pages of unknown size.
                room = _Room(await lane.acquire(lane.last_size), lane.last_size)
            failed = 0  # attempts that failed, over every ask: waiting for room does not renew the retry budget
            while True:
                outcome, failed = await self._get(url, params, lane, room, failed)
                if isinstance(outcome, Page):
                    return outcome
                # A stream still waiting for its turn got a page there is no room for: the response was closed
                # unread rather than held open (the wait can be long). Wait for room, with no request open and
                # outside the retry clock, then ask for the same page again.
                size = outcome or max(lane.last_size, 1)  # a body of unknown length: room for one like the last
                room = _Room(await lane.acquire(size), size)
        finally:
            if room is not None:
                room.give_back()

    async def _get(
        self, url: str, params: Mapping[str, Any], lane: Lane, room: _Room | None, failed: int
    ) -> tuple[Page | int, int]:
        """One GET with what is left of its retries after ``failed`` attempts: the page, or the size of a body
        the lane had no room for; with the number of attempts failed so far."""
        refreshed = False
        policy = dataclasses.replace(self.settings.retry, attempts=max(1, self.settings.retry.attempts - failed))
        try:
            async for attempt in retrying(policy, "ServiceTitan", self.breaker):
                with attempt:
                    try:
                        self.breaker.check()
                        outcome = await self._attempt(url, params, lane, room, refreshed)
                    except _TokenRefused:
                        refreshed = True
                        raise RetryableStatus(401, url, 0.0) from None
                    except BaseException as exc:
                        failed += 1
                        if is_outage_sign(exc):
                            self.breaker.failed(exc, url)
                        if room is not None:
                            room.give_back()  # not held through the back-off: the next attempt asks for room again
                        raise
                    self.breaker.succeeded()
                    return outcome, failed
        except (httpx.TransportError, RetryableStatus) as exc:
            if outage := await self.breaker.exhausted(exc, url):
                raise outage from None
            raise ApiUnavailable(f"ServiceTitan {url} kept failing: {describe(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover - the retry loop returns or raises

    async def _attempt(
        self, url: str, params: Mapping[str, Any], lane: Lane, room: _Room | None, refreshed: bool
    ) -> Page | int:
        token = await self._access_token()  # re-signed on every attempt
        await self.limiter.acquire(lane.priority)
        self.requests_sent += 1
        request = self._http.build_request(
            "GET",
            url,
            params=params,
            headers={"Authorization": f"Bearer {token}", "ST-App-Key": self.settings.app_key},
        )
        resp = await self._http.send(request, stream=True)
        try:
            if resp.status_code == 200:
                return await self._read_page(resp, url, lane, room)
            await resp.aread()
        finally:
            await resp.aclose()
        status = resp.status_code
        if status == 401 and not refreshed:
            # The token expired or was revoked early: fetch a new one, once.
            await self._invalidate_token(token)
            raise _TokenRefused
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if status == 429 and retry_after is not None:
                self.limiter.pause(retry_after)
            raise RetryableStatus(status, url, retry_after)
        return self._raise_for(resp, url, params)

    async def _read_page(self, resp: httpx.Response, url: str, lane: Lane, room: _Room | None) -> Page | int:
        """Reserve the body's announced size in the page budget, then read it. A compressed body is counted
        at its decompressed size once read (it is in memory by then; waiting could deadlock). A 200 whose
        body is cut short or is not the documented envelope gives its reservation back and is retried
        like a reset. A stream waiting for its turn does not wait here with the response open: it gets the
        size back instead, unless ``room`` was made for this page beforehand."""
        size = int(resp.headers.get("Content-Length") or 0)
        if room is not None and room.size:
            budget = room.take(size)
        elif (taken := lane.take_at_once(size)) is not None:
            budget = taken
        elif lane.writing:
            budget = await lane.acquire(size)
        else:
            return size
        try:
            body = await _read_body(resp, size)
        except BaseException:
            budget.release(size)
            raise
        if len(body) > size:
            budget.grow(len(body) - size)
            size = len(body)
        page = _page(body)
        if page is None:
            budget.release(size)
            raise RetryableStatus(200, url, None)
        lane.last_size = size
        return dataclasses.replace(page, reserved=size, budget=budget)

    def release(self, page: Page) -> None:
        """The page is written (or dropped): give its bytes back to the budget."""
        if page.budget is not None:
            page.budget.release(page.reserved)

    def _raise_for(self, resp: httpx.Response, url: str, params: Mapping[str, Any]) -> Any:
        status = resp.status_code
        title = _error_title(resp)
        if status == 400 and "from" in params and not _looks_like_date(str(params["from"])):
            raise ContinuationRejected(f"ServiceTitan rejected the continuation token for {url}: {title}")
        module = re.search(r"/([a-z-]+)/v2/tenant/", url)
        if status == 403 and module is not None and not _CREDENTIALS.search(title):
            raise AccessDenied(
                f"ServiceTitan refused access to {url} (HTTP {status}: {title}); check servicetitan.app_key, "
                "servicetitan.tenant_id and the app's scopes",
                module.group(1),
            )
        if status in (401, 403):
            raise AuthError(
                f"ServiceTitan refused access to {url} (HTTP {status}: {title}); check servicetitan.app_key, "
                "servicetitan.tenant_id and the app's scopes"
            )
        raise ApiUnavailable(f"ServiceTitan {url} answered HTTP {status}: {title}")

    async def export_page(
        self,
        module: str,
        path: str,
        from_: str | None,
        include_recent: bool,
        extra: Mapping[str, str],
        lane: Lane | None = None,
    ) -> Page:
        params: dict[str, Any] = dict(extra)
        if from_:
            params["from"] = from_
        if include_recent:
            params["includeRecentChanges"] = "true"
        return await self.get(module, path, params, lane)

    async def list_page(
        self,
        module: str,
        path: str,
        page: int,
        page_size: int,
        params: Mapping[str, str],
        lane: Lane | None = None,
    ) -> Page:
        query: dict[str, Any] = {**params, "page": page, "pageSize": page_size}
        return await self.get(module, path, query, lane)


async def _read_body(resp: httpx.Response, size: int) -> bytes | bytearray:
    """The body, read into one buffer of its announced size: ``aread`` would hold every chunk and their
    join at once, twice the page. A compressed body, or one without a length, is read the usual way."""
    if not size or resp.headers.get("Content-Encoding"):
        return await resp.aread()
    body = bytearray(size)
    view = memoryview(body)
    filled = 0
    async for chunk in resp.aiter_raw():
        end = filled + len(chunk)
        if end > size:  # h11 frames by Content-Length, so this means a broken peer: retried like a reset
            view.release()
            raise httpx.RemoteProtocolError("body longer than its Content-Length", request=resp.request)
        view[filled:end] = chunk
        filled = end
    view.release()
    # A body shorter than its Content-Length makes h11 raise; were one to slip through, its zero-filled
    # tail fails _page's completeness check and the page is retried.
    return body


class _Room:
    """Bytes reserved for a page before asking for it again (see ``ServiceTitanClient.get``)."""

    def __init__(self, budget: ByteBudget, size: int) -> None:
        self.budget, self.size = budget, size

    def take(self, size: int) -> ByteBudget:
        """Hand the reservation to a body of ``size`` (the same page: about the same size)."""
        if size > self.size:
            self.budget.grow(size - self.size)
        elif size < self.size:
            self.budget.release(self.size - size)
        self.size = 0
        return self.budget

    def give_back(self) -> None:
        if self.size:
            self.budget.release(self.size)
            self.size = 0


def _page(body: bytes | bytearray) -> Page | None:
    """The page in ``body``, or None when the body is not a complete envelope (cut short, not JSON)."""
    if not body[-64:].rstrip().endswith(b"}"):
        return None
    envelope = read_envelope(body)
    if envelope is not None:
        # Records are not counted (the merge statement does), but an empty data array is told apart:
        # the usual answer of a feed with nothing new, which needs no COPY and no merge.
        return Page(body, 0 if _EMPTY_DATA.match(body, envelope[2]) else -1, envelope[0], envelope[1])
    try:
        doc = orjson.loads(body)
        return Page(body, len(doc["data"]), bool(doc["hasMore"]), doc.get("continueFrom"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


# A 403 whose reason names the app key or the tenant is about the credentials, not about one module's scope.
_CREDENTIALS = re.compile(r"application key|app key|subscription key|tenant", re.IGNORECASE)
_HAS_MORE = re.compile(rb'"hasMore"\s*:\s*(true|false)')
_CONTINUE_FROM = re.compile(rb'"continueFrom"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|null)')
_DATA_KEY = re.compile(rb'"data"\s*:\s*\[')
_EMPTY_DATA = re.compile(rb"\s*\]")


def read_envelope(body: bytes | bytearray) -> tuple[bool, str | None, int] | None:
    """``(hasMore, continueFrom, where the data array's items start)`` read from the envelope around
    ``data`` without parsing the records.

    Parsing a 5000-record page only to learn two envelope fields costs more CPU and memory than the
    rest of the client together; the records go to PostgreSQL as they are. The envelope keys are
    looked for only outside the data array: before its opening bracket, or after the body's last
    closing bracket. Anything unexpected returns None, and the caller parses the whole body.
    """
    data = _DATA_KEY.search(body, 0, 4096)
    if data is None:
        return None
    regions = [body[: data.start()], body[body.rfind(b"]") + 1 :]]
    has_more = [m for r in regions for m in _HAS_MORE.finditer(r)]
    cont = [m for r in regions for m in _CONTINUE_FROM.finditer(r)]
    if len(has_more) != 1 or len(cont) > 1:
        return None
    token = None
    if cont and cont[0].group(1) is not None:
        raw = cont[0].group(1)
        token = raw.decode() if b"\\" not in raw else orjson.loads(b'"' + raw + b'"')
    return has_more[0].group(1) == b"true", token, data.end()


def _looks_like_date(value: str) -> bool:
    return len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit()


def _error_title(resp: httpx.Response) -> str:
    try:
        doc = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return resp.reason_phrase or "no body"
    if isinstance(doc, dict):
        return str(doc.get("title") or doc.get("error") or doc.get("message") or resp.reason_phrase)
    return resp.reason_phrase
