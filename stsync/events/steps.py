"""Running the steps that are due: claim them with a lease, open an attempt, check the stop condition and
opt-outs, run the action, and record how it ended together with what follows (the next step, or the
instance's end). One transaction per claim and per step's end."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stsync.events.actions import ActionFailed, Actions
from stsync.events.conditions import context_for
from stsync.events.definitions import SET_STATE, Workflow, WorkflowError
from stsync.events.model import Clock, Definitions, PollResult, PollSettings
from stsync.events.store import EventStore, jsonb
from stsync.masking import mask_urls

log = logging.getLogger("stsync.events")


@dataclass(frozen=True)
class _End:
    """How one attempt of a step ended, as recorded."""

    outcome: str  # the attempt's result: ok, retry, dead, cancelled, opted_out
    state: str  # the step's state afterwards: done, waiting (a retry), dead, cancelled, skipped
    error: str | None = None
    detail: Any = None
    due_at: datetime | None = None  # a retry's
    instance_state: str | None = None  # failed or cancelled: the instance ends with the step


@dataclass
class StepRunner:
    store: EventStore
    settings: PollSettings
    actions: Actions
    definitions: Definitions
    clock: Clock

    async def run(self, result: PollResult) -> None:
        """Claim due steps (and those whose poll died) in batches, and run each, until none is left or the
        limit. The claim is this poll's; each step is started (its attempt counted and opened, the lease
        renewed) only just before its action, and only while the claim is still this poll's."""
        store, settings = self.store, self.settings
        claim = uuid.uuid4().hex
        done = 0
        while settings.limit is None or done < settings.limit:
            size = settings.batch if settings.limit is None else min(settings.batch, settings.limit - done)
            params = {"now": self.clock(), "limit": size, "lease": settings.lease_seconds, "claim": claim}
            async with store.transaction("claiming steps"):
                claimed = await store.rows("reclaim_steps", params)
                if len(claimed) < size:
                    claimed += await store.rows("claim_steps", {**params, "limit": size - len(claimed)})
            if not claimed:
                return
            ids = [s["instance_id"] for s in claimed]
            instances = {r["id"]: r for r in await store.rows("step_instances", {"ids": ids})}
            records = await store.records_of(instances.values())  # read as the batch comes due, one query each
            for step in claimed:
                instance = instances[step["instance_id"]]
                record = records.get((instance["entity"], int(instance["st_id"])))
                result.steps[await self._run_step(step, instance, record, claim)] += 1
            done += len(claimed)

    async def _run_step(
        self, step: dict[str, Any], instance: dict[str, Any], entity: dict[str, Any] | None, claim: str
    ) -> str:
        """Start one claimed step, run it and record how it ended; the outcome's name."""
        started = await self.store.one(
            "start_step",
            {"instance_id": step["instance_id"], "step_no": step["step_no"], "claim": claim, "now": self.clock(),
             "lease": self.settings.lease_seconds},
        )  # fmt: skip
        if started is None:  # our lease ran out and another poll holds the step now
            return "lost_lease"
        step = {**step, "attempts": started["attempts"], "retried_after": started["retried_after"], "claim": claim}
        try:
            wf = await self.definitions.get(instance["workflow_name"], instance["version_hash"])
        except WorkflowError as exc:  # the definition it started under no longer passes this version's checks
            return await self._record(None, instance, step, _End("dead", "dead", exc.message, instance_state="failed"))
        context = context_for(wf.name, {**instance, "id": instance["event_id"]}, entity, self.clock())
        end = await self._attempt(wf, step, instance, entity, context)
        return await self._record(wf, instance, step, end)

    async def _attempt(
        self,
        wf: Workflow,
        step: dict[str, Any],
        instance: dict[str, Any],
        entity: dict[str, Any] | None,
        context: dict[str, Any],
    ) -> _End:
        step_no, attempt = int(step["step_no"]), int(step["attempts"]) - int(step["retried_after"])
        spec = wf.steps[step_no]
        blocked = self._blocked(spec, step, instance, entity, attempt) or self._stopped(wf, context, attempt)
        if blocked is not None:
            return blocked
        assert entity is not None  # _blocked says so otherwise
        if getattr(spec, "messages_customer", False):
            opted = await self._opted_out(entity)
            if opted:
                return _End("opted_out", "skipped", detail={"opted_out": opted})
        try:
            detail = await self.actions.run(spec, context, f"stsync-{instance['id']}-{step_no}")
        except ActionFailed as exc:
            return self._failed(attempt, exc.message, exc.retryable)
        except Exception as exc:  # a value the action cannot use (a URL, a header with a newline): not retried
            log.warning("workflow %s, step %d: %s", wf.name, step_no, type(exc).__name__, exc_info=True)
            first = str(exc).splitlines()[0] if str(exc) else ""
            return self._failed(attempt, mask_urls(f"{type(exc).__name__}: {first}"), False)
        return _End("ok", "done", detail=detail)

    def _blocked(
        self, spec: Any, step: dict[str, Any], instance: dict[str, Any], entity: dict[str, Any] | None, attempt: int
    ) -> _End | None:
        """Why the step must not run at all: its last attempt may have happened, or its record is gone."""
        if step["lost"] and spec.action not in SET_STATE and not getattr(spec, "dedupes", False):
            return _End("dead", "dead", "the poll running the last attempt stopped before recording it: the action "
                        "may have happened, and its receiver does not dedupe (set dedupes: true if it does), so it "
                        "is not repeated", instance_state="failed")  # fmt: skip
        if step["lost"] and attempt > self.settings.max_attempts:  # every poll that ran it died: stop trying
            return _End("dead", "dead", f"{attempt - 1} attempts, the last by a poll that stopped before recording it",
                        instance_state="failed")  # fmt: skip
        if entity is None:
            return _End("dead", "dead", f"{instance['entity']} {instance['st_id']} is not in the mirror",
                        instance_state="failed")  # fmt: skip
        return None

    def _stopped(self, wf: Workflow, context: dict[str, Any], attempt: int) -> _End | None:
        """The instance's stop condition, checked as each step comes due: true cancels the step and the rest."""
        if wf.stop_when is None:
            return None
        try:
            stop = wf.stop_when.evaluate(context) is True
        except Exception as exc:  # CEL's errors: the record's values do not fit the expression
            return self._failed(attempt, f"stop_when: {str(exc).splitlines()[0]}", False)
        if not stop:
            return None
        detail = {"stop_when": wf.stop_when.source, "values": wf.stop_when.seen(context)}
        return _End("cancelled", "cancelled", detail=detail, instance_state="cancelled")

    async def _record(self, wf: Workflow | None, instance: dict[str, Any], step: dict[str, Any], end: _End) -> str:
        """Record an attempt's end, and what follows: the next step (due after its wait), or the instance's end."""
        store = self.store
        step_no, attempt = int(step["step_no"]), int(step["attempts"])
        at = self.clock()
        ids = {"instance_id": instance["id"], "step_no": step_no, "attempt": attempt}
        async with store.transaction("recording a step"):
            # The step's row first, then its attempt's: the order reclaim_steps locks them in (no deadlock).
            held = await store.rows(
                "finish_step",
                {
                    **ids,
                    "now": at,
                    "state": end.state,
                    "due_at": end.due_at,
                    "error": end.error,
                    "claim": step["claim"],
                },
            )
            if not held:  # our lease ran out and another poll has the step now: its record is the one that counts
                return "lost_lease"
            detail = jsonb(end.detail) if end.detail is not None else None
            await store.rows(
                "finish_attempt", {**ids, "now": at, "result": end.outcome, "error": end.error, "detail": detail}
            )
            finished = end.state in ("done", "skipped")
            if finished and wf is not None and step_no + 1 < len(wf.steps):
                following = {"instance_id": instance["id"], "step_no": step_no + 1,
                             "action": wf.steps[step_no + 1].action,
                             "due_at": (at + wf.delay(step_no + 1)).isoformat()}  # fmt: skip
                await store.rows("add_steps", {"rows": [following]})
            elif finished or end.instance_state is not None:
                state = "completed" if finished else end.instance_state
                await store.rows("finish_instance", {"state": state, "now": at, "instance_id": instance["id"]})
        if end.outcome == "dead":
            name = instance["workflow_name"]
            log.warning("workflow %s, instance %s, step %d: dead: %s", name, instance["id"], step_no, end.error)
        return end.outcome

    def _failed(self, attempt: int, error: str, retryable: bool) -> _End:
        """A failed attempt: waiting again after a backoff that doubles, or dead (not retryable, or the last)."""
        settings = self.settings
        if not retryable or attempt >= settings.max_attempts:
            return _End("dead", "dead", error, instance_state="failed")
        wait = timedelta(seconds=min(settings.retry_base_seconds * 2 ** (attempt - 1), 86_400))
        log.info("workflow step failed (attempt %d of %d), retrying in %s: %s", attempt, settings.max_attempts, wait,
                 error)  # fmt: skip
        return _End("retry", "waiting", error, due_at=self.clock() + wait)

    async def _opted_out(self, entity: dict[str, Any]) -> list[str]:
        """Why the record's customer must not be messaged: ServiceTitan's flags, and GHL's do-not-disturb."""
        customer = entity.get("customer_id")
        if customer is None:
            return []
        row = await self.store.one("opt_outs", {"customer_id": customer, "location_id": self.actions.location})
        if row is None:
            return []
        return [name for name in ("do_not_mail", "do_not_service", "ghl_dnd") if row.get(name)]
