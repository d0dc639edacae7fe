"""Records written from the committed OpenAPI specs alone, for resources the sandbox has no hand-written generator
for (the pricebook): an instance of the export's response schema that is also an instance of the list's.

Values are a pure function of the random generator given, so a record is the same on every run; ``fixed`` sets
the fields the world decides (id, active, createdOn, modifiedOn). Properties the schemas require are always
there; an optional one is there half the time, and not below the second level of nesting, which is also where
arrays stop having items (the pricebook's categories nest themselves).
"""

from __future__ import annotations

import functools
import random
import uuid
from importlib import resources
from typing import Any

import orjson

from stsync.sandbox.clock import HISTORY_END, HISTORY_START, fmt

SPECS = resources.files("stsync.sandbox") / "specs" / "servicetitan"
WORDS = ("Pool", "Pump", "Filter", "Heater", "Valve", "Seal", "Motor", "Chlorinator", "Skimmer", "Light", "Timer")
DEEP = 2  # levels of nested objects that get optional properties and array items


@functools.cache
def spec(filename: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(SPECS.joinpath(filename).read_bytes())
    return doc


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **schema["allOf"][0]}
        elif "oneOf" in schema or "anyOf" in schema:
            options: list[dict[str, Any]] = schema.get("oneOf") or schema.get("anyOf") or [{}]
            schema = {**{k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}, **options[0]}
        else:
            return schema


def _value(doc: dict[str, Any], schema: dict[str, Any], rng: random.Random, depth: int) -> Any:  # noqa: PLR0911 - one return per type
    schema = _resolve(doc, schema)
    kind = schema.get("type")
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "object" or "properties" in schema:
        return _object(doc, [schema], rng, depth + 1)
    if kind == "array":
        count = rng.randrange(3) if depth < DEEP else 0
        return [_value(doc, schema.get("items", {}), rng, depth + 1) for _ in range(count)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return fmt(rng.randrange(HISTORY_START, HISTORY_END))
        if schema.get("format") == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128)))
        return f"{rng.choice(WORDS)} {rng.randrange(1000)}"
    if kind == "integer":
        return rng.randrange(1, 1_000_000) if schema.get("format") == "int64" else rng.randrange(100)
    if kind == "number":
        return round(rng.uniform(0, 500), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    return None  # no type: anything validates, and null is the least surprising


def _object(doc: dict[str, Any], schemas: list[dict[str, Any]], rng: random.Random, depth: int) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {}
    required: set[str] = set()
    closed: list[set[str]] = []  # the properties of each schema that allows no others
    for given in schemas:
        schema = _resolve(doc, given)
        required |= set(schema.get("required", ()))
        for name, sub in schema.get("properties", {}).items():
            properties.setdefault(name, sub)
        if schema.get("additionalProperties") is False:
            closed.append(set(schema.get("properties", {})))
    out: dict[str, Any] = {}
    for name, sub in properties.items():
        allowed = all(name in names for names in closed)
        if name in required or (allowed and depth <= DEEP and rng.random() < 0.5):
            out[name] = _value(doc, sub, rng, depth)
    return out


def record(filename: str, schemas: tuple[str, ...], rng: random.Random, fixed: dict[str, Any]) -> dict[str, Any]:
    """A record valid against each of ``schemas`` (names in the spec's components), with ``fixed``'s fields."""
    doc = spec(filename)
    rec = _object(doc, [{"$ref": f"#/components/schemas/{name}"} for name in schemas], rng, 1)
    rec.update(fixed)
    return rec
