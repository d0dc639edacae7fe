"""Async GoHighLevel API v2 client for one location (sub-account).

- ``Version: 2021-07-28`` pinned and ``Authorization: Bearer <location token>`` on every call.
- A steady pace of at most ``requests_per_10s`` in any 10 s (a token bucket with a burst of 2), a little
  under GHL's 100 so that network jitter never lets the server count 101 in its window. The
  ``X-RateLimit-Remaining`` of each answer slows it further when the location's other apps share the
  budget. 429/5xx/timeouts go through the one retry policy.
- ``X-RateLimit-Daily-Remaining`` below the reserve stops the run with a TemporaryError (exit 75)
  before the next request is sent.
- GHL's duplicate quirks are turned into ids: contact 400 ``meta.contactId``, opportunity
  ``OPPORTUNITY_NO_DUPLICATE`` ``meta.existingId``.
- Pipelines and custom fields are fetched once and resolved by name; a missing stage is a ConfigError.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from stsync.errors import ApiUnavailable, AuthError, ConfigError, RecordError, TemporaryError
from stsync.ghl.stages import find_stage, norm
from stsync.httplog import SECRET_PATH, event_hooks
from stsync.masking import mask_webhook
from stsync.ratelimit import RateLimiter
from stsync.retry import RetryableStatus, RetryPolicy, describe, parse_retry_after, retrying

log = logging.getLogger("stsync.ghl")

API_VERSION = "2021-07-28"


class GhlRequestError(RecordError):
    """GHL refused one record (400/404/422): recorded on that record, the run goes on."""

    def __init__(self, message: str, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class GhlSettings:
    base_url: str
    location_id: str
    token: str = field(repr=False)
    requests_per_10s: int = 98
    daily_reserve: int = 1000
    timeout_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=6, max_seconds=120))


@dataclass(frozen=True)
class Stage:
    pipeline_id: str
    pipeline_name: str
    id: str
    name: str
    position: int


class GhlClient:
    def __init__(self, settings: GhlSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.limiter = pacer(settings.requests_per_10s)
        self.requests_sent = 0
        self.daily_remaining: int | None = None
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds)),
            transport=transport,
            event_hooks=event_hooks(),
        )
        # Each contact's do-not-disturb flag as the location's last answer about it reported it (workflows'
        # opt-outs); the push records it with the contact.
        self.dnd: dict[str, bool] = {}
        self._pipelines: list[dict[str, Any]] | None = None
        self._fields: dict[str, dict[str, Any]] = {}
        self._lookup = asyncio.Lock()

    async def __aenter__(self) -> GhlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # --- transport -----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings.token}",
            "Version": API_VERSION,
            "Accept": "application/json",
        }

    def _check_daily(self) -> None:
        if self.daily_remaining is not None and self.daily_remaining < self.settings.daily_reserve:
            raise TemporaryError(
                f"GHL daily request budget nearly used up for location {self.settings.location_id} "
                f"({self.daily_remaining} left, reserve ghl.daily_reserve={self.settings.daily_reserve}); "
                "stopping, run again after the daily reset"
            )

    def _read_limits(self, resp: httpx.Response) -> None:
        daily = resp.headers.get("X-RateLimit-Daily-Remaining")
        if daily is not None and daily.strip().lstrip("-").isdigit():
            self.daily_remaining = int(daily)
        remaining = _int(resp.headers.get("X-RateLimit-Remaining"))
        most = _int(resp.headers.get("X-RateLimit-Max"))
        # X-RateLimit-Max 0 means "no burst limit" (a sandbox with its limiter off), not "never send".
        if remaining is None or not most or remaining > 1:
            return
        # The server's window is (nearly) full: other apps of the location are spending its budget too. Wait
        # for one request's share of the window to slide out; a 429 after that waits the whole window.
        self.limiter.pause((_interval(resp) or 10.0) / most)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> tuple[int, Any]:
        """One API call with retries; returns (status, parsed body) for a status in ``ok``.

        Other 4xx become GhlRequestError (401/403: AuthError); retries exhausted: ApiUnavailable.
        """
        url = path
        try:
            async for attempt in retrying(self.settings.retry, "GHL"):
                with attempt:
                    self._check_daily()
                    await self.limiter.acquire()
                    self.requests_sent += 1
                    resp = await self._http.request(
                        method,
                        url,
                        params=params,
                        content=orjson.dumps(json) if json is not None else None,
                        headers={
                            **self._headers(),
                            **({"Content-Type": "application/json"} if json is not None else {}),
                        },
                    )
                    self._read_limits(resp)
                    status = resp.status_code
                    if status == 429 or status >= 500:
                        wait = parse_retry_after(resp.headers.get("Retry-After"))
                        if wait is None and status == 429:
                            wait = _interval(resp)
                        if status == 429 and wait is not None:
                            self.limiter.pause(wait)
                        raise RetryableStatus(status, f"GHL {method} {path}", wait)
                    body = _body(resp)
                    if status in ok:
                        return status, body
                    if status in (401, 403):
                        raise AuthError(
                            f"GHL refused the token for location {self.settings.location_id} on {method} {path} "
                            f"(HTTP {status}: {_message(body, resp)}); check ghl.token and its scopes"
                        )
                    raise GhlRequestError(
                        f"GHL {method} {path} answered HTTP {status}: {_message(body, resp)}", status, body
                    )
        except (httpx.TransportError, RetryableStatus) as exc:
            raise ApiUnavailable(
                f"GHL at {self.settings.base_url} kept failing on {method} {path}: {describe(exc)}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- contacts ------------------------------------------------------------------------------

    async def upsert(self, fields: dict[str, Any]) -> tuple[str, bool]:
        """Create or update by the location's duplicate rules: (contact id, whether GHL created it)."""
        body = {"locationId": self.settings.location_id, **fields}
        try:
            _, doc = await self.request("POST", "/contacts/upsert", json=body)
        except GhlRequestError as exc:
            existing = _meta(exc.body, "contactId")
            if exc.status == 400 and existing:
                await self.update_contact(existing, fields)
                return existing, False
            raise
        self._note_dnd(doc.get("contact"))
        return str(doc["contact"]["id"]), bool(doc.get("new", False))

    def _note_dnd(self, contact: Any) -> None:
        if isinstance(contact, dict) and contact.get("id") and isinstance(contact.get("dnd"), bool):
            self.dnd[str(contact["id"])] = contact["dnd"]

    async def create_contact(self, fields: dict[str, Any]) -> str:
        """POST /contacts/; a 400 'duplicated contacts' with meta.contactId yields that contact's id."""
        body = {"locationId": self.settings.location_id, **fields}
        try:
            _, doc = await self.request("POST", "/contacts/", json=body)
        except GhlRequestError as exc:
            existing = _meta(exc.body, "contactId")
            if exc.status == 400 and existing:
                return existing
            raise
        return str(doc["contact"]["id"])

    async def update_contact(self, contact_id: str, fields: dict[str, Any]) -> None:
        _, doc = await self.request("PUT", f"/contacts/{contact_id}", json=fields)
        self._note_dnd(doc.get("contact") if isinstance(doc, dict) else None)

    async def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        try:
            _, doc = await self.request("GET", f"/contacts/{contact_id}")
        except GhlRequestError as exc:
            if exc.status in (400, 404):
                return None
            raise
        return dict(doc.get("contact") or {}) or None

    async def search_contacts(self, page: int, page_limit: int = 100, query: str | None = None) -> list[dict[str, Any]]:
        """One page of POST /contacts/search, optionally narrowed by a free-text ``query`` (name, email, phone)."""
        body: dict[str, Any] = {"locationId": self.settings.location_id, "page": page, "pageLimit": page_limit}
        if query:
            body["query"] = query
        _, doc = await self.request("POST", "/contacts/search", json=body)
        return list((doc or {}).get("contacts") or [])

    async def contacts_after(
        self, search_after: list[Any] | None, page_limit: int = 500
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of all the location's contacts, in GHL's order, and the total. Pages go on from the
        ``searchAfter`` of the last contact of the previous page: page numbers stop at 10,000 contacts."""
        body: dict[str, Any] = {"locationId": self.settings.location_id, "pageLimit": page_limit}
        if search_after is not None:
            body["searchAfter"] = search_after
        else:
            body["page"] = 1
        _, doc = await self.request("POST", "/contacts/search", json=body)
        doc = doc if isinstance(doc, dict) else {}
        total = doc.get("total")
        return list(doc.get("contacts") or []), int(total) if isinstance(total, int) else None

    # --- opportunities ---------------------------------------------------------------------------

    async def create_opportunity(self, fields: dict[str, Any]) -> tuple[str, bool]:
        """POST /opportunities/ → (id, created); OPPORTUNITY_NO_DUPLICATE yields (existing id, False)."""
        body = {"locationId": self.settings.location_id, **fields}
        try:
            _, doc = await self.request("POST", "/opportunities/", json=body)
        except GhlRequestError as exc:
            existing = _meta(exc.body, "existingId")
            if exc.status == 400 and existing and _code(exc.body) == "OPPORTUNITY_NO_DUPLICATE":
                return existing, False
            raise
        return str(doc["opportunity"]["id"]), True

    async def update_opportunity(self, opportunity_id: str, fields: dict[str, Any]) -> None:
        await self.request("PUT", f"/opportunities/{opportunity_id}", json=fields)

    async def search_opportunities(
        self, *, contact_id: str | None = None, pipeline_id: str | None = None, page: int = 1, limit: int = 100
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"location_id": self.settings.location_id, "limit": limit, "page": page}
        if contact_id:
            params["contact_id"] = contact_id
        if pipeline_id:
            params["pipeline_id"] = pipeline_id
        _, doc = await self.request("GET", "/opportunities/search", params=params)
        return list((doc or {}).get("opportunities") or [])

    async def opportunities_after(
        self, start_after_id: str | None, start_after: Any = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page of all the location's opportunities and its ``meta`` (``total``, and ``startAfterId`` /
        ``startAfter`` of the next page while there is one)."""
        params: dict[str, Any] = {"location_id": self.settings.location_id, "limit": limit}
        if start_after_id:
            params["startAfterId"] = start_after_id
            if start_after is not None:
                params["startAfter"] = start_after
        _, doc = await self.request("GET", "/opportunities/search", params=params)
        doc = doc if isinstance(doc, dict) else {}
        meta = doc.get("meta")
        return list(doc.get("opportunities") or []), meta if isinstance(meta, dict) else {}

    # --- pipelines and custom fields -------------------------------------------------------------

    async def pipelines(self) -> list[dict[str, Any]]:
        async with self._lookup:  # changes made at once ask once
            if self._pipelines is None:
                _, doc = await self.request(
                    "GET", "/opportunities/pipelines", params={"locationId": self.settings.location_id}
                )
                self._pipelines = list((doc or {}).get("pipelines") or [])
        return self._pipelines

    async def pipeline(self, name_or_id: str) -> dict[str, Any]:
        """A pipeline by id or (normalised) name; ConfigError naming it when absent."""
        found = await self.pipelines()
        for p in found:
            if p.get("id") == name_or_id:
                return p
        for p in found:
            if norm(str(p.get("name", ""))) == norm(name_or_id):
                return p
        names = ", ".join(repr(p.get("name")) for p in found) or "none"
        raise ConfigError(
            f"GHL pipeline '{name_or_id}' not found in location {self.settings.location_id} (has: {names})"
        )

    async def stage(self, pipeline: str, stage: str) -> Stage:
        """A stage of a pipeline by id or (normalised) name; ConfigError naming stage and pipeline when absent."""
        p = await self.pipeline(pipeline)
        found = find_stage(p, stage)
        if found is None:
            raise ConfigError(
                f"GHL stage '{stage}' not found in pipeline '{p.get('name')}' of location "
                f"{self.settings.location_id}; create it in GHL or map the stage under ghl.pipelines"
            )
        position = next(i for i, s in enumerate(p.get("stages") or []) if s is found)
        return Stage(
            str(p["id"]), str(p.get("name")), str(found["id"]), str(found["name"]), int(found.get("position", position))
        )

    async def stage_by_id(self, pipeline_id: str, stage_id: str) -> Stage | None:
        for p in await self.pipelines():
            if p.get("id") != pipeline_id:
                continue
            for i, s in enumerate(p.get("stages") or []):
                if isinstance(s, dict) and s.get("id") == stage_id:
                    return Stage(pipeline_id, str(p.get("name")), stage_id, str(s["name"]), int(s.get("position", i)))
        return None

    async def custom_field(
        self, name: str, model: str = "opportunity", key: str = "ghl.technicians_field"
    ) -> dict[str, Any]:
        """A custom field definition by name (or fieldKey); ConfigError naming it (and its config ``key``)
        when absent."""
        async with self._lookup:
            if model not in self._fields:
                _, doc = await self.request(
                    "GET", f"/locations/{self.settings.location_id}/customFields", params={"model": model}
                )
                defs = [f for f in (doc or {}).get("customFields") or [] if isinstance(f, dict)]
                self._fields[model] = {norm(str(f.get("name", ""))): f for f in defs} | {
                    norm(str(f["fieldKey"])): f for f in defs if f.get("fieldKey")
                }
        found = self._fields[model].get(norm(name))
        if found is None:
            raise ConfigError(
                f"GHL {model} custom field '{name}' ({key}) not found in location {self.settings.location_id}"
            )
        return found

    # --- inbound webhooks ------------------------------------------------------------------------

    async def post_webhook(self, url: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST a flat payload to a webhook-trigger URL (no token, no Version); returns (status, body).

        Retries like any call; a non-2xx final answer raises GhlRequestError.
        """
        try:
            async for attempt in retrying(self.settings.retry, "GHL webhook"):
                with attempt:
                    resp = await self._http.post(
                        url,
                        content=orjson.dumps(payload),
                        headers={"Content-Type": "application/json"},
                        extensions=SECRET_PATH,
                    )
                    if resp.status_code == 429 or resp.status_code >= 500:
                        raise RetryableStatus(resp.status_code, url, parse_retry_after(resp.headers.get("Retry-After")))
                    body = _body(resp)
                    if resp.status_code >= 300:
                        raise GhlRequestError(
                            f"webhook answered HTTP {resp.status_code}: {_message(body, resp)}", resp.status_code, body
                        )
                    return resp.status_code, body
        except (httpx.TransportError, RetryableStatus) as exc:
            raise ApiUnavailable(f"webhook {mask_webhook(url)} kept failing: {describe(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover


def pacer(requests_per_10s: int) -> RateLimiter:
    """A token bucket whose burst plus 10 s of refill is ``requests_per_10s``: at most that many in any 10 s
    window, sent one at a time at an even pace rather than in bursts."""
    burst = 2.0 if requests_per_10s >= 20 else 1.0
    return RateLimiter(rate=max(requests_per_10s - burst, 0.5) / 10, burst=burst)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _interval(resp: httpx.Response) -> float | None:
    value = resp.headers.get("X-RateLimit-Interval-Milliseconds")
    try:
        return float(value) / 1000 if value else None
    except ValueError:
        return None


def _body(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return resp.text[:500]


def _meta(body: Any, key: str) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("meta"), dict) and body["meta"].get(key):
        return str(body["meta"][key])
    return None


def _code(body: Any) -> str | None:
    return str(body.get("code")) if isinstance(body, dict) and body.get("code") else None


def _message(body: Any, resp: httpx.Response) -> str:
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or resp.reason_phrase
        if isinstance(msg, list):
            msg = "; ".join(str(m) for m in msg)
        return str(msg)
    if isinstance(body, str) and body:
        return body.splitlines()[0][:200]
    return resp.reason_phrase or "no body"
