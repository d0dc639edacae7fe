"""The official GHL OpenAPI files (copied under ``specs/``) and a small request-body validator.

Request bodies are checked against the spec's request schema the way the real API's NestJS
``ValidationPipe`` does (``whitelist`` + ``forbidNonWhitelisted``): every violation is collected and
answered at once as 422 ``{"statusCode": 422, "message": [...], "error": "Unprocessable Entity"}``,
including ``"property X should not exist"`` for a field outside the DTO.

The validator is hand-rolled (a JSON-Schema subset: $ref, type, nullable, enum, required, properties,
items, anyOf) because the schema libraries are dev-only dependencies and the messages must be
class-validator's, not jsonschema's.

Where the spec is known to be wrong or silent, the sandbox follows the reference instead; every such
deviation is one entry of ``REQUEST_PATCHES`` / ``RESPONSE_PATCHES`` below (the contract tests apply the
response patches before validating, so this is the one place to read them).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).parent / "specs"
SPEC_FILES = {
    "contacts": "apps/contacts.json",
    "opportunities": "apps/opportunities.json",
    "locations": "apps/locations.json",
    "custom-fields": "apps/custom-fields.json",
}
COMMON = "common/common-schemas.json"

# How a custom-field write item looks in practice: `id` or `key`, and the value under `field_value`
# (2021-07-28 spec), `fieldValue` (v3 spec, reported working on 2021-07-28) or `value` (one client).
_CUSTOM_FIELD_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "key": {"type": "string"},
        "field_value": {},
        "fieldValue": {},
        "value": {},
    },
}
_STATUS_WRITE = {"type": "string", "enum": ["open", "won", "lost", "abandoned"]}

# (spec, schema name) -> {property: replacement schema}. Why each one, in order:
#  - customFields items: the spec's anyOf types numeric values as `object` and knows only `field_value`.
#  - dateOfBirth: typed `object` but documented (and sent) as a date string.
#  - status on writes: the enum includes "all", which only means something as a search filter.
#  - SearchBodyV2DTO: empty in the spec; this is the body documented at the linked ClickUp page.
REQUEST_PATCHES: dict[tuple[str, str], dict[str, Any]] = {
    ("contacts", "UpsertContactDto"): {
        "customFields": {"type": "array", "items": _CUSTOM_FIELD_INPUT},
        "dateOfBirth": {"type": "string", "nullable": True},
    },
    ("contacts", "CreateContactDto"): {
        "customFields": {"type": "array", "items": _CUSTOM_FIELD_INPUT},
        "dateOfBirth": {"type": "string", "nullable": True},
    },
    ("contacts", "UpdateContactDto"): {
        "customFields": {"type": "array", "items": _CUSTOM_FIELD_INPUT},
        "dateOfBirth": {"type": "string", "nullable": True},
    },
    ("opportunities", "CreateDto"): {
        "customFields": {"type": "array", "items": _CUSTOM_FIELD_INPUT},
        "status": _STATUS_WRITE,
    },
    ("opportunities", "UpdateOpportunityDto"): {
        "customFields": {"type": "array", "items": _CUSTOM_FIELD_INPUT},
        "status": _STATUS_WRITE,
    },
    ("opportunities", "UpdateStatusDto"): {"status": _STATUS_WRITE},
    ("contacts", "SearchBodyV2DTO"): {
        "locationId": {"type": "string"},
        "page": {"type": "number"},
        "pageLimit": {"type": "number"},
        "searchAfter": {"type": "array"},
        "query": {"type": "string"},
        "filters": {"type": "array", "items": {"type": "object"}},
        "sort": {"type": "array", "items": {"type": "object"}},
    },
}

# Response-side deviations: what the sandbox serves where the spec's schema cannot be right.
#  - pipeline stages: the spec types them `array<array>`; the API returns objects {id, name, position, ...}.
#  - contact custom field `value`: typed string, but checkbox/multi-select values are arrays, numbers numbers.
RESPONSE_PATCHES: dict[tuple[str, str], dict[str, Any]] = {
    ("opportunities", "PipelinesResponseSchema"): {
        "stages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "position"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "position": {"type": "number"},
                    "showInFunnel": {"type": "boolean"},
                    "showInPieChart": {"type": "boolean"},
                },
            },
        }
    },
    ("contacts", "CustomFieldSchema"): {"value": {}},
}


@cache
def load(name: str) -> dict[str, Any]:
    """One spec file as parsed JSON (``contacts``, ``opportunities``, ``locations``, ``custom-fields``, ``common``)."""
    rel = COMMON if name == "common" else SPEC_FILES[name]
    return json.loads((SPEC_DIR / rel).read_text())


def schema(spec: str, name: str, patches: dict[tuple[str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A component schema with the given patches applied to its properties (a new dict)."""
    base = load(spec)["components"]["schemas"][name]
    patch = (patches or {}).get((spec, name))
    if not patch:
        return base
    return {**base, "properties": {**base.get("properties", {}), **patch}}


