"""Webhook mode of `stsync ghl push`: each job of a webhook-mode business unit is posted once, as flat
JSON with the customer's email or phone, to the unit's inbound webhook-trigger URL. The post is claimed
in the database first, so a crash mid-post never leads to a second post; a 200 without an `id` marks
the URL dead (the trigger is unknown or its workflow a draft)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stsync.errors import ApiUnavailable
from stsync.ghl import plan
from stsync.ghl.client import GhlRequestError

if TYPE_CHECKING:
    from stsync.ghl.push import Run


async def post_jobs(run: Run) -> None:
    """Post each due job of the enabled webhook-mode business units to its unit's URL."""
    counts = run.result.counts["webhooks"]
    jobs = await run.store.fetch("desired_jobs", {"mode": "webhook"})
    if not jobs:
        return
    customers = {r["customer_id"]: r for r in await run.store.fetch("desired_contacts", {"mode": "webhook"})}
    posts = {r["st_job_id"]: r for r in await run.store.fetch("webhook_rows")}
    dead_urls: set[str] = set()
    for job in jobs:
        post = posts.get(job["job_id"])
        if post is not None and (
            post["status"] != "failed" or post["next_retry_at"] is None or post["next_retry_at"] > run.now
        ):
            counts[{"posted": "posted_before", "sending": "unknown_outcome"}.get(post["status"], "skipped")] += 1
            continue
        url = job["webhook_url"]
        if url in dead_urls:
            counts["skipped_dead_url"] += 1
            continue
        if not run.plan_change(f"webhook post job={job['job_id']} business_unit={job['business_unit']}"):
            break
        if run.client is None:
            counts["planned"] += 1
            continue
        contact = plan.contact_fields(customers.get(job["customer_id"], {}))
        outcome = await _post_one(run, job, post, url, contact)
        counts[outcome] += 1
        if outcome == "dead":
            dead_urls.add(url)
            run.result.dead_urls.append(f"business unit {job['business_unit_id']} ({job['business_unit']})")


async def _post_one(
    run: Run, job: Mapping[str, Any], post: Mapping[str, Any] | None, url: str, contact: dict[str, Any]
) -> str:
    """Post one job (claimed first); returns posted | failed | dead | skipped."""
    assert run.client is not None
    params = {"job_id": job["job_id"], "bu_id": job["business_unit_id"]}
    if "email" not in contact and "phone" not in contact:
        await run.store.write("webhook_failed_unposted", {**params, "error": "job's customer has no email or phone"})
        return "failed"
    if not await run.store.write("webhook_claim", params):
        return "skipped"
    state = plan.job_state(job, "sales")
    payload = plan.webhook_payload(job, contact, state, job["business_unit"])
    done = {
        "job_id": job["job_id"],
        "max_attempts": run.g.max_attempts,
        "retry_in": None,
        "http_status": None,
        "response": None,
        "error": None,
    }
    try:
        status, body = await run.client.post_webhook(url, payload)
    except (GhlRequestError, ApiUnavailable) as exc:
        attempts = (post or {}).get("attempts", 0) + 1
        await run.store.write(
            "webhook_done",
            {
                **done,
                "status": "failed",
                "error": str(exc)[:1000],
                "retry_in": plan.backoff(attempts),
                "http_status": getattr(exc, "status", None),
            },
        )
        if isinstance(exc, ApiUnavailable):
            raise
        return "failed"
    text = str(body)[:1000] if body is not None else None
    if isinstance(body, dict) and body.get("id"):
        await run.store.write("webhook_done", {**done, "status": "posted", "http_status": status, "response": text})
        return "posted"
    error = (
        "webhook URL answered 200 without an id: the trigger is unknown or its workflow is a draft "
        f"(business unit {job['business_unit_id']})"
    )
    await run.store.write(
        "webhook_done", {**done, "status": "dead", "http_status": status, "response": text, "error": error}
    )
    return "dead"
