"""Workflow conditions: CEL expressions (the ``common-expression-language`` package) over an event and its
entity, checked against the entity's declared fields before anything is loaded.

An expression sees ``entity`` (the mirror's typed columns of the record, as they are when it is evaluated),
``event`` (``type``, ``id``, ``occurred_at``, and ``old`` / ``new``: the watched fields before and after the
change) and ``now``. CEL has no eval and no access to anything else; a condition either holds or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cel

from stsync.sync.streams import ColType, Stream

# Fields every mirrored record has next to its typed columns.
STANDARD_FIELDS: dict[str, ColType] = {
    "id": ColType.BIGINT,
    "active": ColType.BOOLEAN,
    "created_on": ColType.TIMESTAMPTZ,
    "modified_on": ColType.TIMESTAMPTZ,
}
EVENT_FIELDS = ("type", "id", "occurred_at", "old", "new")

_SAMPLE: dict[ColType, Any] = {
    ColType.BIGINT: 0,
    ColType.INTEGER: 0,
    ColType.TEXT: "",
    ColType.NUMERIC: 0.0,
    ColType.TIMESTAMPTZ: datetime(2000, 1, 1, tzinfo=UTC),
    ColType.BOOLEAN: False,
}
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_REFERENCE = re.compile(r"\b(entity|event)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


class ConditionError(ValueError):
    """An expression that does not parse, names an unknown field, or has a type error: ``field`` says where."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def fields_of(stream: Stream) -> dict[str, ColType]:
    """The fields ``entity`` has for records of ``stream``."""
    return {**STANDARD_FIELDS, **{c.name: c.type for c in stream.columns}}


def references(source: str) -> list[str]:
    """The ``entity.x`` / ``event.y.z`` paths an expression names (outside its string literals), in order."""
    seen: list[str] = []
    for match in _REFERENCE.finditer(_STRINGS.sub("''", source)):
        path = match.group(1) + match.group(2)
        if path not in seen:
            seen.append(path)
    return seen


@dataclass(frozen=True)
class Condition:
    """One compiled expression and the fields it reads (for `events explain`)."""

    source: str
    program: Any
    reads: tuple[str, ...]

    def evaluate(self, context: dict[str, Any]) -> Any:
        return self.program.execute(context)

    def seen(self, context: dict[str, Any]) -> dict[str, Any]:
        """The values the expression read from ``context``, by path."""
        out: dict[str, Any] = {}
        for path in self.reads:
            value: Any = context
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            out[path] = value
        return out


def compile_condition(source: str, stream: Stream) -> Condition:
    """Compile ``source`` and check it against ``stream``'s fields: every field it names exists, and it
    evaluates to a bool on a record of the declared types. Raises ConditionError."""
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise ConditionError(f"does not parse: {str(exc).splitlines()[0]}") from None
    unknown = set(program.variables()) - {"entity", "event", "now"}
    if unknown:
        raise ConditionError(f"unknown name '{sorted(unknown)[0]}' (use entity, event or now)")
    fields = fields_of(stream)
    reads = references(source)
    for path in reads:
        parts = path.split(".")
        if parts[0] == "entity" and parts[1] not in fields:
            raise ConditionError(f"'{stream.name}' has no field '{parts[1]}'", path)
        if parts[0] == "event":
            if parts[1] not in EVENT_FIELDS:
                raise ConditionError(f"an event has no field '{parts[1]}' ({', '.join(EVENT_FIELDS)})", path)
            if parts[1] in ("old", "new") and len(parts) > 2 and parts[2] not in stream.watch:
                raise ConditionError(
                    f"event.{parts[1]} of '{stream.name}' has no field '{parts[2]}' ({', '.join(stream.watch)})", path
                )
    condition = Condition(source, program, tuple(reads))
    try:
        result = condition.evaluate(sample_context(stream))
    except Exception as exc:  # CEL raises TypeError, KeyError…, and Python's own (ZeroDivisionError) pass through
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        kinds = {path: _type_of(path, stream) for path in reads}
        types = ", ".join(f"{path} is {_KIND[kind]}" for path, kind in kinds.items() if kind is not None)
        raise ConditionError(f"type error: {reason}" + (f" ({types})" if types else "")) from None
    if not isinstance(result, bool):
        raise ConditionError(f"is not a condition: it gives a {type(result).__name__}, not true or false")
    return condition


_KIND = {
    ColType.BIGINT: "an int",
    ColType.INTEGER: "an int",
    ColType.TEXT: "a string",
    ColType.NUMERIC: "a double",
    ColType.TIMESTAMPTZ: "a timestamp",
    ColType.BOOLEAN: "a bool",
}


def _type_of(path: str, stream: Stream) -> ColType | None:
    parts = path.split(".")
    if parts[0] == "entity":
        return fields_of(stream).get(parts[1])
    if parts[0] == "event" and parts[1] in ("old", "new") and len(parts) > 2:
        return fields_of(stream).get(parts[2])
    return None


def sample_context(stream: Stream) -> dict[str, Any]:
    """A context with a value of every declared field's type (what ``compile_condition`` checks against)."""
    entity = {name: _SAMPLE[kind] for name, kind in fields_of(stream).items()}
    watched = {name: entity[name] for name in stream.watch}
    now = datetime(2000, 1, 1, tzinfo=UTC)
    event = {"type": "", "id": 0, "occurred_at": now, "old": watched, "new": dict(watched)}
    return {"entity": entity, "event": event, "now": now}


def cel_value(value: Any) -> Any:
    """A database value as CEL takes it: numeric as double, timestamps with a zone; nested values as well."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: cel_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cel_value(v) for v in value]
    return value


def parse_stamp(value: Any) -> Any:
    """A watched timestamp comes out of jsonb as text: give it back as a datetime for comparisons."""
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def context_for(wf_name: str, event: dict[str, Any], entity: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """What a condition, a stop condition or a template sees."""

    def values(d: dict[str, Any] | None) -> dict[str, Any]:
        return {k: parse_stamp(cel_value(v)) for k, v in (d or {}).items()}

    return {
        "workflow": wf_name,
        "entity": cel_value(entity or {}),
        "event": {
            "type": event["event_type"],
            "id": event["id"],
            "entity": event["entity"],
            "occurred_at": event["occurred_at"],
            "old": values(event.get("old_values")),
            "new": values(event.get("new_values")),
        },
        "now": now,
    }