def request_schema(spec: str, name: str) -> dict[str, Any]:
    return schema(spec, name, REQUEST_PATCHES)


class _Validator:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.errors: list[str] = []

    def resolve(self, s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ref = s.get("$ref")
        if not ref:
            return self.spec, s
        file, _, frag = ref.partition("#")
        spec = "common" if file.endswith("common-schemas.json") else self.spec
        name = frag.rsplit("/", 1)[-1]
        return spec, schema(spec, name, REQUEST_PATCHES)

    def check(self, value: Any, s: dict[str, Any], path: str, *, top: bool = False) -> None:  # noqa: PLR0912 - one branch per keyword
        spec, s = self.resolve(s)
        if spec != self.spec:
            sub = _Validator(spec)
            sub.check(value, s, path, top=top)
            self.errors += sub.errors
            return
        if value is None:
            if not s.get("nullable") and s.get("type"):
                self.errors.append(_type_message(path, s["type"]))
            return
        if "anyOf" in s:
            trials: list[list[str]] = []
            for alt in s["anyOf"]:
                v = _Validator(self.spec)
                v.check(value, alt, path)
                if not v.errors:
                    return
                trials.append(v.errors)
            best: list[str] = min(trials, key=len)
            self.errors += best
            return
        t = s.get("type")
        if t and not _is_type(value, t):
            self.errors.append(_type_message(path, t))
            return
        if "enum" in s and value not in s["enum"]:
            self.errors.append(f"{path} must be one of the following values: {', '.join(map(str, s['enum']))}")
        if t == "array" and "items" in s:
            for i, item in enumerate(value):
                self.check(item, s["items"], f"{path}.{i}")
        if (t == "object" or "properties" in s) and isinstance(value, dict) and "properties" in s:
            props = s["properties"]
            prefix = "" if top else f"{path}."
            for k in value:
                if k not in props:
                    self.errors.append(f"property {prefix}{k} should not exist")
            for k in s.get("required", []):
                if k not in value or value[k] in (None, ""):
                    self.errors.append(f"{prefix}{k} should not be empty")
            for k, sub_s in props.items():
                if k in value and not (k in s.get("required", []) and value[k] in (None, "")):
                    self.check(value[k], sub_s, f"{prefix}{k}")


def _is_type(v: Any, t: str) -> bool:
    if t == "string":
        return isinstance(v, str)
    if t in ("number", "integer"):
        return isinstance(v, int | float) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    return True


def _type_message(path: str, t: str) -> str:
    return {
        "string": f"{path} must be a string",
        "number": f"{path} must be a number conforming to the specified constraints",
        "integer": f"{path} must be an integer number",
        "boolean": f"{path} must be a boolean value",
        "array": f"{path} must be an array",
        "object": f"nested property {path} must be either object or array",
    }.get(t, f"{path} has the wrong type")


def validate_body(spec: str, name: str, body: Any) -> list[str]:
    """class-validator style messages for `body` against the (patched) request schema; [] when valid."""
    if not isinstance(body, dict):
        return ["request body must be a JSON object"]
    v = _Validator(spec)
    v.check(body, request_schema(spec, name), "", top=True)
    return v.errors
