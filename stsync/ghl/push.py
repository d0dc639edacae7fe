"""`stsync ghl push`: plan, then apply, a batch of customers at a time.

A push looks at the customers whose mirror rows changed since the location's last complete push (the
merge stamps ``last_synced_at`` only on a change), plus those whose bookkeeping has a retry due; with
``--full``, after a change of the stage mapping or the business units' routing, or for a location never
pushed, at every customer with an active job in an enabled business unit. Customers go in batches of
``BATCH``, recent work first, so memory stays bounded and a first push serves the latest jobs first.

Per batch, the plan is the list of changes that make GHL match the desired state computed from the mirror:
a contact or an opportunity whose desired fields hash differently from what GHL last accepted (or whose
failed attempt is due again), and each job of a webhook-mode business unit not posted yet. Contacts come
first, then opportunities in stage order, then webhook posts. ``--dry-run`` prints the plan and never
reaches apply (``stsync.ghl.apply``), which makes the requests and keeps the bookkeeping.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from stsync.errors import StsyncError
from stsync.ghl import plan, stages
from stsync.ghl.apply import Applier
from stsync.ghl.changes import ContactChange, OpportunityChange, PushPlan, PushProgress, PushResult, WebhookChange
from stsync.ghl.client import GhlClient
from stsync.ghl.settings import PushSettings, StoreSettings
from stsync.ghl.store import Store, open_store

KINDS = ("contacts", "opportunities", "all")
DRY_RUN_LINES = 20  # planned changes a dry run lists when no --limit is given
BATCH = 1000  # customers planned and applied together


@dataclass(frozen=True)
class Scope:
    """Which customers a push looks at, and what it records when it completes."""

    mode: str  # 'changes' | 'full'
    since: datetime | None
    through: datetime  # the next push reads changes from here
    digest: str  # of the settings that decide the plan
    customers: Sequence[int]


async def push(
    store_settings: StoreSettings,
    settings: PushSettings,
    client: GhlClient | None,
    what: str = "all",
    *,
    limit: int | None = None,
    max_requests: int | None = None,
    full: bool = False,
    progress: Callable[[PushProgress], None] | None = None,
) -> PushResult:
    """Plan the push and, given a ``client``, apply the first ``limit`` changes, stopping cleanly before the
    next change once ``max_requests`` or the location's ``daily_request_budget`` is reached (the next run
    goes on); without a client it is a dry run: everything happens in a transaction that is rolled back,
    and no request is made. A complete run of ``all`` records how far it read the mirror's changes;
    ``progress`` is told where the run stands after each change."""
    dry_run = client is None
    result = PushResult(what, dry_run, location_id=settings.location_id)
    async with open_store(store_settings, dry_run=dry_run, lock=True) as store:
        now = datetime.now(UTC)
        scope = await _scope(store, settings, full)
        result.mode, result.since, result.examined = scope.mode, scope.since, len(scope.customers)
        lines = limit if limit is not None else (DRY_RUN_LINES if dry_run else None)
        if client is None:
            async for planned in _plans(store, settings, what, now, scope):
                _count_plan(result, planned, lines)
                for change in planned.changes:
                    result.counts[change.kind]["planned"] += 1
                    result.counts[change.kind][f"planned_{change.verb}"] += 1
            return result
        try:
            complete = await _apply_all(
                store, settings, client, what, now, scope, result, limit, max_requests, progress or _silent
            )
        except BaseException as exc:
            result.requests = client.requests_sent
            with contextlib.suppress(StsyncError):  # the error under way is the one to report
                await store.count_requests(settings.location_id, client.requests_sent)
                await _log_run(store, result, now, str(exc) if isinstance(exc, StsyncError) else type(exc).__name__)
            raise
        result.requests = client.requests_sent
        await store.count_requests(settings.location_id, client.requests_sent)
        await _log_run(store, result, now)
        if complete and what == "all":
            await store.write(
                "save_push_state",
                {
                    "location_id": settings.location_id,
                    "through": scope.through,
                    "digest": scope.digest,
                    "full": scope.mode == "full",
                },
            )
    return result


async def _log_run(store: Store, result: PushResult, started: datetime, error: str | None = None) -> None:
    """The run's row in integrations.ghl_push_log (`stsync logs`, `stsync stats`)."""
    failed = sum(c["failed"] + c["dead"] for c in result.counts.values())
    made = sum(c[verb] for c in result.counts.values() for verb in ("created", "updated", "posted"))
    status = (
        "failed" if error else "stopped" if result.stopped else "partial" if failed or result.dead_urls else "completed"
    )
    await store.write(
        "push_log",
        {
            "location_id": result.location_id,
            "what": result.what,
            "mode": result.mode,
            "status": status,
            "started_at": started,
            "examined": result.examined,
            "changes": made,
            "failed": failed,
            "requests": result.requests,
            "counts": orjson.dumps({k: dict(v) for k, v in result.counts.items()}).decode(),
            "error": error,
        },
    )


