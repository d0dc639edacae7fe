"""Contacts endpoints: upsert, create, read, update, delete, list (deprecated), search, duplicate lookup."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from stsync.sandbox.ghl.specs import validate_body
from stsync.sandbox.ghl.store import Store, bad_request, forbidden_location, norm_phone, unprocessable

Result = tuple[int, dict[str, Any]]


@dataclass
class Ctx:
    """One authenticated API call: the token's location, query, parsed JSON body, path parameters."""

    location: str
    query: dict[str, str]
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)

    def body_of(self, spec: str, dto: str) -> dict[str, Any]:
        errors = validate_body(spec, dto, self.body)
        if errors:
            raise unprocessable(errors)
        body: dict[str, Any] = self.body
        self.same_location(body.get("locationId"))
        return body

    def same_location(self, loc: str | None) -> None:
        if loc is not None and loc != self.location:
            raise forbidden_location()

    def query_location(self, name: str = "locationId") -> str:
        loc = self.query.get(name)
        if not loc:
            raise unprocessable([f"{name} should not be empty", f"{name} must be a string"])
        self.same_location(loc)
        return loc

    def int_query(self, name: str, default: int, hi: int, lo: int = 1) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(float(raw))
        except ValueError:
            raise unprocessable([f"{name} must be a number conforming to the specified constraints"]) from None
        if v < lo or v > hi:
            bound = f"not be greater than {hi}" if v > hi else f"not be less than {lo}"
            raise unprocessable([f"{name} must {bound}"])
        return v


def trace_id() -> str:
    return secrets.token_hex(16)


def upsert(store: Store, ctx: Ctx) -> Result:
    body = ctx.body_of("contacts", "UpsertContactDto")
    loc = ctx.location
    if body.get("createNewIfDuplicateAllowed") and store.opts.allow_duplicate_contacts:
        return 200, {"new": True, "contact": dict(store.create_contact(loc, body)), "traceId": trace_id()}
    match = store.find_contact(loc, body.get("email"), body.get("phone"))
    if match is None:
        return 200, {"new": True, "contact": dict(store.create_contact(loc, body)), "traceId": trace_id()}
    c, fld = match
    data = dict(body)
    data.pop("gender", None)  # accepted, silently ignored on existing contacts (ISSUE #313)
    # Email and phone pointing at two different contacts: the first field in the configured order
    # wins and the other one is ignored, not an error (ISSUE #37).
    for other in store.opts.duplicate_match:
        if other == fld or not data.get(other):
            continue
        email, phone = (data[other], None) if other == "email" else (None, data[other])
        elsewhere = store.find_contact(loc, email, phone, skip=c["id"])
        if elsewhere is not None:
            data.pop(other)
    store.apply_contact(c, data)
    return 200, {"new": False, "contact": dict(c), "traceId": trace_id()}


def create(store: Store, ctx: Ctx) -> Result:
    body = ctx.body_of("contacts", "CreateContactDto")
    if not store.opts.allow_duplicate_contacts:
        match = store.find_contact(ctx.location, body.get("email"), body.get("phone"))
        if match is not None:
            raise store.duplicate_error(match)
    return 201, {"contact": dict(store.create_contact(ctx.location, body))}


def get(store: Store, ctx: Ctx) -> Result:
    return 200, {"contact": dict(store.contact(ctx.location, ctx.params["contactId"]))}


def update(store: Store, ctx: Ctx) -> Result:
    c = store.contact(ctx.location, ctx.params["contactId"])
    body = ctx.body_of("contacts", "UpdateContactDto")
    if not store.opts.allow_duplicate_contacts and (body.get("email") or body.get("phone")):
        match = store.find_contact(ctx.location, body.get("email"), body.get("phone"), skip=c["id"])
        if match is not None:
            raise store.duplicate_error(match)
    store.apply_contact(c, body)
    return 200, {"succeded": True, "contact": dict(c)}


def add_tags(store: Store, ctx: Ctx) -> Result:
    """``POST /contacts/{id}/tags``: adding a tag the contact has is no change."""
    c = store.contact(ctx.location, ctx.params["contactId"])
    tags = c.setdefault("tags", [])
    for tag in ctx.body_of("contacts", "TagsDTO")["tags"]:
        if tag not in tags:
            tags.append(tag)
    return 201, {"tags": list(tags)}


def remove_tags(store: Store, ctx: Ctx) -> Result:
    c = store.contact(ctx.location, ctx.params["contactId"])
    gone = set(ctx.body_of("contacts", "TagsDTO")["tags"])
    c["tags"] = [t for t in c.get("tags", []) if t not in gone]
    return 200, {"tags": list(c["tags"])}


def delete(store: Store, ctx: Ctx) -> Result:
    c = store.contact(ctx.location, ctx.params["contactId"])
    del store.contacts[c["id"]]
    return 200, {"succeded": True}


def _text_match(c: dict[str, Any], q: str) -> bool:
    q = q.lower()
    hay = [c.get("fullNameLowerCase"), c.get("emailLowerCase"), c.get("phone"), (c.get("companyName") or "").lower()]
    digits = norm_phone(q) if any(ch.isdigit() for ch in q) else None
    return any(h and q in h for h in hay) or bool(digits and c.get("phone") and digits[1:] in c["phone"])


