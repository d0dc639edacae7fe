"""The sandbox's HTTP semantics as one plain function: Request in, Response out.

The socket server (``server.py``) and the in-process httpx transport both call ``App.handle``, so tests
that skip sockets exercise exactly the code the CLI serves. Fault actions that only make sense on a
socket (drop, truncate) are returned as instructions on the Response, and each adapter carries them out.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from stsync.sandbox import resources as rs
from stsync.sandbox.changes import advance
from stsync.sandbox.clock import fmt, parse
from stsync.sandbox.faults import Faults
from stsync.sandbox.world import World

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - a documented fake credential of the local sandbox
APP_KEY = "sandbox-app-key"
SCOPE = (
    "tn.crm.customers:r tn.jpm.jobs:r tn.jpm.appointments:r tn.dis.appointmentassignments:r "
    "tn.sls.estimates:r tn.acc.invoices:r tn.acc.payments:r tn.eqs.installedequipment:r tn.set.settings:r"
)
MAX_PAGE_SIZE = 5000
MAX_IDS = 50
_PATH = re.compile(r"^/([a-z-]+)/v2/tenant/([^/]+)/(.+?)/?$")
_ACTIVE = {"true": True, "any": None, "false": False}
_ACTIVE_STATE = {"activeonly": True, "all": None, "inactiveonly": False}
_JSON = [("Content-Type", "application/json; charset=utf-8")]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @classmethod
    def from_target(cls, method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
        path, _, qs = target.partition("?")
        return cls(
            method.upper(),
            path,
            dict(parse_qsl(qs, keep_blank_values=True)),
            {k.lower(): v for k, v in headers.items()},
            body,
        )


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=lambda: list(_JSON))
    action: str | None = None  # None, "drop" or "truncate"
    keep: int = 0  # bytes of the body to send before closing when truncating
    delay_s: float = 0.0  # injected latency; adapters sleep it before answering


def _token_fields(token: str) -> tuple[str, str, int, str]:
    """A continuation token's version, resource, position in the feed and signature (ValueError if it is not
    one of the sandbox's tokens; the signature is not checked here)."""
    ver, name, pos, sig = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
    return ver, name, int(pos), sig


def token_position(token: str) -> int | None:
    """Where in its feed a continuation token of the sandbox resumes (None for anything else): tests compare
    it with the token a killed run stored to tell which pages it committed."""
    try:
        return _token_fields(token)[2]
    except (ValueError, UnicodeDecodeError):
        return None


