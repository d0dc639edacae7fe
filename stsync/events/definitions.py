"""Workflow definitions: the operator's YAML, checked in full before any of it is loaded.

A file holds ``workflows:``, a list of definitions::

    - name: big-estimate-follow-up
      trigger: estimate_created
      conditions: ["entity.status == 'Open'", "entity.subtotal >= 1000.0"]
      stop_when: "entity.status == 'Sold'"
      steps:
        - action: ghl.move_opportunity
          stage: proposal_sent
        - wait: 2d
          action: ghl.webhook

Every problem is one line naming the file, the workflow and the key (``WorkflowError``, exit 78). A
definition's version hash is the sha256 of its checked form, so an instance can say what it started under.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stsync.errors import ConfigError
from stsync.events.conditions import Condition, ConditionError, compile_condition
from stsync.sync.streams import EVENT_STREAMS, Stream

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


class WorkflowError(ConfigError):
    """A workflows file that cannot be loaded; nothing of it is."""


def parse_duration(text: str) -> timedelta:
    """``2d``, ``36h``, ``1w2d``, ``90m``, ``30s`` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration (like 30m, 36h, 2d or 1w)")
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    wait: str | None = None  # before this step, counted from the end of the one before (or the trigger)

    @field_validator("wait")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class LogStep(_Step):
    action: Literal["log"]
    message: str


class HttpPostStep(_Step):
    """POST JSON to a URL the operator keeps out of the file: it may carry a token (a Slack webhook does)."""

    action: Literal["http.post"]
    url_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")  # the environment variable holding the URL
    body: Any = None  # a template: strings may hold {{ entity.x }} / {{ event.y }}
    dedupes: bool = False  # the receiver dedupes by the Idempotency-Key header: a lost answer may be retried
    messages_customer: bool = False  # honour the customer's opt-outs


class GhlWebhookStep(_Step):
    """POST to the inbound webhook-trigger URL of the entity's business unit (``stsync bu``)."""

    action: Literal["ghl.webhook"]
    body: Any = None
    dedupes: bool = False
    messages_customer: bool = True  # a GHL workflow behind the trigger usually messages the customer


class EmailStep(_Step):
    action: Literal["email"]
    to: tuple[str, ...] = Field(min_length=1)
    subject: str
    body: str
    messages_customer: bool = False


class GhlTagStep(_Step):
    action: Literal["ghl.add_tag", "ghl.remove_tag"]
    tag: str = Field(min_length=1)


class GhlMoveStep(_Step):
    action: Literal["ghl.move_opportunity"]
    stage: str  # one of stsync's stage names, mapped as the push maps them
    pipeline: str | None = None  # default: the business unit's pipeline

    @field_validator("stage")
    @classmethod
    def _stsync_stage(cls, value: str) -> str:
        from stsync.ghl.stages import DEFAULTS, stsync_stage

        stage = stsync_stage(value)
        if stage is None:
            known = ", ".join(dict.fromkeys(s for stages in DEFAULTS.values() for s in stages))
            raise ValueError(f"'{value}' is not one of stsync's stages ({known})")
        return stage


class GhlUpsertStep(_Step):
    action: Literal["ghl.upsert_contact"]


ACTIONS: dict[str, type[_Step]] = {
    "log": LogStep,
    "http.post": HttpPostStep,
    "ghl.webhook": GhlWebhookStep,
    "email": EmailStep,
    "ghl.add_tag": GhlTagStep,
    "ghl.remove_tag": GhlTagStep,
    "ghl.move_opportunity": GhlMoveStep,
    "ghl.upsert_contact": GhlUpsertStep,
}
# Actions that set a state: doing one twice is doing it once, so a lost answer is simply retried.
SET_STATE = frozenset({"log", "ghl.add_tag", "ghl.remove_tag", "ghl.move_opportunity", "ghl.upsert_contact"})


class _Workflow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")
    trigger: str
    description: str | None = None
    enabled: bool = True
    conditions: tuple[str, ...] = ()
    stop_when: str | None = None  # checked again when a delayed step comes due: true cancels the rest
    steps: tuple[dict[str, Any], ...] = Field(min_length=1)


