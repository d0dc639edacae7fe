"""What one GHL sandbox holds: per-location pipelines and custom-field definitions, contacts,
opportunities and inbound-webhook payloads, plus deterministic ids and the sandbox's clock.

Ids come from per-kind RNG streams seeded with the sandbox seed, so the same calls in the same order
give the same ids; pipelines, stages and custom fields derive from (seed, location, name) alone.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import threading
import uuid
from typing import Any

from stsync.sandbox.ghl.options import GhlOptions

_ALNUM = string.ascii_letters + string.digits
BASE_TIME = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


class GhlError(Exception):
    """An HTTP error answer in GHL's shape (``statusCode`` + ``message`` and whatever else it carries)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def bad_request(message: str, **extra: Any) -> GhlError:
    return GhlError(400, {"statusCode": 400, "message": message, **extra})


def forbidden_location() -> GhlError:
    return GhlError(403, {"statusCode": 403, "message": "The token does not have access to this location."})


def unprocessable(messages: list[str]) -> GhlError:
    return GhlError(422, {"statusCode": 422, "message": messages, "error": "Unprocessable Entity"})


def norm_phone(raw: str | None) -> str | None:
    """E.164 the way GHL stores phones: ``+1 888-888-8888`` -> ``+18888888888`` (10 digits = NANP)."""
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if not digits:
        return None
    if raw.strip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:
        return "+1" + digits
    return "+" + digits


def _rid(rng: random.Random, n: int = 20) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