class BadRequest(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _trace() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def problem(
    status: int,
    title: str,
    errors: dict[str, list[str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """An ApiErrorResponse (RFC 7807 shape ServiceTitan uses)."""
    kind = {
        400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        401: "https://tools.ietf.org/html/rfc7235#section-3.1",
        403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
        404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        429: "https://tools.ietf.org/html/rfc6585#section-4",
    }.get(status, "https://tools.ietf.org/html/rfc7231#section-6.6.1")
    body = orjson.dumps(
        {
            "type": kind,
            "title": title,
            "status": status,
            "traceId": _trace(),
            "errors": errors or {},
            "data": {},
        }
    )
    return Response(status, body, list(_JSON) + (headers or []))


class RateLimiter:
    """Token bucket per (app key, tenant): N requests per second, burst N."""

    def __init__(self, per_second: int) -> None:
        self.rate = per_second
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, k: tuple[str, str]) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(k, (float(self.rate), now))
            tokens = min(float(self.rate), tokens + (now - last) * self.rate)
            ok = tokens >= 1.0
            self._buckets[k] = (tokens - 1.0 if ok else tokens, now)
            return ok


class App:
    """Routing, auth, rate limiting, lists, exports and the admin endpoints of one sandbox tenant."""

    def __init__(
        self,
        world: World,
        *,
        tenant: int = 1234567,
        token_ttl: int = 900,
        rate_limit: int = 60,
        export_batch_size: int = 5000,
        faults: Faults | None = None,
        cache: Any = None,
        on_advance: Any = None,
        denied_modules: tuple[str, ...] = (),
    ) -> None:
        self.world = world
        self.denied_modules = denied_modules
        self.tenant = tenant
        self.token_ttl = token_ttl
        self.limiter = RateLimiter(rate_limit)
        self.batch = export_batch_size
        self.faults = faults or Faults()
        self.cache = cache  # optional prewarmed base-record bytes (see cache.py)
        self.on_advance = on_advance  # persistence hook: called with (minutes, changes) after an advance
        self.tokens: dict[str, tuple[float, int]] = {}  # token -> (monotonic expiry, fault token epoch)
        self.requests: list[dict[str, Any]] = []
        self._routes = rs.routes()
        self._lock = threading.Lock()

    # --- entry point ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/_sandbox/"):
            return self._admin(req)
        delay = self.faults.latency_ms(req.path) / 1000.0
        rule = self.faults.decide(req.path)
        if rule is not None and rule.kind in ("status", "rate_limit", "drop"):
            if rule.kind == "drop":
                resp = Response(0, b"", action="drop")
            elif rule.kind == "status":
                title = {
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                    504: "Gateway Timeout",
                }[rule.status]
                resp = problem(rule.status, title)
            else:
                resp = self._too_many(rule.retry_after)
        else:
            resp = self._route(req)
            if rule is not None and rule.kind == "truncate":
                resp.action = "truncate"
                resp.keep = max(0, min(len(resp.body) - 1, int(len(resp.body) * rule.keep)))
        resp.delay_s = delay
        if not req.path.startswith("/_sandbox/"):
            with self._lock:
                self.requests.append(
                    {
                        "method": req.method,
                        "path": req.path,
                        "query": dict(req.query),
                        "status": resp.status if resp.action != "drop" else None,
                    }
                )
        return resp

    def _too_many(self, retry_after: int | None) -> Response:
        wait = retry_after if retry_after is not None else 1
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        return problem(429, f"Rate limit is exceeded. Try again in {wait} seconds.", headers=headers)

    def _route(self, req: Request) -> Response:  # noqa: PLR0911, PLR0912 - one return per HTTP outcome
        if req.path == "/connect/token":
            if req.method != "POST":
                return problem(405, "Method Not Allowed")
            return self._token(req)
        m = _PATH.match(req.path)
        hit = self._routes.get((m.group(1), m.group(3))) if m else None
        if m is None or hit is None:
            return problem(404, "Not Found")
        if req.method != "GET":
            return problem(405, "Method Not Allowed")
        res, kind = hit
        app_key = req.headers.get("st-app-key") or req.query.get("servicetitanapplicationkey")
        if not app_key:
            return problem(401, "Access denied due to missing application key (ST-App-Key header).")
        # The gateway counts before it authenticates, per (app key, tenant).
        if not self.limiter.allow((app_key, m.group(2))):
            return self._too_many(1)
        if app_key != APP_KEY:
            return problem(403, "Access denied due to invalid application key.")
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or not self._token_ok(token):
            return problem(401, "Unauthorized", headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
        if not m.group(2).isdigit():
            return problem(404, "Not Found")
        if int(m.group(2)) != self.tenant:
            return problem(403, f"Tenant {m.group(2)} is not accessible with these credentials.")
        if m.group(1) in self.denied_modules:  # the wording is the sandbox's own; ServiceTitan's is undocumented
            return problem(403, f"The application is not authorized to access the {m.group(1)} API.")
        try:
            with self.world.lock:
                if kind == "export":
                    return self._export(res, req)
                return self._list(res, req)
        except BadRequest as exc:
            return problem(400, "One or more validation errors occurred.", {exc.param: [exc.message]})

    # --- auth -------------------------------------------------------------------------------------

    def _token(self, req: Request) -> Response:
        form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return Response(400, orjson.dumps({"error": "unsupported_grant_type"}))
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Response(400, orjson.dumps({"error": "invalid_client"}))
        head = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
        payload = (
            base64.urlsafe_b64encode(
                orjson.dumps({"client_id": CLIENT_ID, "tenant": str(self.tenant), "jti": secrets.token_hex(8)})
            )
            .rstrip(b"=")
            .decode()
        )
        token = f"{head}.{payload}.{secrets.token_urlsafe(32)}"
        with self._lock:
            self.tokens[token] = (time.monotonic() + self.token_ttl, self.faults.token_epoch)
        return Response(
            200,
            orjson.dumps({"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer", "scope": SCOPE}),
        )

    def _token_ok(self, token: str) -> bool:
        with self._lock:
            entry = self.tokens.get(token)
        return entry is not None and entry[0] > time.monotonic() and entry[1] == self.faults.token_epoch

    # --- exports ----------------------------------------------------------------------------------

    def _sig(self, res: rs.Res, pos: int) -> str:
        return hashlib.sha256(f"{self.world.seed}:{res.name}:{pos}".encode()).hexdigest()[:10]

    def encode_token(self, res: rs.Res, pos: int) -> str:
        raw = f"v1:{res.name}:{pos}:{self._sig(res, pos)}".encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode_token(self, res: rs.Res, token: str) -> int:
        try:
            ver, name, pos, sig = _token_fields(token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("from", "The value is neither a date nor a valid continuation token.") from exc
        if ver != "v1" or name != res.name or sig != self._sig(res, pos) or pos < 0:
            raise BadRequest("from", "The continuation token is not valid for this endpoint.")
        return pos

    def _export(self, res: rs.Res, req: Request) -> Response:
        q = req.query
        w = self.world
        frm = q.get("from", "")
        if not frm:
            pos = 0
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", frm):
            try:
                pos = w.position_for_time(res.name, parse(frm))
            except ValueError as exc:
                raise BadRequest("from", f"The value '{frm}' is not a valid date.") from exc
        else:
            pos = self.decode_token(res, frm)
        recent = _bool(q, "includeRecentChanges", False)
        active: bool | None = None
        if res.export_active_default != "n/a":
            active = _enum(q, "active", _ACTIVE, res.export_active_default)  # type: ignore[arg-type]
        idx, nxt, more = w.feed(res.name, pos, self.batch, recent, active)
        data = self._records(res, idx, req.path, for_list=False)
        body = b"".join(
            (
                b'{"hasMore":',
                b"true" if more else b"false",
                b',"continueFrom":"',
                self.encode_token(res, nxt).encode(),
                b'","data":[',
                data,
                b"]}",
            )
        )
        return Response(200, body)

    def _records(self, res: rs.Res, idx: list[int], path: str, for_list: bool) -> bytes:
        w = self.world
        parts = []
        for i in idx:
            raw = None
            if self.cache is not None and i < w.n[res.name] and i not in w.overlay[res.name]:
                raw = self.cache.get(res.name, i)
            if raw is None:
                raw = w.raw(res.name, i)
            if for_list and res.list_drop_active:
                raw = _drop_active(raw)
            parts.append(raw)
        if parts:
            rule = self.faults.malformed_for(res.public, path)
            if rule is not None:
                rec = orjson.loads(parts[0])
                rec[rule.fields] = rule.value
                parts[0] = orjson.dumps(rec)
                self.faults.record_malformed(res.public, orjson.loads(w.raw(res.name, idx[0]))["id"], rule.fields, path)
        return b",".join(parts)

    # --- lists ------------------------------------------------------------------------------------

    def _list(self, res: rs.Res, req: Request) -> Response:  # noqa: PLR0912, PLR0915 - one branch per documented parameter
        q = req.query
        w = self.world
        page = _int(q, "page", 1, 1, 10**9)
        size = _int(q, "pageSize", 50, 1, MAX_PAGE_SIZE)
        include_total = _bool(q, "includeTotal", False)
        if res.requires_one_of and not any(q.get(p) for p in res.requires_one_of):
            raise BadRequest(res.requires_one_of[0], f"One of {', '.join(res.requires_one_of)} must be specified.")
        active: bool | None = None
        if res.active_param == "active":
            active = _enum(q, "active", _ACTIVE, True)
        elif res.active_param == "activeState":
            active = _enum(q, "activeState", _ACTIVE_STATE, True)
        elif res.list_drop_active:
            active = True  # deleted contacts vanish from lists; only exports still show them (active=false)
        bounds = {
            p: parse_date(q, p) for p in ("createdOnOrAfter", "createdBefore", "modifiedOnOrAfter", "modifiedBefore")
        }
        field_filters = []
        for param, (fpath, multi) in res.filters.items():
            if q.get(param):
                vals = [v.strip() for v in q[param].split(",")] if multi else [q[param].strip()]
                field_filters.append((fpath, {_coerce(v) for v in vals if v}))
        sort_key, desc = self._sort(res, q)
        name = res.name
        cand: Sequence[int]
        if q.get("ids"):
            ids = _ids(q["ids"])
            cand = [i for i in (w.index_of(name, x) for x in ids) if i is not None]
        else:
            cand = range(w.total(name))

        def keep(i: int) -> bool:  # noqa: PLR0911 - one return per filter
            created, modified, act = w.meta(name, i)
            if active is not None and act != active:
                return False
            b = bounds
            if b["createdOnOrAfter"] is not None and created < b["createdOnOrAfter"]:
                return False
            if b["createdBefore"] is not None and created >= b["createdBefore"]:
                return False
            if b["modifiedOnOrAfter"] is not None and modified < b["modifiedOnOrAfter"]:
                return False
            if b["modifiedBefore"] is not None and modified >= b["modifiedBefore"]:
                return False
            if field_filters:
                rec = w.get(name, i)
                for fpath, wanted in field_filters:
                    v: Any = rec
                    for part in fpath:
                        v = v.get(part) if isinstance(v, dict) else None
                    if v not in wanted and str(v) not in wanted:
                        return False
            return True

        start = (page - 1) * size
        ordered_by_index = sort_key == "Id" and name not in w._ref_ids and not desc and not q.get("ids")
        total: int | None = None
        chosen: list[int]
        unfiltered = active is None and not field_filters and all(v is None for v in bounds.values())
        if ordered_by_index and unfiltered:
            # Nothing to evaluate per record: the page is a slice of the index range.
            n_all = len(cand)
            chosen = list(cand[start : start + size])
            more = start + size < n_all
            total = n_all
        elif ordered_by_index and not include_total:
            chosen = []
            seen = 0
            for i in cand:
                if keep(i):
                    if seen >= start:
                        chosen.append(i)
                        if len(chosen) > size:
                            break
                    seen += 1
            more = len(chosen) > size
            chosen = chosen[:size]
        else:
            matched = [i for i in cand if keep(i)]
            matched = sorted(set(matched), key=lambda i: self._key(name, i, sort_key), reverse=desc)
            total = len(matched)
            chosen = matched[start : start + size]
            more = start + size < total
        if include_total and total is None:
            total = sum(1 for i in cand if keep(i))
        data = self._records(res, chosen, req.path, for_list=True)
        body = b"".join(
            (
                b'{"page":',
                str(page).encode(),
                b',"pageSize":',
                str(len(chosen)).encode(),
                b',"hasMore":',
                b"true" if more else b"false",
                b',"totalCount":',
                str(total).encode() if include_total else b"null",
                b',"data":[',
                data,
                b"]}",
            )
        )
        return Response(200, body)

    def _sort(self, res: rs.Res, q: dict[str, str]) -> tuple[str, bool]:
        if res.sort == "orderBy":
            fld = q.get("orderBy") or "Id"
            direction = (q.get("orderByDirection") or "asc").lower()
            if direction not in ("asc", "desc"):
                raise BadRequest("orderByDirection", "Must be 'asc' or 'desc'.")
            allowed: tuple[str, ...] = ("Id", "Name", "ModifiedOn", "CreatedOn")
            match = [a for a in allowed if a.lower() == fld.lower()]
            if not match:
                raise BadRequest("orderBy", f"Sorting by '{fld}' is not supported.")
            return match[0], direction == "desc"
        raw = q.get("sort")
        if not raw or not res.sort:
            return "Id", False
        desc = raw.startswith("-")
        fld = raw.lstrip("+- ")
        match = [a for a in res.sort if a.lower() == fld.lower()]
        if not match:
            raise BadRequest("sort", f"Sorting by '{fld}' is not supported. Use one of: {', '.join(res.sort)}.")
        return match[0], desc

    def _key(self, name: str, i: int, sort_key: str) -> Any:
        w = self.world
        if sort_key == "Id":
            return w.id_of(name, i)
        if sort_key == "ModifiedOn":
            return (w.meta(name, i)[1], w.id_of(name, i))
        if sort_key == "CreatedOn":
            return (w.meta(name, i)[0], w.id_of(name, i))
        rec = w.get(name, i)
        v = rec.get(sort_key[0].lower() + sort_key[1:])
        return (str(v), w.id_of(name, i))

    # --- admin ------------------------------------------------------------------------------------

    def _admin(self, req: Request) -> Response:  # noqa: PLR0911 - one return per admin route
        p = req.path.rstrip("/")
        try:
            if p == "/_sandbox/dump" and req.method == "GET":
                return Response(200, orjson.dumps(self.world.snapshot(), option=orjson.OPT_NON_STR_KEYS))
            if p == "/_sandbox/requests" and req.method == "GET":
                with self._lock:
                    return Response(200, orjson.dumps(self.requests))
            if p == "/_sandbox/requests" and req.method == "DELETE":
                with self._lock:
                    self.requests.clear()
                return Response(204, b"")
            if p == "/_sandbox/advance" and req.method == "POST":
                spec = orjson.loads(req.body or b"{}")
                summary = self.advance(int(spec.get("minutes", 60)), bool(spec.get("changes", True)))
                return Response(200, orjson.dumps(summary))
            if p == "/_sandbox/faults":
                if req.method == "POST":
                    self.faults.set(orjson.loads(req.body or b"{}"))
                elif req.method == "DELETE":
                    self.faults.clear()
                return Response(200, orjson.dumps(self.faults.describe()))
            if p == "/_sandbox/health" and req.method == "GET":
                return Response(200, orjson.dumps(self.status()))
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return problem(400, str(exc))
        return problem(404, "Not Found")

    def advance(self, minutes: int, changes: bool = True) -> dict[str, Any]:
        with self.world.lock:
            summary = advance(self.world, minutes, changes)
        if self.on_advance is not None:
            self.on_advance(minutes, changes)
        return summary

    def status(self) -> dict[str, Any]:
        w = self.world
        return {
            "tenant": self.tenant,
            "seed": w.seed,
            "scale": w.scale,
            "now": fmt(w.now),
            "records": w.record_count(),
            "advances": len(w.advances),
            "cache": self.cache.progress() if self.cache is not None else None,
        }


def _drop_active(raw: bytes) -> bytes:
    """List schemas of jobs and contacts have no `active`; it is always the last key we serialise."""
    for tail in (b',"active":true}', b',"active":false}'):
        if raw.endswith(tail):
            return raw[: -len(tail)] + b"}"
    rec = orjson.loads(raw)
    rec.pop("active", None)
    return orjson.dumps(rec)


def _int(q: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    v = q.get(name)
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError as exc:
        raise BadRequest(name, f"The value '{v}' is not valid for {name}.") from exc
    if not lo <= n <= hi:
        raise BadRequest(name, f"The field {name} must be between {lo} and {hi}.")
    return n


def _bool(q: dict[str, str], name: str, default: bool) -> bool:
    v = q.get(name)
    if v is None or v == "":
        return default
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise BadRequest(name, f"The value '{v}' is not valid for {name}.")


def _enum(q: dict[str, str], name: str, values: dict[str, bool | None], default: bool | None) -> bool | None:
    v = q.get(name)
    if v is None or v == "":
        return default
    if v.lower() not in values:
        raise BadRequest(name, f"The value '{v}' is not valid for {name}.")
    return values[v.lower()]


def parse_date(q: dict[str, str], name: str) -> int | None:
    v = q.get(name)
    if not v:
        return None
    try:
        return parse(v)
    except ValueError as exc:
        raise BadRequest(name, f"The value '{v}' is not valid for {name}.") from exc


def _ids(v: str) -> list[int]:
    try:
        ids = [int(x) for x in v.split(",") if x.strip()]
    except ValueError as exc:
        raise BadRequest("ids", f"The value '{v}' is not a comma-separated list of ids.") from exc
    if len(ids) > MAX_IDS:
        raise BadRequest("ids", f"At most {MAX_IDS} ids may be requested at once.")
    return ids


def _coerce(v: str) -> Any:
    return int(v) if v.lstrip("-").isdigit() else v
