"""`stsync events poll`: find time-based events, match pending events to workflows, run the steps that are due.

A PostgreSQL work queue, as procrastinate's: rows are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease
(``claimed_until``), so two polls never take the same row and a poll that dies stalls nothing: its claims
run out and the next poll takes them. Every step attempt is a row, written before its action runs.

For each (event, workflow whose trigger it is) one verdict is stored: enrolled, filtered (the clause that
was false and the values it read), deduped (the instance exists), disabled, or error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stsync.events.actions import ActionFailed, Actions
from stsync.events.conditions import cel_value, parse_stamp
from stsync.events.definitions import SET_STATE, Workflow, WorkflowError, from_definition
from stsync.events.store import EventStore, jsonb

log = logging.getLogger("stsync.events")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PollSettings:
    batch: int = 500
    lease_seconds: int = 300
    max_attempts: int = 5
    retry_base_seconds: float = 60
    overdue_grace_days: int = 0
    estimate_open_days: int = 7
    limit: int | None = None  # at most this many events, and this many steps, in one poll
    dry_run: bool = False


@dataclass
class PollResult:
    detected: int = 0  # time-based events found by this poll
    events: int = 0  # events matched
    verdicts: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)  # by outcome: ok, retry, dead, cancelled, opted_out, …
    dry_run: bool = False
    workflows: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.steps["dead"] or self.steps["retry"] or self.verdicts["error"])


class _Definitions:
    """Workflow definitions by (name, hash), read and checked once per poll."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._by_hash: dict[tuple[str, str], Workflow] = {}

    async def current(self) -> list[Workflow]:
        out = []
        for row in await self.store.rows("current_workflows"):
            out.append(self._checked(row))
        return out

    async def get(self, name: str, version_hash: str) -> Workflow:
        key = (name, version_hash)
        if key not in self._by_hash:
            row = await self.store.one("definition", {"name": name, "hash": version_hash})
            if row is None:
                raise WorkflowError(f"workflow '{name}' version {version_hash[:12]} is not stored")
            self._checked(row)
        return self._by_hash[key]

    def _checked(self, row: dict[str, Any]) -> Workflow:
        key = (row["name"], row["version_hash"])
        if key not in self._by_hash:
            self._by_hash[key] = from_definition(row["definition"], row["version_hash"])
        return self._by_hash[key]