class Store:
    def __init__(self, opts: GhlOptions) -> None:
        self.opts = opts
        self.lock = threading.RLock()
        self._t0 = opts.clock()
        self._streams: dict[str, random.Random] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.added_ms: dict[str, int] = {}  # contact id -> dateAdded in ms (the `startAfter` cursor)
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, list[dict[str, Any]]] = {loc: self._pipelines(loc) for loc in opts.locations}
        self.custom_fields: dict[str, list[dict[str, Any]]] = {loc: self._fields(loc) for loc in opts.locations}
        self.hooks: dict[tuple[str, str], str] = {}  # (location id, trigger uuid) -> hook name
        self.webhooks: dict[str, list[Any]] = {}

    # --- ids and time -----------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        rng = self._streams.setdefault(kind, random.Random(f"{self.opts.seed}:{kind}"))
        return _rid(rng)

    def now_ms(self) -> int:
        return int(BASE_TIME.timestamp() * 1000 + (self.opts.clock() - self._t0) * 1000)

    def now(self) -> str:
        t = dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    # --- fixed per-location objects -----------------------------------------------------------------

    def _pipelines(self, loc: str) -> list[dict[str, Any]]:
        out = []
        for name, stages in self.opts.pipelines.items():
            rng = random.Random(f"{self.opts.seed}:pipeline:{loc}:{name}")
            pid = _rid(rng)
            out.append(
                {
                    "id": pid,
                    "name": name,
                    "stages": [
                        {
                            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            "name": stage,
                            "position": pos,
                            "showInFunnel": True,
                            "showInPieChart": True,
                        }
                        for pos, stage in enumerate(stages)
                    ],
                    "showInFunnel": True,
                    "showInPieChart": True,
                    "locationId": loc,
                }
            )
        return out

    def _fields(self, loc: str) -> list[dict[str, Any]]:
        out = []
        for pos, (model, name, data_type) in enumerate(self.opts.custom_fields):
            rng = random.Random(f"{self.opts.seed}:field:{loc}:{model}:{name}")
            slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            out.append(
                {
                    "id": _rid(rng),
                    "name": name,
                    "fieldKey": f"{model}.{slug}",
                    "placeholder": name,
                    "dataType": data_type,
                    "position": pos * 50,
                    "picklistOptions": [],
                    "locationId": loc,
                    "model": model,
                }
            )
        return out

    def pipeline(self, loc: str, pipeline_id: str) -> dict[str, Any]:
        for p in self.pipelines[loc]:
            if p["id"] == pipeline_id:
                return p
        raise bad_request(f"Pipeline with id {pipeline_id} not found")

    def custom_values(self, loc: str, model: str, items: list[dict[str, Any]] | None) -> dict[str, Any]:
        """{field id: value} of a write's `customFields`; ids/keys of other models or locations are ignored."""
        if not items:
            return {}
        defs = [f for f in self.custom_fields[loc] if f["model"] == model]
        by_id = {f["id"]: f["id"] for f in defs}
        by_key = {f["fieldKey"]: f["id"] for f in defs}
        by_key.update({f["fieldKey"].split(".", 1)[1]: f["id"] for f in defs})
        out: dict[str, Any] = {}
        for item in items:
            fid = by_id.get(item.get("id", "")) or by_key.get(item.get("key", ""))
            if fid is None:
                continue
            for k in self.opts.custom_field_value_keys:
                if k in item:
                    out[fid] = item[k]
                    break
        return out

    # --- contacts -----------------------------------------------------------------------------------

    def find_contact(
        self, loc: str, email: str | None, phone: str | None, skip: str | None = None
    ) -> tuple[dict[str, Any], str] | None:
        """The first contact matching the location's dedupe preferences, in their order, and the field."""
        wanted = {"email": email.lower() if email else None, "phone": norm_phone(phone)}
        for fld in self.opts.duplicate_match:
            if not wanted[fld]:
                continue
            for c in self.contacts.values():
                if c["locationId"] != loc or c["id"] == skip:
                    continue
                have = c.get("emailLowerCase") if fld == "email" else c.get("phone")
                if have == wanted[fld]:
                    return c, fld
        return None

    def duplicate_error(self, match: tuple[dict[str, Any], str]) -> GhlError:
        c, fld = match
        return bad_request(
            "This location does not allow duplicated contacts.",
            meta={"contactName": c.get("name", ""), "contactId": c["id"], "matchingField": fld},
        )

    def create_contact(self, loc: str, data: dict[str, Any]) -> dict[str, Any]:
        cid = self.new_id("contact")
        now = self.now()
        c: dict[str, Any] = {
            "id": cid,
            "locationId": loc,
            "type": "lead",
            "tags": [],
            "customFields": [],
            "dnd": False,
            "dateAdded": now,
            "dateUpdated": now,
        }
        self.added_ms[cid] = self.now_ms()
        self.apply_contact(c, data)
        self.contacts[cid] = c
        return c

    def apply_contact(self, c: dict[str, Any], data: dict[str, Any]) -> None:
        """Write the DTO fields of `data` onto contact `c` (None clears a nullable field)."""
        values = self.custom_values(c["locationId"], "contact", data.get("customFields"))
        for k, v in data.items():
            if k in ("customFields", "locationId", "createNewIfDuplicateAllowed"):
                continue
            if k == "phone":
                v = norm_phone(v)  # noqa: PLW2901 - stored normalised
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        if "email" in data:
            if c.get("email"):
                c["emailLowerCase"] = c["email"].lower()
            else:
                c.pop("emailLowerCase", None)
        if values:
            merged = {f["id"]: f["value"] for f in c["customFields"]} | values
            c["customFields"] = [{"id": k, "value": v} for k, v in merged.items()]
        first, last = c.get("firstName") or "", c.get("lastName") or ""
        full = f"{first} {last}".strip() or data.get("name") or c.get("name") or ""
        if full:
            c["name"] = full
            c["fullNameLowerCase"] = full.lower()
        for k in ("firstName", "lastName"):
            if c.get(k):
                c[f"{k}LowerCase"] = c[k].lower()
        c["dateUpdated"] = self.now()

    def contact(self, loc: str, cid: str) -> dict[str, Any]:
        c = self.contacts.get(cid)
        if c is None:
            raise bad_request(f"Contact with id {cid} not found")
        if c["locationId"] != loc:
            raise forbidden_location()
        return c

    # --- opportunities ------------------------------------------------------------------------------

    def opportunity(self, loc: str, oid: str) -> dict[str, Any]:
        o = self.opportunities.get(oid)
        if o is None:
            raise bad_request(f"Opportunity with id {oid} not found")
        if o["locationId"] != loc:
            raise forbidden_location()
        return o

    def create_opportunity(self, loc: str, body: dict[str, Any], stage: str) -> dict[str, Any]:
        """A new opportunity from a valid CreateDto ``body`` (its custom fields are the caller's)."""
        now = self.now()
        o: dict[str, Any] = {
            "id": self.new_id("opportunity"),
            "name": body["name"],
            "monetaryValue": body.get("monetaryValue", 0),
            "pipelineId": body["pipelineId"],
            "pipelineStageId": stage,
            "status": body["status"],
            "source": "api",
            "lastStatusChangeAt": now,
            "lastStageChangeAt": now,
            "lastActionDate": now,
            "createdAt": now,
            "updatedAt": now,
            "contactId": body["contactId"],
            "locationId": loc,
            "customFields": [],
            "followers": [],
        }
        if body.get("assignedTo"):
            o["assignedTo"] = body["assignedTo"]
        self.opportunities[o["id"]] = o
        return o

    def serve_opportunity(self, o: dict[str, Any]) -> dict[str, Any]:
        """The opportunity as the API shows it: with the current contact summary embedded."""
        c = self.contacts.get(o["contactId"], {})
        summary = {k: c[k] for k in ("id", "name", "companyName", "email", "phone") if c.get(k) is not None}
        return {**o, "contact": {**summary, "tags": list(c.get("tags", []))}}

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "contacts": {k: _copy(v) for k, v in self.contacts.items()},
                "opportunities": {k: self.serve_opportunity(v) for k, v in self.opportunities.items()},
                "pipelines": [p for ps in self.pipelines.values() for p in ps],
                "custom_fields": {loc: list(fs) for loc, fs in self.custom_fields.items()},
                "webhooks": {k: list(v) for k, v in self.webhooks.items()},
            }


def _copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}
