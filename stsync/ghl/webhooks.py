"""Webhook mode of `stsync ghl push`: each job of a webhook-mode business unit is posted once, as flat
JSON with the customer's email or phone, to the unit's inbound webhook-trigger URL. The post is claimed
in the database first, so a crash mid-post never leads to a second post; a 200 without an `id` marks
the URL dead (the trigger is unknown or its workflow a draft)."""

from __future__ import annotations

from stsync.errors import ApiUnavailable
from stsync.ghl import plan
from stsync.ghl.changes import WebhookChange
from stsync.ghl.client import GhlClient, GhlRequestError
from stsync.ghl.store import Store


async def post(change: WebhookChange, store: Store, client: GhlClient, max_attempts: int) -> str:
    """Post one job (claimed first); returns posted | failed | dead | skipped."""
    job, post_row, contact = change.job, change.post, change.contact
    params = {"job_id": job["job_id"], "bu_id": job["business_unit_id"]}
    if "email" not in contact and "phone" not in contact:
        await store.write("webhook_failed_unposted", {**params, "error": "job's customer has no email or phone"})
        return "failed"
    if not await store.write("webhook_claim", params):
        return "skipped"
    state = plan.job_state(job, "sales")
    payload = plan.webhook_payload(job, contact, state, job["business_unit"])
    done = {
        "job_id": job["job_id"],
        "max_attempts": max_attempts,
        "retry_in": None,
        "http_status": None,
        "response": None,
        "error": None,
    }
    try:
        status, body = await client.post_webhook(job["webhook_url"], payload)
    except (GhlRequestError, ApiUnavailable) as exc:
        attempts = (post_row or {}).get("attempts", 0) + 1
        await store.write(
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
        await store.write("webhook_done", {**done, "status": "posted", "http_status": status, "response": text})
        return "posted"
    error = (
        "webhook URL answered 200 without an id: the trigger is unknown or its workflow is a draft "
        f"(business unit {job['business_unit_id']})"
    )
    await store.write(
        "webhook_done", {**done, "status": "dead", "http_status": status, "response": text, "error": error}
    )
    return "dead"