def context_for(wf_name: str, event: dict[str, Any], entity: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """What a condition, a stop condition or a template sees."""
    values = lambda d: {k: parse_stamp(cel_value(v)) for k, v in (d or {}).items()}  # noqa: E731
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


async def poll(store: EventStore, settings: PollSettings, actions: Actions, clock: Clock = system_clock) -> PollResult:
    """One poll: detect, match, run. Raises only for run-level problems (database, stored definitions)."""
    result = PollResult(dry_run=settings.dry_run)
    definitions = _Definitions(store)
    workflows = await definitions.current()
    result.workflows = len(workflows)
    if settings.dry_run:
        await _dry_run(store, workflows, settings, result, clock())
        return result
    result.detected = await _detect(store, settings, clock())
    by_trigger: dict[str, list[Workflow]] = {}
    for wf in workflows:
        by_trigger.setdefault(wf.trigger, []).append(wf)
    limit = settings.limit
    while limit is None or result.events < limit:
        size = settings.batch if limit is None else min(settings.batch, limit - result.events)
        now = clock()
        async with store.transaction("claiming events"):
            events = await store.rows("claim_events", {"now": now, "limit": size, "lease": settings.lease_seconds})
        if not events:
            break
        await _match(store, events, by_trigger, result, clock())
        result.events += len(events)
    await _run_steps(store, settings, actions, definitions, result, clock)
    return result


async def _detect(store: EventStore, settings: PollSettings, now: datetime) -> int:
    """Time-based events: the dates that passed since the last poll (the first poll starts the clock)."""
    grace = f"{settings.overdue_grace_days} days"
    age = f"{settings.estimate_open_days} days"
    found = 0
    async with store.transaction("finding time-based events"):
        for name in ("invoice_overdue", "estimate_open"):
            await store.rows("clock_start", {"name": name, "now": now})
        found += await store.count("detect_overdue", {"now": now, "grace": grace})
        found += await store.count(
            "detect_estimate_open", {"now": now, "age": age, "days": str(settings.estimate_open_days)}
        )
        for name in ("invoice_overdue", "estimate_open"):
            await store.rows("clock_advance", {"name": name, "now": now})
    return found


def _judge(wf: Workflow, event: dict[str, Any], entity: dict[str, Any] | None, now: datetime) -> tuple[str, Any]:
    """The verdict of one workflow on one event, before enrolment: (verdict, detail)."""
    if not wf.enabled:
        return "disabled", None
    if entity is None:
        return "error", {"message": f"{event['entity']} {event['st_id']} is not in the mirror"}
    context = context_for(wf.name, event, entity, now)
    for i, condition in enumerate(wf.conditions):
        try:
            held = condition.evaluate(context)
        except Exception as exc:  # CEL raises TypeError, RuntimeError, KeyError…: the record's values are at fault
            seen = condition.seen(context)
            if any(v is None for v in seen.values()):  # a field with no value: the clause does not hold
                return "filtered", {"clause": condition.source, "index": i, "values": seen, "null": True}
            return "error", {"clause": condition.source, "index": i, "message": str(exc).splitlines()[0],
                             "values": seen}  # fmt: skip
        if held is not True:
            return "filtered", {"clause": condition.source, "index": i, "values": condition.seen(context)}
    return "enroll", None


async def _entities(store: EventStore, events: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    by_entity: dict[str, set[int]] = {}
    for e in events:
        by_entity.setdefault(e["entity"], set()).add(int(e["st_id"]))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for entity, ids in by_entity.items():
        for st_id, row in (await store.entities(entity, ids)).items():
            out[(entity, st_id)] = row
    return out


def _judge_all(
    events: list[dict[str, Any]],
    entities: dict[tuple[str, int], dict[str, Any]],
    by_trigger: dict[str, list[Workflow]],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[tuple[Workflow, dict[str, Any]]]]:
    """The verdicts decided without the database, and the (workflow, event) pairs to enrol."""
    verdicts: list[dict[str, Any]] = []
    candidates: list[tuple[Workflow, dict[str, Any]]] = []
    for event in events:
        entity = entities.get((event["entity"], int(event["st_id"])))
        for wf in by_trigger.get(event["event_type"], []):
            verdict, detail = _judge(wf, event, entity, now)
            if verdict == "enroll":
                candidates.append((wf, event))
            else:
                verdicts.append(
                    {"event_id": event["id"], "workflow_name": wf.name, "verdict": verdict, "detail": detail}
                )
    return verdicts, candidates


async def _enroll(
    store: EventStore, candidates: list[tuple[Workflow, dict[str, Any]]], now: datetime
) -> list[dict[str, Any]]:
    """Instances for the candidates (one per workflow, entity and trigger), their first steps, and the verdicts:
    enrolled where the instance is new, deduped where it was there."""
    rows = [
        {"workflow_name": wf.name, "version_hash": wf.version_hash, "entity": e["entity"],
         "st_id": e["st_id"], "trigger_event": e["event_type"], "event_id": e["id"]}
        for wf, e in candidates
    ]  # fmt: skip
    enrolled = {(r["workflow_name"], r["event_id"]): r["id"] for r in await store.rows("enroll", {"rows": rows})}
    others = [r for r in rows if (r["workflow_name"], r["event_id"]) not in enrolled]
    existing = {
        (r["workflow_name"], r["entity"], r["st_id"], r["trigger_event"]): r["id"]
        for r in (await store.rows("instances_of", {"rows": others}) if others else [])
    }
    verdicts, steps = [], []
    for wf, e in candidates:
        instance = enrolled.get((wf.name, e["id"]))
        if instance is not None:
            verdicts.append(
                {"event_id": e["id"], "workflow_name": wf.name, "verdict": "enrolled", "instance_id": instance}
            )
            steps.append({"instance_id": instance, "step_no": 0, "action": wf.steps[0].action,
                          "due_at": (now + wf.delay(0)).isoformat()})  # fmt: skip
        else:
            found = existing.get((wf.name, e["entity"], e["st_id"], e["event_type"]))
            verdicts.append({"event_id": e["id"], "workflow_name": wf.name, "verdict": "deduped",
                             "instance_id": found, "detail": {"instance_id": found}})  # fmt: skip
    if steps:
        await store.rows("add_steps", {"rows": steps})
    return verdicts


async def _match(
    store: EventStore,
    events: list[dict[str, Any]],
    by_trigger: dict[str, list[Workflow]],
    result: PollResult,
    now: datetime,
) -> None:
    """Verdicts for a batch of claimed events, their instances and first steps, and the events marked
    processed: one transaction, so a poll killed here leaves the batch to the next poll, whole."""
    verdicts, candidates = _judge_all(events, await _entities(store, events), by_trigger, now)
    async with store.transaction("recording verdicts"):
        if candidates:
            verdicts += await _enroll(store, candidates, now)
        if verdicts:
            await store.rows("record_verdicts", {"rows": verdicts, "now": now})
        await store.rows("events_processed", {"ids": [e["id"] for e in events], "now": now})
    for v in verdicts:
        result.verdicts[v["verdict"]] += 1


async def _dry_run(
    store: EventStore, workflows: list[Workflow], settings: PollSettings, result: PollResult, now: datetime
) -> None:
    """What a poll would decide for the pending events, without claiming or writing anything."""
    by_trigger: dict[str, list[Workflow]] = {}
    for wf in workflows:
        by_trigger.setdefault(wf.trigger, []).append(wf)
    events = await store.rows("pending_events", {"limit": settings.limit or settings.batch})
    entities = await _entities(store, events)
    for event in events:
        entity = entities.get((event["entity"], int(event["st_id"])))
        for wf in by_trigger.get(event["event_type"], []):
            verdict, _ = _judge(wf, event, entity, now)
            result.verdicts["would enroll" if verdict == "enroll" else verdict] += 1
    result.events = len(events)
    due = await store.one("status_steps", {"now": now})
    result.steps["due"] = int(due["due"]) if due else 0


async def _run_steps(
    store: EventStore,
    settings: PollSettings,
    actions: Actions,
    definitions: _Definitions,
    result: PollResult,
    clock: Clock,
) -> None:
    done = 0
    while settings.limit is None or done < settings.limit:
        size = settings.batch if settings.limit is None else min(settings.batch, settings.limit - done)
        now = clock()
        params = {"now": now, "limit": size, "lease": settings.lease_seconds}
        async with store.transaction("claiming steps"):
            claimed = await store.rows("reclaim_steps", params)
            if len(claimed) < size:
                claimed += await store.rows("claim_steps", {**params, "limit": size - len(claimed)})
            if claimed:
                await store.rows(
                    "start_attempts",
                    {"rows": [{"instance_id": s["instance_id"], "step_no": s["step_no"], "attempt": s["attempts"]}
                              for s in claimed], "now": now},
                )  # fmt: skip
        if not claimed:
            return
        instances = {
            r["id"]: r for r in await store.rows("step_instances", {"ids": [s["instance_id"] for s in claimed]})
        }
        for step in claimed:
            outcome = await _run_step(
                store, settings, actions, definitions, step, instances[step["instance_id"]], clock
            )
            result.steps[outcome] += 1
        done += len(claimed)


@dataclass(frozen=True)
class _End:
    """How one attempt of a step ended, as recorded."""

    outcome: str  # the attempt's result: ok, retry, dead, cancelled, opted_out
    state: str  # the step's state afterwards: done, waiting (a retry), dead, cancelled, skipped
    error: str | None = None
    detail: Any = None
    due_at: datetime | None = None  # a retry's
    instance_state: str | None = None  # failed or cancelled: the instance ends with the step


async def _run_step(
    store: EventStore,
    settings: PollSettings,
    actions: Actions,
    definitions: _Definitions,
    step: dict[str, Any],
    instance: dict[str, Any],
    clock: Clock,
) -> str:
    """Run one claimed step and record how it ended; the outcome's name."""
    wf = await definitions.get(instance["workflow_name"], instance["version_hash"])
    entity = (await store.entities(instance["entity"], [int(instance["st_id"])])).get(int(instance["st_id"]))
    context = context_for(wf.name, {**instance, "id": instance["event_id"]}, entity, clock())
    end = await _attempt(store, settings, actions, wf, step, instance, entity, context, clock)
    return await _record(store, wf, instance, step, end, clock)


async def _attempt(
    store: EventStore,
    settings: PollSettings,
    actions: Actions,
    wf: Workflow,
    step: dict[str, Any],
    instance: dict[str, Any],
    entity: dict[str, Any] | None,
    context: dict[str, Any],
    clock: Clock,
) -> _End:
    step_no, attempt = int(step["step_no"]), int(step["attempts"]) - int(step["retried_after"])
    spec = wf.steps[step_no]
    if step["lost"] and spec.action not in SET_STATE and not getattr(spec, "dedupes", False):
        return _End("dead", "dead", "the poll running the last attempt stopped before recording it: the action may "
                    "have happened, and its receiver does not dedupe (set dedupes: true if it does), so it is not "
                    "repeated", instance_state="failed")  # fmt: skip
    if entity is None:
        return _End("dead", "dead", f"{instance['entity']} {instance['st_id']} is not in the mirror",
                    instance_state="failed")  # fmt: skip
    stopped = _stopped(wf, context, settings, attempt, clock)
    if stopped is not None:
        return stopped
    if getattr(spec, "messages_customer", False):
        opted = await _opted_out(store, entity, actions.location)
        if opted:
            return _End("opted_out", "skipped", detail={"opted_out": opted})
    try:
        detail = await actions.run(spec, context, f"stsync-{instance['id']}-{step_no}")
    except ActionFailed as exc:
        return _failed(settings, attempt, exc.message, exc.retryable, clock)
    return _End("ok", "done", detail=detail)


def _stopped(wf: Workflow, context: dict[str, Any], settings: PollSettings, attempt: int, clock: Clock) -> _End | None:
    """The instance's stop condition, checked as each step comes due: true cancels the step and the rest."""
    if wf.stop_when is None:
        return None
    try:
        stop = wf.stop_when.evaluate(context) is True
    except Exception as exc:  # CEL's errors: the record's values do not fit the expression
        return _failed(settings, attempt, f"stop_when: {str(exc).splitlines()[0]}", False, clock)
    if not stop:
        return None
    detail = {"stop_when": wf.stop_when.source, "values": wf.stop_when.seen(context)}
    return _End("cancelled", "cancelled", detail=detail, instance_state="cancelled")


async def _record(
    store: EventStore, wf: Workflow, instance: dict[str, Any], step: dict[str, Any], end: _End, clock: Clock
) -> str:
    """Record an attempt's end, and what follows: the next step (due after its wait), or the instance's end."""
    step_no, attempt = int(step["step_no"]), int(step["attempts"])
    at = clock()
    ids = {"instance_id": instance["id"], "step_no": step_no, "attempt": attempt}
    async with store.transaction("recording a step"):
        detail = jsonb(end.detail) if end.detail is not None else None
        await store.rows(
            "finish_attempt", {**ids, "now": at, "result": end.outcome, "error": end.error, "detail": detail}
        )
        held = await store.rows(
            "finish_step", {**ids, "now": at, "state": end.state, "due_at": end.due_at, "error": end.error}
        )
        if not held:  # our lease ran out and another poll has the step now: its record is the one that counts
            return "lost_lease"
        finished = end.state in ("done", "skipped")
        if finished and step_no + 1 < len(wf.steps):
            following = {"instance_id": instance["id"], "step_no": step_no + 1, "action": wf.steps[step_no + 1].action,
                         "due_at": (at + wf.delay(step_no + 1)).isoformat()}  # fmt: skip
            await store.rows("add_steps", {"rows": [following]})
        elif finished or end.instance_state is not None:
            state = "completed" if finished else end.instance_state
            await store.rows("finish_instance", {"state": state, "now": at, "instance_id": instance["id"]})
    if end.outcome == "dead":
        log.warning("workflow %s, instance %s, step %d: dead: %s", wf.name, instance["id"], step_no, end.error)
    return end.outcome


def _failed(settings: PollSettings, attempt: int, error: str, retryable: bool, clock: Clock) -> _End:
    """A failed attempt: waiting again after a backoff that doubles, or dead (not retryable, or the last)."""
    if not retryable or attempt >= settings.max_attempts:
        return _End("dead", "dead", error, instance_state="failed")
    wait = timedelta(seconds=min(settings.retry_base_seconds * 2 ** (attempt - 1), 86_400))
    log.info("workflow step failed (attempt %d of %d), retrying in %s: %s", attempt, settings.max_attempts, wait, error)
    return _End("retry", "waiting", error, due_at=clock() + wait)


async def _opted_out(store: EventStore, entity: dict[str, Any], location: str | None) -> list[str]:
    """Why the record's customer must not be messaged: ServiceTitan's flags, and GHL's do-not-disturb."""
    customer = entity.get("customer_id")
    if customer is None:
        return []
    row = await store.one("opt_outs", {"customer_id": customer, "location_id": location})
    if row is None:
        return []
    return [name for name in ("do_not_mail", "do_not_service", "ghl_dnd") if row.get(name)]