def list_contacts(store: Store, ctx: Ctx) -> Result:
    """``GET /contacts/`` (deprecated): oldest first; ``startAfterId`` / ``startAfter`` (ms) page on."""
    loc = ctx.query_location()
    limit = ctx.int_query("limit", 20, 100)
    rows = [c for c in store.contacts.values() if c["locationId"] == loc]
    if q := ctx.query.get("query"):
        rows = [c for c in rows if _text_match(c, q)]
    total = len(rows)
    if after_id := ctx.query.get("startAfterId"):
        ids = [c["id"] for c in rows]
        rows = rows[ids.index(after_id) + 1 :] if after_id in ids else []
    elif after := ctx.query.get("startAfter"):
        rows = [c for c in rows if store.added_ms[c["id"]] > int(float(after))]
    page = rows[:limit]
    meta: dict[str, Any] = {"total": total, "currentPage": 1}
    if len(rows) > limit and page:
        last = page[-1]
        meta |= {"startAfterId": last["id"], "startAfter": store.added_ms[last["id"]], "nextPage": 2}
        meta["nextPageUrl"] = (
            f"/contacts/?locationId={loc}&limit={limit}&startAfterId={last['id']}&startAfter={meta['startAfter']}"
        )
    return 200, {"contacts": [dict(c) for c in page], "count": total, "meta": meta}


_OPS = ("eq", "not_eq", "contains", "not_contains", "exists", "not_exists")


def _filter_ok(c: dict[str, Any], f: dict[str, Any]) -> bool:
    if "group" in f:
        subs = [_filter_ok(c, s) for s in f.get("filters", [])]
        return any(subs) if str(f["group"]).upper() == "OR" else all(subs)
    fld, op, want = f.get("field"), f.get("operator"), f.get("value")
    if op not in _OPS or not isinstance(fld, str):
        raise unprocessable([f"filters: operator must be one of {', '.join(_OPS)} and field a string"])
    have = c.get(fld)
    if fld == "email" and isinstance(want, str):
        have, want = c.get("emailLowerCase"), want.lower()
    elif fld == "phone" and isinstance(want, str):
        want = norm_phone(want)
    if op == "exists":
        return have not in (None, "", [])
    if op == "not_exists":
        return have in (None, "", [])
    if op == "eq":
        return want in have if isinstance(have, list) else have == want
    if op == "not_eq":
        return want not in have if isinstance(have, list) else have != want
    contains = isinstance(have, str) and isinstance(want, str) and want.lower() in have.lower()
    return contains if op == "contains" else not contains


PAGED_MAX = 10_000  # page + pageLimit reach this many contacts; searchAfter goes beyond


def search(store: Store, ctx: Ctx) -> Result:
    """``POST /contacts/search``: ``{locationId, page | searchAfter, pageLimit, query, filters: [{field, operator,
    value}]}``, oldest first. Each contact carries its ``searchAfter`` ([dateAdded ms, id]); passing the last one
    back (instead of ``page``) gives the next page, the only way past the 10,000th contact."""
    body = ctx.body_of("contacts", "SearchBodyV2DTO")
    loc = body.get("locationId")
    if not loc:
        raise unprocessable(["locationId should not be empty"])
    after = body.get("searchAfter")
    page, limit = int(body.get("page", 1)), int(body.get("pageLimit", 20))
    if page < 1 or not 1 <= limit <= 500:
        raise unprocessable(["page must not be less than 1", "pageLimit must not be greater than 500"])
    if after is not None and "page" in body:
        raise unprocessable(["page and searchAfter cannot be used together"])
    if after is not None and not (isinstance(after, list) and len(after) == 2):
        raise unprocessable(["searchAfter must be the searchAfter array of a contact"])
    if after is None and page * limit > PAGED_MAX:
        raise unprocessable([f"page * pageLimit must not exceed {PAGED_MAX}; use searchAfter to go further"])
    rows = [c for c in store.contacts.values() if c["locationId"] == loc]
    if q := body.get("query"):
        rows = [c for c in rows if _text_match(c, q)]
    for f in body.get("filters", []):
        rows = [c for c in rows if _filter_ok(c, f)]
    total = len(rows)
    rows.sort(key=lambda c: (store.added_ms[c["id"]], c["id"]))
    if after is not None:
        cursor = (int(after[0]), str(after[1]))
        rows = [c for c in rows if (store.added_ms[c["id"]], c["id"]) > cursor]
        start = 0
    else:
        start = (page - 1) * limit
    chunk = rows[start : start + limit]
    out = [{**c, "searchAfter": [store.added_ms[c["id"]], c["id"]]} for c in chunk]
    return 200, {"contacts": out, "total": total}


def duplicate(store: Store, ctx: Ctx) -> Result:
    """``GET /contacts/search/duplicate?locationId=&email=&number=`` -> ``{contact}`` (null when none)."""
    loc = ctx.query_location()
    email, number = ctx.query.get("email"), ctx.query.get("number")
    if not email and not number:
        raise bad_request("email or number is required")
    match = store.find_contact(loc, email, number)
    return 200, {"contact": dict(match[0]) if match else None}