async def _apply_all(
    store: Store,
    settings: PushSettings,
    client: GhlClient,
    what: str,
    now: datetime,
    scope: Scope,
    result: PushResult,
    limit: int | None,
    max_requests: int | None,
    progress: Callable[[PushProgress], None],
) -> bool:
    """Apply every batch's changes within ``limit`` and the request cap; True when every planned change was
    made (so the run may record how far it read)."""
    examined = 0

    def report(made_in_batch: int) -> None:
        progress(PushProgress(len(scope.customers), examined, made + made_in_batch, client.requests_sent))

    applier = Applier(store, client, settings, result, report)
    allowed: int | None = None
    why = ""
    made = 0
    checked: dict[str, set[str]] = {}
    complete = True
    async for planned in _plans(store, settings, what, now, scope):
        _count_plan(result, planned, limit)
        changes = planned.changes
        if not complete or not changes:
            result.remaining += len(changes) if result.stopped else 0
            continue
        if allowed is None:
            allowed, why = await _request_cap(store, settings, max_requests)
        take = changes if limit is None else changes[: max(limit - made, 0)]
        if allowed <= 0 and take:
            result.stopped, complete = why, False
            result.remaining += len(changes)
            continue
        await _check_stages(client, settings, take, checked)
        done = await applier.run(take, max_requests=allowed, made_before=made)
        made += done
        if done < len(take):
            result.stopped, complete = why, False
            result.remaining += len(changes) - done
        elif len(take) < len(changes):
            complete = False  # --limit: the rest is for a later run
        examined = min(examined + BATCH, len(scope.customers))
        report(0)
    return complete


def _silent(_: PushProgress) -> None:
    pass


async def _check_stages(
    client: GhlClient, settings: PushSettings, changes: Sequence[object], checked: dict[str, set[str]]
) -> None:
    """Every mapped stage of the pipelines these changes move opportunities in, and each default stage they
    move one to, before the first of them is made (one GET for the whole run: the client keeps the list)."""
    used: dict[str, set[str]] = {}
    for c in changes:
        if isinstance(c, OpportunityChange) and c.stage not in checked.get(c.want.pipeline, set()):
            used.setdefault(c.want.pipeline, set()).add(c.stage)
    if not used:
        return
    await stages.check(client, [settings.stages_for(p) for p in sorted(used)], settings.location_id, used)
    for pipeline, names in used.items():
        checked.setdefault(pipeline, set()).update(names)


def _count_plan(result: PushResult, planned: PushPlan, lines: int | None) -> None:
    for kind, counts in planned.counts.items():
        result.counts[kind].update(counts)
    room = len(planned.changes) if lines is None else max(lines - len(result.planned), 0)
    result.planned += [change.line() for change in planned.changes[:room]]
    result.planned_total += len(planned.changes)


async def settings_digest(store: Store, settings: PushSettings) -> str:
    """A digest of what decides the plan besides the mirror: the stage mapping, the protected stages and the
    business units' routing. When it differs from the last complete push's, the next push compares all."""
    return plan.digest(
        {
            "install_pipeline": settings.install_pipeline,
            "protected": list(settings.protected_stages),
            "technicians_field": settings.technicians_field,
            "pipelines": [[m.pipeline, m.kind, list(m.stages)] for m in settings.pipelines],
            "routing": await store.fetch("routing"),
        }
    )


async def _scope(store: Store, settings: PushSettings, full: bool) -> Scope:
    through = (await store.fetch("push_through"))[0]["through"]
    digest = await settings_digest(store, settings)
    state = await store.fetch("push_state", {"location_id": settings.location_id})
    if full or not state or state[0]["settings_digest"] != digest:
        rows = await store.fetch("push_customers")
        return Scope("full", None, through, digest, [r["customer_id"] for r in rows])
    since = state[0]["changes_through"]
    rows = await store.fetch("push_customers_changed", {"since": since, "location_id": settings.location_id})
    changed = [r["customer_id"] for r in rows if r["customer_id"] is not None]
    if changed:  # asked apart, so that with nothing changed no query touches a whole table
        rows = await store.fetch("push_customers_of", {"ids": changed})
    return Scope("changes", since, through, digest, [r["customer_id"] for r in rows] if changed else [])


def batches(customers: Sequence[int]) -> Iterator[list[int]]:
    """The customers ``BATCH`` at a time, in their order."""
    for i in range(0, len(customers), BATCH):
        yield list(customers[i : i + BATCH])


async def _plans(
    store: Store, settings: PushSettings, what: str, now: datetime, scope: Scope
) -> AsyncIterator[PushPlan]:
    for ids in batches(scope.customers):
        yield await plan_push(store, settings, what, now, ids)


