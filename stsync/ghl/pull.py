"""`stsync ghl pull`: link a location's existing GHL contacts and opportunities to ServiceTitan customers.

A contact matches a customer the push would create a contact for (a job in an enabled api-mode business unit)
by the ServiceTitan customer id in its contact custom field ``plan.CUSTOMER_ID_FIELD`` (left by an earlier
push), else by email, else by phone (E.164). Its opportunities in the pipelines the business units push to
are linked to that customer, one per customer and pipeline. Linked rows are 'pending': the next push updates
those GHL records by id instead of creating. Rows already linked are left alone.

The pull pages through every contact (``searchAfter``, 500 a page), then every opportunity (``startAfterId``,
100 a page). Each page's links commit with the cursor of the next page (``integrations.ghl_pull_state``), so a
killed pull resumes at the page it was on, and a pull of a location with 50,000 contacts costs about 600
requests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stsync.errors import ConfigError
from stsync.ghl import plan
from stsync.ghl.client import GhlClient
from stsync.ghl.push import batches
from stsync.ghl.settings import StoreSettings
from stsync.ghl.store import Store, open_store

CONTACTS_PAGE = 500  # the most POST /contacts/search returns at once
OPPORTUNITIES_PAGE = 100  # the most GET /opportunities/search returns at once


@dataclass
class PullProgress:
    """Where a pull stands, reported after each page (``stsync.cli.ghl_cmd`` shows it)."""

    phase: str  # contacts, then opportunities
    seen: int  # records of the phase read so far (resumed pulls count the pages before the kill)
    total: int | None  # records of the phase in the location, as GHL counts them
    linked: int  # records linked by this run so far
    requests: int  # GHL requests sent so far


@dataclass
class _Customers:
    """The customers the push would create contacts for, by their keys."""

    ids: set[int]
    by_email: dict[str, list[int]]
    by_phone: dict[str, list[int]]

    def match(self, contact: dict[str, Any], id_field: str | None) -> list[int]:
        if id_field:
            for f in contact.get("customFields") or []:
                if isinstance(f, dict) and f.get("id") == id_field and str(f.get("value", "")).isdigit():
                    cid = int(str(f["value"]))
                    if cid in self.ids:
                        return [cid]
        email = str(contact.get("email") or "").strip().lower()
        return self.by_email.get(email) or self.by_phone.get(plan.e164(contact.get("phone")) or "") or []


async def _customers(store: Store) -> _Customers:
    out = _Customers(set(), {}, {})
    for ids in batches([r["customer_id"] for r in await store.fetch("push_customers")]):
        for cust in await store.fetch("desired_contacts", {"mode": "api", "ids": ids}):
            fields = plan.contact_fields(cust)
            out.ids.add(cust["customer_id"])
            if "email" in fields:
                out.by_email.setdefault(fields["email"], []).append(cust["customer_id"])
            if "phone" in fields:
                out.by_phone.setdefault(fields["phone"], []).append(cust["customer_id"])
    return out


async def pull(
    store_settings: StoreSettings, client: GhlClient, progress: Callable[[PullProgress], None] = lambda _: None
) -> dict[str, int]:
    """Link what GHL already holds; returns counts of what was seen and linked by this run."""
    location = client.settings.location_id
    async with open_store(store_settings, lock=True) as store:
        run = _Pull(store, client, progress)
        await store.write("pull_start", {"location_id": location})
        state = (await store.fetch("pull_state", {"location_id": location}))[0]
        if state["cursor"] is not None:
            run.counts["resumed_at"] = state["seen"]
        phase, cursor, seen = state["phase"], state["cursor"], state["seen"]
        if phase == "contacts":
            await run.contacts(cursor, seen)
            cursor, seen = None, 0
        await run.opportunities(cursor, seen)
    return dict(run.counts)


@dataclass
class _Pull:
    """One run of `ghl pull`: the phases share the store, the client, the counts and the progress report."""

    store: Store
    client: GhlClient
    progress: Callable[[PullProgress], None]
    counts: Counter[str] = field(default_factory=Counter)

    async def contacts(self, cursor: dict[str, Any] | None, seen: int) -> None:
        store, client, counts = self.store, self.client, self.counts
        customers = await _customers(store)
        id_field = await _customer_id_field(client)
        after = cursor.get("searchAfter") if cursor else None
        while True:
            contacts, total = await client.contacts_after(after, CONTACTS_PAGE)
            links: dict[int, str] = {}
            for c in contacts:
                counts["ghl_contacts"] += 1
                for cid in customers.match(c, id_field):
                    links.setdefault(cid, str(c["id"]))  # a customer matched twice on one page keeps the first
            seen += len(contacts)
            last = contacts[-1].get("searchAfter") if contacts else None
            more = len(contacts) == CONTACTS_PAGE and last is not None
            got = await store.write(
                "pull_contacts_page",
                {
                    "location_id": client.settings.location_id,
                    "links": json.dumps([{"customer_id": k, "ghl_id": v} for k, v in links.items()]),
                    "phase": "contacts" if more else "opportunities",
                    "cursor": json.dumps({"searchAfter": last}) if more else None,
                    "seen": seen if more else 0,
                },
            )
            flags = [{"ghl_id": str(c["id"]), "dnd": bool(c.get("dnd"))} for c in contacts]
            await store.write("pull_contacts_dnd", {"location_id": client.settings.location_id,
                                                    "flags": json.dumps(flags)})  # fmt: skip
            linked = got[0]["linked"]
            counts["contacts_linked"] += linked
            counts["contacts_already_linked"] += len(links) - linked
            self.progress(PullProgress("contacts", seen, total, counts["contacts_linked"], client.requests_sent))
            if not more:
                return
            after = last

    async def opportunities(self, cursor: dict[str, Any] | None, seen: int) -> None:
        store, client, counts = self.store, self.client, self.counts
        pipelines = await _pipeline_settings(store, client)
        after_id, after = (cursor.get("startAfterId"), cursor.get("startAfter")) if cursor else (None, None)
        while True:
            opps, meta = await client.opportunities_after(after_id, after, OPPORTUNITIES_PAGE)
            page = []
            for o in opps:
                counts["ghl_opportunities"] += 1
                setting = pipelines.get(str(o.get("pipelineId")))
                if setting is None:
                    counts["opportunities_other_pipeline"] += 1
                    continue
                stage = await client.stage_by_id(str(o["pipelineId"]), str(o.get("pipelineStageId")))
                page.append(
                    {
                        "ghl_id": str(o["id"]),
                        "contact_id": str(o.get("contactId")),
                        "pipeline_id": str(o["pipelineId"]),
                        "pipeline": setting,
                        "stage_id": o.get("pipelineStageId"),
                        "stage_name": stage.name if stage else None,
                        "status": o.get("status"),
                        "value": o.get("monetaryValue"),
                    }
                )
            seen += len(opps)
            next_id = meta.get("startAfterId")
            more = bool(opps) and bool(next_id)
            got = await store.write(
                "pull_opportunities_page",
                {
                    "location_id": client.settings.location_id,
                    "opportunities": json.dumps(page),
                    "phase": "opportunities" if more else "done",
                    "cursor": json.dumps({"startAfterId": next_id, "startAfter": meta.get("startAfter")})
                    if more
                    else None,
                    "seen": seen,
                },
            )
            counts["opportunities_linked"] += got[0]["linked"]
            counts["opportunities_already_linked"] += got[0]["matched"] - got[0]["linked"]
            total = meta.get("total")
            self.progress(
                PullProgress(
                    "opportunities",
                    seen,
                    total if isinstance(total, int) else None,
                    counts["opportunities_linked"],
                    client.requests_sent,
                )
            )
            if not more:
                return
            after_id, after = next_id, meta.get("startAfter")


async def _customer_id_field(client: GhlClient) -> str | None:
    try:
        found = await client.custom_field(plan.CUSTOMER_ID_FIELD, "contact", "the ServiceTitan customer id")
    except ConfigError:
        return None
    return str(found["id"])


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
