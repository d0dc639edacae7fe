"""The GHL sandbox's HTTP semantics as one function (``GhlApp.handle``), served by the same adapters as
the ServiceTitan sandbox (``stsync.sandbox.server``) and driven by the same fault rules.

Order of checks on an API call, as observed on the real gateway: faults, ``Version`` header (401
"version header was not found." before the token is looked at), bearer token (401), per-location rate
limit (429), JSON body (400), then the endpoint (its own 400/403/422). Every authenticated answer,
errors included, carries the ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from stsync.sandbox.app import Request, Response
from stsync.sandbox.faults import Faults
from stsync.sandbox.ghl import contacts, opportunities
from stsync.sandbox.ghl.contacts import Ctx, Result
from stsync.sandbox.ghl.limiter import Limiter, Verdict
from stsync.sandbox.ghl.options import GhlOptions
from stsync.sandbox.ghl.store import GhlError, Store

Handler = Callable[[Store, Ctx], Result]
_JSON = [("Content-Type", "application/json; charset=utf-8")]
_HOOK = re.compile(r"^/hooks/([^/]+)/webhook-trigger/([^/]+)$")

ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (m, re.compile(f"^{p}$"), h)
    for m, p, h in [
        ("POST", r"/contacts/upsert", contacts.upsert),
        ("GET", r"/contacts/search/duplicate", contacts.duplicate),
        ("POST", r"/contacts/search", contacts.search),
        ("POST", r"/contacts", contacts.create),
        ("GET", r"/contacts", contacts.list_contacts),
        ("POST", r"/contacts/(?P<contactId>[^/]+)/tags", contacts.add_tags),
        ("DELETE", r"/contacts/(?P<contactId>[^/]+)/tags", contacts.remove_tags),
        ("GET", r"/contacts/(?P<contactId>[^/]+)", contacts.get),
        ("PUT", r"/contacts/(?P<contactId>[^/]+)", contacts.update),
        ("DELETE", r"/contacts/(?P<contactId>[^/]+)", contacts.delete),
        ("GET", r"/opportunities/pipelines", opportunities.pipelines),
        ("GET", r"/opportunities/search", opportunities.search),
        ("POST", r"/opportunities", opportunities.create),
        ("PUT", r"/opportunities/(?P<id>[^/]+)/status", opportunities.update_status),
        ("GET", r"/opportunities/(?P<id>[^/]+)", opportunities.get),
        ("PUT", r"/opportunities/(?P<id>[^/]+)", opportunities.update),
        ("DELETE", r"/opportunities/(?P<id>[^/]+)", opportunities.delete),
        ("GET", r"/locations/(?P<locationId>[^/]+)/customFields", opportunities.custom_fields),
        ("GET", r"/locations/(?P<locationId>[^/]+)/customFields/(?P<id>[^/]+)", opportunities.custom_field),
    ]
]


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(body), [*_JSON, *(headers or [])])


class GhlApp:
    """Routing, version/auth checks, rate limits, faults, webhooks and admin endpoints of one sandbox."""

    def __init__(self, opts: GhlOptions, faults: Faults | None = None) -> None:
        self.opts = opts
        self.store = Store(opts)
        self.faults = faults or Faults()
        self.limiter = Limiter(opts.rate_limit, opts.rate_window_s, opts.daily_limit, opts.clock)
        self.tokens = {token: loc for loc, token in opts.locations.items()}
        self.requests: list[dict[str, Any]] = []
        self.count_429 = 0
        self._lock = threading.Lock()

    # --- entry point ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/_ghl/"):
            return self._admin(req)
        path = req.path.rstrip("/") or "/"
        delay = self.faults.latency_ms(path) / 1000.0
        rule = self.faults.decide(path)
        if rule is not None and rule.kind == "drop":
            resp = Response(0, b"", action="drop")
        elif rule is not None and rule.kind == "status":
            resp = json_response(rule.status, {"statusCode": rule.status, "message": "Internal server error"})
        elif rule is not None and rule.kind == "rate_limit":
            headers = [("Retry-After", str(rule.retry_after))] if rule.retry_after is not None else []
            loc = self.tokens.get(_bearer(req) or "")
            if loc is not None:
                headers += Verdict(False, 0, self.opts.daily_limit).headers(
                    self.opts.rate_limit, self.opts.rate_window_s, self.opts.daily_limit
                )
            resp = json_response(429, {"statusCode": 429, "message": "Too Many Requests"}, headers)
        else:
            m = _HOOK.match(path)
            resp = self._hook(req, m.group(1), m.group(2)) if m else self._api(req, path)
            if rule is not None and rule.kind == "truncate":
                resp.action = "truncate"
                resp.keep = max(0, min(len(resp.body) - 1, int(len(resp.body) * rule.keep)))
        resp.delay_s = delay
        with self._lock:
            if resp.status == 429:
                self.count_429 += 1
            self.requests.append(
                {
                    "method": req.method,
                    "path": req.path,
                    "query": dict(req.query),
                    "status": resp.status if resp.action != "drop" else None,
                    "body": _parse_quiet(req.body),
                }
            )
        return resp

    def _api(self, req: Request, path: str) -> Response:  # noqa: PLR0911 - one return per check
        version = req.headers.get("version")
        if not version:
            return json_response(401, {"statusCode": 401, "message": "version header was not found."})
        if version not in self.opts.versions:
            return json_response(401, {"statusCode": 401, "message": "version header is invalid"})
        token = _bearer(req)
        loc = self.tokens.get(token or "")
        if loc is None:
            if token and token.startswith("pit-"):
                return json_response(401, {"statusCode": 401, "message": "Invalid Private Integration token"})
            unauth = {"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"}
            return json_response(401, unauth)
        verdict = self.limiter.take(loc)
        rl = verdict.headers(self.opts.rate_limit, self.opts.rate_window_s, self.opts.daily_limit)
        if not verdict.ok:
            return json_response(429, {"statusCode": 429, "message": "Too Many Requests"}, rl)
        body: Any = None
        if req.method in ("POST", "PUT", "DELETE") and req.body:
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError as e:
                bad = {"statusCode": 400, "message": f"Unexpected token in JSON: {e}", "error": "Bad Request"}
                return json_response(400, bad, rl)
        for method, pattern, handler in ROUTES:
            m = pattern.match(path)
            if m and method == req.method:
                ctx = Ctx(loc, dict(req.query), body, m.groupdict())
                try:
                    with self.store.lock:
                        status, out = handler(self.store, ctx)
                except GhlError as e:
                    return json_response(e.status, e.body, rl)
                return json_response(status, out, rl)
        msg = f"Cannot {req.method} {req.path}"
        return json_response(404, {"statusCode": 404, "message": msg, "error": "Not Found"}, rl)

    # --- inbound webhook triggers ---------------------------------------------------------------------

    def register_hook(self, name: str, location: str | None = None) -> str:
        """The path of hook `name`'s trigger URL (deterministic per seed, location and name)."""
        loc = location or next(iter(self.opts.locations))
        rng = random.Random(f"{self.opts.seed}:hook:{loc}:{name}")
        trigger = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        with self.store.lock:
            self.store.hooks[(loc, trigger)] = name
            self.store.webhooks.setdefault(name, [])
        return f"/hooks/{loc}/webhook-trigger/{trigger}"

    def _hook(self, req: Request, loc: str, trigger: str) -> Response:
        if req.method not in ("GET", "POST", "PUT"):
            missing = {"statusCode": 404, "message": f"Cannot {req.method} {req.path}", "error": "Not Found"}
            return json_response(404, missing)
        if req.method == "GET":
            payload: Any = dict(req.query)
        else:
            try:
                payload = orjson.loads(req.body or b"{}")
            except orjson.JSONDecodeError:
                payload = None
            if not isinstance(payload, dict):
                return json_response(400, {"statusCode": 400, "message": "Payload must be a JSON object"})
        with self.store.lock:
            name = self.store.hooks.get((loc, trigger))
            if name is None:  # a deleted or mistyped trigger still answers 200, just without an id
                return json_response(200, {"status": "Success: test request received"})
            self.store.webhooks[name].append(payload)
            execution = self.store.new_id("hook-execution")
        return json_response(200, {"status": "Success: request sent to trigger execution server", "id": execution})

    # --- admin (no auth, not rate limited, not logged) ------------------------------------------------

    def _admin(self, req: Request) -> Response:  # noqa: PLR0911 - one return per admin route
        route = (req.method, req.path.rstrip("/"))
        if route == ("GET", "/_ghl/dump"):
            return json_response(200, self.store.dump())
        if route == ("GET", "/_ghl/requests"):
            with self._lock:
                return json_response(200, {"requests": list(self.requests), "count_429": self.count_429})
        if route == ("DELETE", "/_ghl/requests"):
            with self._lock:
                self.requests.clear()
            return json_response(200, {"cleared": True})
        if route == ("GET", "/_ghl/faults"):
            return json_response(200, self.faults.describe())
        if route == ("POST", "/_ghl/faults"):
            try:
                self.faults.set(orjson.loads(req.body or b"{}"))
            except (ValueError, TypeError) as e:
                return json_response(400, {"statusCode": 400, "message": str(e)})
            return json_response(200, self.faults.describe())
        if route == ("DELETE", "/_ghl/faults"):
            self.faults.clear()
            return json_response(200, self.faults.describe())
        if route == ("POST", "/_ghl/hooks"):
            try:
                spec = orjson.loads(req.body or b"{}")
                path = self.register_hook(str(spec["name"]), spec.get("locationId"))
            except (ValueError, KeyError, TypeError) as e:
                return json_response(400, {"statusCode": 400, "message": f"need {{'name': ...}}: {e}"})
            return json_response(200, {"path": path, "url": f"http://{req.headers.get('host', '')}{path}"})
        return json_response(404, {"statusCode": 404, "message": f"Cannot {req.method} {req.path}"})


def _bearer(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _parse_quiet(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