@dataclass(frozen=True)
class Workflow:
    """A checked definition: its steps typed, its expressions compiled."""

    name: str
    trigger: str
    stream: Stream
    enabled: bool
    conditions: tuple[Condition, ...]
    stop_when: Condition | None
    steps: tuple[_Step, ...]
    definition: dict[str, Any]  # the checked form, as stored
    version_hash: str

    def delay(self, step_no: int) -> timedelta:
        wait = self.steps[step_no].wait
        return parse_duration(wait) if wait else timedelta(0)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False, include_input=False)[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return key, "unknown field"
    if err["type"] == "missing":
        return key, "required"
    return key, str(err["msg"]).removeprefix("Value error, ")


def _check_templates(value: Any, stream: Stream, key: str) -> None:
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            path = match.group(1)
            if not path.startswith(("entity.", "event.")):
                raise ConditionError(f"'{{{{ {path} }}}}': templates read entity.… or event.…", key)
            # The same check as a condition's: a field that exists, and a path of names.
            try:
                compile_condition(f"{path} == {path}", stream)
            except ConditionError as exc:
                raise ConditionError(str(exc), f"{key} ({path})") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(v, stream, f"{key}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_templates(v, stream, f"{key}[{i}]")


def check_workflow(raw: Any, where: str) -> Workflow:
    """One definition from its YAML form, or WorkflowError naming ``where``, the workflow and the key."""
    name = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
    label = f"{where}: workflow '{name}'" if name else where

    def fail(key: str, reason: str) -> WorkflowError:
        return WorkflowError(f"{label}: {key}: {reason}")

    if not isinstance(raw, dict):
        raise WorkflowError(f"{where}: expected a mapping with name, trigger and steps")
    try:
        wf = _Workflow.model_validate(raw)
    except ValidationError as exc:
        raise fail(*_first_error(exc)) from None
    stream = EVENT_STREAMS.get(wf.trigger)
    if stream is None:
        raise fail("trigger", f"unknown event '{wf.trigger}' (known: {', '.join(sorted(EVENT_STREAMS))})")
    conditions = []
    for i, source in enumerate(wf.conditions):
        try:
            conditions.append(compile_condition(source, stream))
        except ConditionError as exc:
            raise fail(f"conditions[{i}]" + (f" ({exc.field})" if exc.field else ""), str(exc)) from None
    stop = None
    if wf.stop_when is not None:
        try:
            stop = compile_condition(wf.stop_when, stream)
        except ConditionError as exc:
            raise fail("stop_when" + (f" ({exc.field})" if exc.field else ""), str(exc)) from None
    steps = []
    for i, step in enumerate(wf.steps):
        action = step.get("action") if isinstance(step, dict) else None
        model = ACTIONS.get(action) if isinstance(action, str) else None
        if model is None:
            reason = f"unknown action '{action}' (known: {', '.join(ACTIONS)})" if action else "required"
            raise fail(f"steps[{i}].action", reason)
        try:
            typed = model.model_validate(step)
        except ValidationError as exc:
            key, reason = _first_error(exc)
            raise fail(f"steps[{i}].{key}", reason) from None
        for field in ("message", "body", "subject", "to", "tag"):
            try:
                _check_templates(getattr(typed, field, None), stream, f"steps[{i}].{field}")
            except ConditionError as exc:
                raise fail(exc.field or f"steps[{i}].{field}", str(exc)) from None
        steps.append(typed)
    definition = {
        **wf.model_dump(mode="json", exclude={"steps"}),
        "steps": [s.model_dump(mode="json", exclude_none=True) for s in steps],
    }
    digest = hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Workflow(wf.name, wf.trigger, stream, wf.enabled, tuple(conditions), stop, tuple(steps), definition, digest)


def from_definition(definition: dict[str, Any], version_hash: str) -> Workflow:
    """A stored definition, checked again (the code may have moved on since it was loaded)."""
    wf = check_workflow(definition, f"stored workflow {definition.get('name')}")
    return Workflow(**{**wf.__dict__, "version_hash": version_hash})


def example_file() -> Path:
    """``workflows.example.yaml``: in ``stsync/_examples`` of an installed wheel, else at the repository's root."""
    from importlib import resources

    packaged = Path(str(resources.files("stsync").joinpath("_examples", "workflows.example.yaml")))
    return packaged if packaged.is_file() else Path(__file__).resolve().parents[2] / "workflows.example.yaml"


def read_workflows(path: Path) -> list[Workflow]:
    """Every definition in ``path``, or WorkflowError for the first problem (nothing is loaded then)."""
    from stsync.config import read_yaml

    doc = read_yaml(path, WorkflowError, "workflows file")
    if not isinstance(doc, dict) or set(doc) - {"workflows"} or not isinstance(doc.get("workflows"), list):
        raise WorkflowError(f"{path}: expected one key, 'workflows', holding a list of workflows")
    out: list[Workflow] = []
    for i, raw in enumerate(doc["workflows"]):
        wf = check_workflow(raw, f"{path}: workflows[{i}]" if not isinstance(raw, dict) else str(path))
        if any(w.name == wf.name for w in out):
            raise WorkflowError(f"{path}: workflow '{wf.name}': name: defined twice")
        out.append(wf)
    return out


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill ``{{ path }}`` placeholders from ``context``. A string that is one placeholder becomes the value
    itself (a number stays a number); elsewhere values are inserted as text. Nothing is evaluated."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return _jsonable(_lookup(context, whole.group(1)))
        return _PLACEHOLDER.sub(lambda m: _text(_lookup(context, m.group(1))), template)
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [render(v, context) for v in template]
    return template


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _jsonable(value: Any) -> Any:
    from datetime import datetime

    return value.isoformat() if isinstance(value, datetime) else value


def _text(value: Any) -> str:
    value = _jsonable(value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
