"""`stsync ghl push`: plan, then apply.

The plan is the list of changes that make GHL match the desired state computed from the mirror: a contact
or an opportunity whose desired fields hash differently from what GHL last accepted (or whose failed attempt
is due again), and each job of a webhook-mode business unit not posted yet. Contacts come first, then
opportunities in stage order, then webhook posts. ``--dry-run`` prints the plan and never reaches apply
(``stsync.ghl.apply``), which makes the requests and keeps the bookkeeping.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC, datetime

from stsync.errors import StsyncError
from stsync.ghl import plan, stages
from stsync.ghl.apply import apply
from stsync.ghl.changes import ContactChange, OpportunityChange, PushPlan, PushResult, WebhookChange
from stsync.ghl.client import GhlClient
from stsync.ghl.settings import PushSettings, StoreSettings
from stsync.ghl.store import Store, open_store

KINDS = ("contacts", "opportunities", "all")
DRY_RUN_LINES = 20  # planned changes a dry run lists when no --limit is given


async def push(
    store_settings: StoreSettings,
    settings: PushSettings,
    client: GhlClient | None,
    what: str = "all",
    *,
    limit: int | None = None,
    max_requests: int | None = None,
) -> PushResult:
    """Plan the push and, given a ``client``, apply the first ``limit`` changes, stopping cleanly before the
    next change once ``max_requests`` or the location's ``daily_request_budget`` is reached (the next run
    goes on); without a client it is a dry run: everything happens in a transaction that is rolled back,
    and no request is made."""
    dry_run = client is None
    result = PushResult(what, dry_run)
    async with open_store(store_settings, dry_run=dry_run, lock=True) as store:
        now = datetime.now(UTC)
        planned = await plan_push(store, settings, what, now)
        for kind, counts in planned.counts.items():
            result.counts[kind].update(counts)
        cap = limit if limit is not None else (DRY_RUN_LINES if dry_run else None)
        result.planned = [change.line() for change in planned.changes[:cap]]
        result.planned_total = len(planned.changes)
        if client is None:
            for change in planned.changes:
                result.counts[change.kind]["planned"] += 1
            return result
        changes = planned.changes[:limit]
        if not changes:
            return result
        allowed, why = await _request_cap(store, settings, max_requests)
        if allowed <= 0:
            result.stopped, result.remaining = why, len(changes)
            return result
        try:
            # Every mapped stage of the pipelines this push moves opportunities in, before anything is pushed.
            used: dict[str, set[str]] = {}
            for c in changes:
                if isinstance(c, OpportunityChange):
                    used.setdefault(c.want.pipeline, set()).add(c.stage)
            mappings = [settings.stages_for(p) for p in sorted(used)]
            await stages.check(client, mappings, settings.location_id, used)
            done = await apply(changes, store, client, settings, result, now, max_requests=allowed)
            if done < len(changes):
                result.stopped, result.remaining = why, len(changes) - done
        except BaseException:
            result.requests = client.requests_sent
            with contextlib.suppress(StsyncError):  # the error under way is the one to report
                await store.count_requests(settings.location_id, client.requests_sent)
            raise
        result.requests = client.requests_sent
        await store.count_requests(settings.location_id, client.requests_sent)
    return result


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


async def plan_push(store: Store, settings: PushSettings, what: str, now: datetime) -> PushPlan:
    """Every change the push would make, in the order it makes them; writes nothing."""
    planned = PushPlan()
    if what in ("contacts", "all"):
        await _plan_contacts(store, settings, now, planned)
    if what in ("opportunities", "all"):
        await _plan_opportunities(store, settings, now, planned)
        await _plan_webhooks(store, now, planned)
    return planned


async def _plan_contacts(store: Store, settings: PushSettings, now: datetime, planned: PushPlan) -> None:
    counts = planned.counts["contacts"]
    location = {"location_id": settings.location_id}
    rows = {r["st_customer_id"]: r for r in await store.fetch("contact_rows", location)}
    for cust in await store.fetch("desired_contacts", {"mode": "api"}):
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


async def _plan_opportunities(store: Store, settings: PushSettings, now: datetime, planned: PushPlan) -> None:
    counts = planned.counts["opportunities"]
    names = {
        r["customer_id"]: " ".join(str(r["name"] or "").split())
        for r in await store.fetch("desired_contacts", {"mode": "api"})
    }
    jobs = await store.fetch("desired_jobs", {"mode": "api"})
    location = {"location_id": settings.location_id}
    rows = {(r["st_customer_id"], r["pipeline"]): r for r in await store.fetch("opportunity_rows", location)}
    todo: list[tuple[int, OpportunityChange]] = []
    mapping_of = functools.cache(settings.stages_for)  # once per pipeline, not per opportunity
    for want in plan.opportunity_wants(jobs, lambda pipeline: mapping_of(pipeline).kind, names):
        mapping = mapping_of(want.pipeline)
        row = rows.get((want.customer_id, want.pipeline))
        stage, status = plan.protect(
            want.job.stage,
            want.job.status,
            mapping.stage_of(row["stage_name"], row["stage_id"]) if row else None,
            row["status"] if row else None,
            want.kind,
            settings.protected_stages,
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


async def _plan_webhooks(store: Store, now: datetime, planned: PushPlan) -> None:
    counts = planned.counts["webhooks"]
    jobs = await store.fetch("desired_jobs", {"mode": "webhook"})
    if not jobs:
        return
    customers = {r["customer_id"]: r for r in await store.fetch("desired_contacts", {"mode": "webhook"})}
    posts = {r["st_job_id"]: r for r in await store.fetch("webhook_rows")}
    for job in jobs:
        post = posts.get(job["job_id"])
        if post is not None and (
            post["status"] != "failed" or post["next_retry_at"] is None or post["next_retry_at"] > now
        ):
            counts[{"posted": "posted_before", "sending": "unknown_outcome"}.get(post["status"], "skipped")] += 1
            continue
        contact = plan.contact_fields(customers.get(job["customer_id"], {}))
        planned.changes.append(WebhookChange(job, post, contact))