async def _request_cap(store: Store, settings: PushSettings, max_requests: int | None) -> tuple[int, str]:
    """How many requests this run may make, and what it stops for when they are made: ``--max-requests``, or
    what is left of the location's ``ghl.daily_request_budget`` today, whichever is less."""
    rows = await store.fetch("requests_today", {"location_id": settings.location_id})
    left = settings.daily_request_budget - int(rows[0]["requests"])
    daily = (
        f"ghl.daily_request_budget ({settings.daily_request_budget:,}) reached for location "
        f"{settings.location_id} today (UTC)"
    )
    if max_requests is not None and max_requests < left:
        return max_requests, f"--max-requests {max_requests} reached"
    return left, daily


async def plan_push(store: Store, settings: PushSettings, what: str, now: datetime, ids: list[int]) -> PushPlan:
    """Every change the push would make for the customers ``ids``, in the order it makes them; writes nothing."""
    planned = PushPlan()
    customers = await store.fetch("desired_contacts", {"mode": "api", "ids": ids})
    if what in ("contacts", "all"):
        await _plan_contacts(store, settings, now, planned, ids, customers)
    if what in ("opportunities", "all"):
        await _plan_opportunities(store, settings, now, planned, ids, customers)
        await _plan_webhooks(store, now, planned, ids)
    return planned


async def _plan_contacts(
    store: Store,
    settings: PushSettings,
    now: datetime,
    planned: PushPlan,
    ids: list[int],
    customers: Sequence[Mapping[str, Any]],
) -> None:
    counts = planned.counts["contacts"]
    rows = {
        r["st_customer_id"]: r
        for r in await store.fetch("contact_rows", {"location_id": settings.location_id, "ids": ids})
    }
    for cust in customers:
        cid = cust["customer_id"]
        fields = plan.contact_fields(cust)
        # The customer id goes into a custom field whose id is only known once GHL is asked, so the hash
        # covers the id, not the resolved field.
        digest = plan.digest({**fields, "stCustomerId": cid})
        row = rows.get(cid)
        reason = plan.due(row, digest, now)
        if reason is None:
            counts["unchanged" if row and row["sync_status"] == "synced" else "skipped"] += 1
            continue
        planned.changes.append(ContactChange(cid, fields, digest, row, reason))


async def _plan_opportunities(
    store: Store,
    settings: PushSettings,
    now: datetime,
    planned: PushPlan,
    ids: list[int],
    customers: Sequence[Mapping[str, Any]],
) -> None:
    counts = planned.counts["opportunities"]
    names = {r["customer_id"]: " ".join(str(r["name"] or "").split()) for r in customers}
    jobs = await store.fetch("desired_jobs", {"mode": "api", "ids": ids})
    location = {"location_id": settings.location_id, "ids": ids}
    rows = {(r["st_customer_id"], r["pipeline"]): r for r in await store.fetch("opportunity_rows", location)}
    todo: list[tuple[int, OpportunityChange]] = []
    mapping_of = functools.cache(settings.stages_for)  # once per pipeline, not per opportunity
    for want in plan.opportunity_wants(jobs, lambda pipeline: mapping_of(pipeline).kind, names):
        mapping = mapping_of(want.pipeline)
        row = rows.get((want.customer_id, want.pipeline))
        current = mapping.stage_of(row["stage_name"], row["stage_id"]) if row else None
        # A stage a workflow moved the opportunity to is kept like a protected one: left only for a further stage.
        kept = (
            (*settings.protected_stages, current)
            if row and row["stage_set_by"] and current
            else settings.protected_stages
        )
        stage, status = plan.protect(
            want.job.stage, want.job.status, current, row["status"] if row else None, want.kind, kept
        )
        target = mapping.target(stage)
        # The location's stage goes into the hash: changing the mapping moves the opportunities it concerns.
        digest = plan.digest(want.doc(target, status))
        reason = plan.due(row, digest, now)
        if reason is None:
            counts["unchanged" if row and row["sync_status"] == "synced" else "skipped"] += 1
            continue
        change = OpportunityChange(want, row, stage, target, status, digest, reason)
        todo.append((plan.progress(stage, want.kind), change))
    todo.sort(key=lambda t: (t[0], t[1].want.customer_id))  # earlier stages first
    planned.changes += [change for _, change in todo]


async def _plan_webhooks(store: Store, now: datetime, planned: PushPlan, ids: list[int]) -> None:
    counts = planned.counts["webhooks"]
    jobs = await store.fetch("desired_jobs", {"mode": "webhook", "ids": ids})
    if not jobs:
        return
    customers = {r["customer_id"]: r for r in await store.fetch("desired_contacts", {"mode": "webhook", "ids": ids})}
    posts = {r["st_job_id"]: r for r in await store.fetch("webhook_rows", {"job_ids": [j["job_id"] for j in jobs]})}
    for job in jobs:
        post = posts.get(job["job_id"])
        if post is not None and (
            post["status"] != "failed" or post["next_retry_at"] is None or post["next_retry_at"] > now
        ):
            counts[{"posted": "posted_before", "sending": "unknown_outcome"}.get(post["status"], "skipped")] += 1
            continue
        contact = plan.contact_fields(customers.get(job["customer_id"], {}))
        planned.changes.append(WebhookChange(job, post, contact))
