"""`stsync ghl pull`: link a location's existing GHL contacts and opportunities to ServiceTitan customers.

Contacts match a customer (with a job in an enabled api-mode business unit) by email, else by phone
(E.164). Linked rows are 'pending': the next push updates those GHL records by id instead of creating.
Rows already linked are left alone.
"""

from __future__ import annotations

from collections import Counter

from stsync.errors import ConfigError
from stsync.ghl import plan
from stsync.ghl.client import GhlClient
from stsync.ghl.push import batches
from stsync.ghl.settings import StoreSettings
from stsync.ghl.store import Store, open_store

PAGE = 100


async def _customer_keys(store: Store) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """The customers the push would create contacts for, by email and by E.164 phone."""
    by_email: dict[str, list[int]] = {}
    by_phone: dict[str, list[int]] = {}
    for ids in batches([r["customer_id"] for r in await store.fetch("push_customers")]):
        for cust in await store.fetch("desired_contacts", {"mode": "api", "ids": ids}):
            fields = plan.contact_fields(cust)
            if "email" in fields:
                by_email.setdefault(fields["email"], []).append(cust["customer_id"])
            if "phone" in fields:
                by_phone.setdefault(fields["phone"], []).append(cust["customer_id"])
    return by_email, by_phone


async def pull(store_settings: StoreSettings, client: GhlClient) -> dict[str, int]:
    """Link what GHL already holds; returns counts of what was seen and linked."""
    counts: Counter[str] = Counter()
    async with open_store(store_settings, lock=True) as store:
        by_email, by_phone = await _customer_keys(store)
        linked: dict[str, list[int]] = {}
        page = 1
        while True:
            contacts = await client.search_contacts(page, PAGE)
            for c in contacts:
                counts["ghl_contacts"] += 1
                email = str(c.get("email") or "").strip().lower()
                customers = by_email.get(email) or by_phone.get(plan.e164(c.get("phone")) or "") or []
                for cid in customers:
                    got = await store.write(
                        "link_contact",
                        {"customer_id": cid, "ghl_id": str(c["id"]), "location_id": client.settings.location_id},
                    )
                    counts["contacts_linked" if got else "contacts_already_linked"] += 1
                    linked.setdefault(str(c["id"]), []).append(cid)
            if len(contacts) < PAGE:
                break
            page += 1
        pipelines = await _pipeline_settings(store, client)
        page = 1
        while True:
            opps = await client.search_opportunities(page=page, limit=PAGE)
            for o in opps:
                counts["ghl_opportunities"] += 1
                setting = pipelines.get(str(o.get("pipelineId")))
                for cid in linked.get(str(o.get("contactId")), []):
                    if setting is None:
                        counts["opportunities_other_pipeline"] += 1
                        continue
                    stage = await client.stage_by_id(str(o["pipelineId"]), str(o.get("pipelineStageId")))
                    got = await store.write(
                        "link_opportunity",
                        {
                            "customer_id": cid,
                            "pipeline_id": str(o["pipelineId"]),
                            "pipeline": setting,
                            "ghl_id": str(o["id"]),
                            "location_id": client.settings.location_id,
                            "stage_id": o.get("pipelineStageId"),
                            "stage_name": stage.name if stage else None,
                            "status": o.get("status"),
                            "value": o.get("monetaryValue"),
                        },
                    )
                    counts["opportunities_linked" if got else "opportunities_already_linked"] += 1
            if len(opps) < PAGE:
                break
            page += 1
    return dict(counts)


async def _pipeline_settings(store: Store, client: GhlClient) -> dict[str, str]:
    """{GHL pipeline id: business unit pipeline setting} for the enabled api-mode business units."""
    out: dict[str, str] = {}
    for bu in await store.fetch("list_business_units"):
        if bu["mode"] != "api" or not bu["sync_enabled"] or not bu["pipeline"]:
            continue
        try:
            p = await client.pipeline(bu["pipeline"])
        except ConfigError:
            continue
        out[str(p["id"])] = bu["pipeline"]
    return out
