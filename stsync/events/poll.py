"""`stsync events poll`: find time-based events, match pending events to workflows, run the steps that are due.

A PostgreSQL work queue, as procrastinate's: rows are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease
(``claimed_until``), so two polls never take the same row and a poll that dies stalls nothing: its claims
run out and the next poll takes them. Every step attempt is a row, written before its action runs.

For each (event, workflow whose trigger it is) one verdict is stored: enrolled, filtered (the clause that
was false and the values it read), deduped (the instance exists), disabled, or error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from stsync.events.actions import Actions
from stsync.events.conditions import context_for
from stsync.events.definitions import Workflow
from stsync.events.model import Clock, Definitions, PollResult, PollSettings, system_clock
from stsync.events.steps import StepRunner
from stsync.events.store import EventStore

__all__ = ["Clock", "PollResult", "PollSettings", "poll", "system_clock"]

log = logging.getLogger("stsync.events")


async def poll(store: EventStore, settings: PollSettings, actions: Actions, clock: Clock = system_clock) -> PollResult:
    """One poll: detect, match, run. Raises only for run-level problems (database, stored definitions)."""
    result = PollResult(dry_run=settings.dry_run)
    definitions = Definitions(store)
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
        await _match(store, events, by_trigger, definitions.broken, result, clock())
        result.events += len(events)
    await StepRunner(store, settings, actions, definitions, clock).run(result)
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
    broken: list[tuple[str, str, str]],
    result: PollResult,
    now: datetime,
) -> None:
    """Verdicts for a batch of claimed events, their instances and first steps, and the events marked
    processed: one transaction, so a poll killed here leaves the batch to the next poll, whole."""
    verdicts, candidates = _judge_all(events, await store.records_of(events), by_trigger, now)
    verdicts += [
        {"event_id": e["id"], "workflow_name": name, "verdict": "error", "detail": {"message": message}}
        for e in events
        for name, trigger, message in broken
        if trigger == e["event_type"]
    ]
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
    entities = await store.records_of(events)
    for event in events:
        entity = entities.get((event["entity"], int(event["st_id"])))
        for wf in by_trigger.get(event["event_type"], []):
            verdict, _ = _judge(wf, event, entity, now)
            result.verdicts["would enroll" if verdict == "enroll" else verdict] += 1
    result.events = len(events)
    due = await store.one("status_steps", {"now": now})
    result.steps["due"] = int(due["due"]) if due else 0
