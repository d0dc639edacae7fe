"""Apply a GHL push plan (``stsync.ghl.push``): make the requests and keep the bookkeeping.

Every contact carries the ServiceTitan customer id in the contact custom field ``plan.CUSTOMER_ID_FIELD``
(when the location has it). Crash safety without extra requests where the bookkeeping makes them unnecessary:
- a contact with an email or phone goes through GHL's upsert, which finds an existing contact by the
  location's duplicate rules itself, so a crash between GHL's answer and our bookkeeping repeats the upsert
  rather than creating a second contact (one request, where a duplicate search first took two or three);
  a customer with neither is searched by name and checked against that custom field first;
- an opportunity is looked up (search by contact + pipeline) before it is created only when it may already
  exist: it has a bookkeeping row already (an earlier create was begun, ``create_started_at``, committed
  before the request; or another pipeline id), or its contact was not created by this push for this
  customer alone (a shared or found contact may hold other opportunities);
- the ids GHL returns in duplicate errors are accepted.
Each write commits on its own: a killed push loses at most one item's bookkeeping. Webhook posts: see
``stsync.ghl.webhooks``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stsync.errors import ConfigError
from stsync.ghl import plan, webhooks
from stsync.ghl.changes import Change, ContactChange, OpportunityChange, PushResult, WebhookChange
from stsync.ghl.client import GhlClient, GhlRequestError
from stsync.ghl.settings import PushSettings
from stsync.ghl.store import Store

log = logging.getLogger("stsync.ghl.push")


@dataclass
class _Run:
    """Where one ``Applier.run`` stands: changes begun and made, the first error, and the request cap."""

    max_requests: int | None
    first_made: bool  # an earlier batch of this push made a change already
    begun: int = 0
    made: int = 0
    failure: Exception | None = None

    def may_begin(self, sent: int) -> bool:
        if self.failure is not None:
            return False
        if not self.begun and not self.first_made:
            return True
        return self.max_requests is None or sent < self.max_requests


CLAIM = ("customer_id", "pipeline_id", "pipeline", "job_id", "bu_id", "location_id")


class Applier:
    """Makes the changes of one push, batch by batch, and keeps what it learns on the way: the customer-id
    field, the batch's contacts, dead URLs."""

    def __init__(
        self,
        store: Store,
        client: GhlClient,
        settings: PushSettings,
        result: PushResult,
        made: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.store, self.client, self.settings, self.result = store, client, settings, result
        self._made = made  # told how many changes of the batch are made, after each
        self._id_field: str | None = None
        self._id_field_resolved = False
        self._resolving = asyncio.Lock()
        self._contacts: dict[int, Mapping[str, Any]] | None = None  # read once the batch's contacts are done
        self._dead_urls: set[str] = set()
        self._batch: Sequence[Change] = ()

    async def run(self, changes: Sequence[Change], *, max_requests: int | None = None, made_before: int = 0) -> int:
        """Make the changes, counting outcomes into the result; returns how many were made (always a prefix of
        ``changes``). Contacts, then opportunities, are made ``settings.concurrency`` at a time (so GHL's
        latency hides behind the pace; the client's limiter keeps the pace), never two at once that touch the
        same GHL record (a shared email or phone, the same contact and pipeline); webhook posts one by one.
        Once the client has sent ``max_requests``, no further change is begun (those in flight complete, so a
        run may exceed it by the few requests of each); the run's first change is always made, so every run
        gets somewhere. An error stops new changes, lets those in flight finish, and is raised."""
        self._contacts, self._batch = None, changes
        state = _Run(max_requests, first_made=made_before > 0)
        start = 0
        while start < len(changes) and state.may_begin(self.client.requests_sent):
            end = start
            while end < len(changes) and changes[end].kind == changes[start].kind:
                end += 1
            width = 1 if changes[start].kind == "webhooks" else self.settings.concurrency
            if changes[start].kind == "opportunities":
                await self._batch_contacts()
            await self._run_group(changes[start:end], width, state)
            start = end
        if state.failure is not None:
            raise state.failure
        return state.begun

    async def _run_group(self, group: Sequence[Change], width: int, state: _Run) -> None:
        queue = iter(group)
        busy: dict[tuple[Any, ...], asyncio.Future[None]] = {}  # GHL record -> the change in flight on it

        async def worker() -> None:
            while state.may_begin(self.client.requests_sent):
                change = next(queue, None)
                if change is None:
                    return
                state.begun += 1
                keys = await self._keys(change)
                earlier = [busy[k] for k in keys if k in busy]
                mine = asyncio.get_running_loop().create_future()
                for k in keys:
                    busy[k] = mine
                try:
                    if earlier:
                        await asyncio.wait(earlier)
                    await self._make(change)
                    state.made += 1
                    self._made(state.made)
                except Exception as exc:  # the first error is raised once the changes in flight are done
                    state.failure = state.failure or exc
                    return
                finally:
                    mine.set_result(None)
                    for k in keys:
                        if busy.get(k) is mine:
                            del busy[k]

        await asyncio.gather(*(worker() for _ in range(min(width, len(group)))))

    async def _make(self, change: Change) -> None:
        if isinstance(change, ContactChange):
            await self.contact(change)
        elif isinstance(change, OpportunityChange):
            await self.opportunity(change)
        else:
            await self.webhook(change)
        await self.store.count_requests(self.settings.location_id, self.client.requests_sent)

    async def _keys(self, change: Change) -> list[tuple[Any, ...]]:
        """The GHL records a change may touch, so that two changes on one record never run at once: GHL's
        upsert and its duplicate checks are not safe against concurrent requests for the same contact."""
        if isinstance(change, ContactChange):
            keys: list[tuple[Any, ...]] = [("customer", change.customer_id)]
            keys += [(k, change.fields[k]) for k in ("email", "phone") if change.fields.get(k)]
            return keys
        if isinstance(change, OpportunityChange):
            contact = (await self._batch_contacts()).get(change.want.customer_id)
            owner = contact["ghl_contact_id"] if contact and contact["ghl_contact_id"] else change.want.customer_id
            return [("opportunity", owner, change.want.pipeline)]
        return []

    async def _batch_contacts(self) -> dict[int, Mapping[str, Any]]:
        """The bookkeeping of the batch's contacts, read once they are all made (before its opportunities)."""
        if self._contacts is None:
            ids = [c.want.customer_id for c in self._batch if isinstance(c, OpportunityChange)]
            self._contacts = {
                r["st_customer_id"]: r
                for r in await self.store.fetch("contact_rows", {"location_id": self.settings.location_id, "ids": ids})
            }
        return self._contacts

    # --- contacts ----------------------------------------------------------------------------------

    async def contact(self, change: ContactChange) -> None:
        counts = self.result.counts["contacts"]
        cid, fields, row = change.customer_id, dict(change.fields), change.row
        id_field = await self._customer_id_field()
        if id_field:
            fields["customFields"] = [{"id": id_field, "field_value": str(cid)}]
        if not change.known and "email" not in fields and "phone" not in fields and not (id_field and "name" in fields):
            await self._contact_failed(
                change,
                "customer has no email or phone, and without a name and the contact custom field "
                f"'{plan.CUSTOMER_ID_FIELD}' GHL cannot find it again",
                None,
            )
            counts["no_email_or_phone"] += 1
            return
        try:
            gid, created = await self._push_contact(change.known, fields, cid, id_field)
        except GhlRequestError as exc:
            attempts = (row or {}).get("attempts", 0) + 1
            await self._contact_failed(change, str(exc), plan.backoff(attempts))
            counts["dead" if attempts >= self.settings.max_attempts else "failed"] += 1
            return
        await self.store.write(
            "contact_synced",
            {
                "customer_id": cid,
                "ghl_id": gid,
                "location_id": self.settings.location_id,
                "hash": change.digest,
                "created": created,
                "dnd": self.client.dnd.get(gid),
            },
        )
        counts["created" if created else "updated"] += 1

    async def _customer_id_field(self) -> str | None:
        """Id of the contact custom field holding the ServiceTitan customer id; None when the location has none."""
        async with self._resolving:  # the contacts made at once wait for the first to ask
            if not self._id_field_resolved:
                try:
                    found = await self.client.custom_field(
                        plan.CUSTOMER_ID_FIELD, "contact", "the ServiceTitan customer id"
                    )
                    self._id_field = str(found["id"])
                except ConfigError:
                    log.warning(
                        "GHL contact custom field %r not found; contacts will not carry the customer id",
                        plan.CUSTOMER_ID_FIELD,
                    )
                self._id_field_resolved = True
        return self._id_field

    async def _push_contact(
        self, known: str | None, fields: dict[str, Any], customer_id: int, id_field: str | None
    ) -> tuple[str, bool]:
        """Update the known contact, else the one GHL already has for this customer, else create it; returns
        (id, whether GHL created it)."""
        update = {k: v for k, v in fields.items() if k != "source"}
        if known and await _still_there("contact", known, self.client.update_contact(known, update)):
            return known, False
        if "email" not in fields and "phone" not in fields:
            # The upsert cannot find this one again: look it up first, so that a crash after GHL created it
            # but before we recorded it does not create a second one.
            found = await self._find_by_customer_id(fields["name"], customer_id, id_field)
            if found:
                await self.client.update_contact(found, update)
                return found, False
        return await self.client.upsert(fields)

    async def _find_by_customer_id(self, name: str, customer_id: int, id_field: str | None) -> str | None:
        """A contact without email or phone: the one named ``name`` carrying our customer id."""
        if not id_field:
            return None
        for c in await self.client.search_contacts(1, 100, query=name):
            for f in c.get("customFields") or []:
                if isinstance(f, dict) and f.get("id") == id_field and str(f.get("value")) == str(customer_id):
                    return str(c["id"])
        return None

    async def _contact_failed(self, change: ContactChange, error: str, retry_in: str | None) -> None:
        await self.store.write(
            "contact_failed",
            {
                "customer_id": change.customer_id,
                "location_id": self.settings.location_id,
                "hash": change.digest,
                "error": error[:1000],
                "retry_in": retry_in,
                "max_attempts": self.settings.max_attempts,
            },
        )

    # --- opportunities -----------------------------------------------------------------------------

    async def opportunity(self, change: OpportunityChange) -> None:
        counts = self.result.counts["opportunities"]
        contact = (await self._batch_contacts()).get(change.want.customer_id)
        if not contact or not contact["ghl_contact_id"] or contact["sync_status"] not in ("synced", "pending"):
            counts["waiting_for_contact"] += 1
            return
        want, row, status = change.want, change.row, change.status
        stage = await self.client.stage(want.pipeline, change.target)  # checked by the push before it began
        fields: dict[str, Any] = {
            "pipelineId": stage.pipeline_id,
            "pipelineStageId": stage.id,
            "name": want.name,
            "status": status,
        }
        if want.job.value is not None:
            fields["monetaryValue"] = float(want.job.value)
        if want.job.technicians:
            techs = await self.client.custom_field(self.settings.technicians_field, "opportunity")
            fields["customFields"] = [{"id": techs["id"], "field_value": want.job.technicians}]
        params = {
            "customer_id": want.customer_id,
            "pipeline_id": stage.pipeline_id,
            "pipeline": want.pipeline,
            "job_id": want.job.job_id,
            "bu_id": want.business_unit_id,
            "location_id": self.settings.location_id,
            "hash": change.digest,
        }
        try:
            # The status travels in the create or update itself (both DTOs take it): no separate status call.
            oid, created = await self._upsert_opportunity(row, fields, contact, params)
        except GhlRequestError as exc:
            attempts = (row or {}).get("attempts", 0) + 1
            await self.store.write(
                "opportunity_failed",
                {
                    **params,
                    "error": str(exc)[:1000],
                    "retry_in": plan.backoff(attempts),
                    "max_attempts": self.settings.max_attempts,
                },
            )
            counts["dead" if attempts >= self.settings.max_attempts else "failed"] += 1
            return
        await self.store.write(
            "opportunity_synced",
            {
                **params,
                "ghl_id": oid,
                "stage_id": stage.id,
                "stage_name": stage.name,
                "status": status,
                "value": want.job.value,
            },
        )
        counts["created" if created else "updated"] += 1

    async def _upsert_opportunity(
        self,
        row: Mapping[str, Any] | None,
        fields: dict[str, Any],
        contact: Mapping[str, Any],
        params: dict[str, Any],
    ) -> tuple[str, bool]:
        contact_id = contact["ghl_contact_id"]
        known = row["ghl_opportunity_id"] if row and row["pipeline_id"] == fields["pipelineId"] else None
        if known and await _still_there("opportunity", known, self.client.update_opportunity(known, fields)):
            return known, False
        # Only an opportunity never tried, of a contact the push created for this customer alone, cannot exist.
        if row is not None or not contact["created_by_push"]:
            found = [
                o
                for o in await self.client.search_opportunities(contact_id=contact_id, pipeline_id=fields["pipelineId"])
                if o.get("contactId") in (None, contact_id) and o.get("pipelineId") in (None, fields["pipelineId"])
            ]
            if found:
                oid = str(found[0]["id"])
                await self.client.update_opportunity(oid, fields)
                return oid, False
        await self.store.write("opportunity_claim", {k: params[k] for k in CLAIM})
        oid, created = await self.client.create_opportunity({**fields, "contactId": contact_id})
        if not created:
            await self.client.update_opportunity(oid, fields)
        return oid, created

    # --- webhook posts -----------------------------------------------------------------------------

    async def webhook(self, change: WebhookChange) -> None:
        counts: Counter[str] = self.result.counts["webhooks"]
        url = change.job["webhook_url"]
        if url in self._dead_urls:
            counts["skipped_dead_url"] += 1
            return
        outcome = await webhooks.post(change, self.store, self.client, self.settings.max_attempts)
        counts[outcome] += 1
        if outcome == "dead":
            self._dead_urls.add(url)
            job = change.job
            self.result.dead_urls.append(f"business unit {job['business_unit_id']} ({job['business_unit']})")


async def _still_there(kind: str, ghl_id: str, update: Awaitable[Any]) -> bool:
    """Run the update of a record GHL should still hold. False when GHL says it is gone (400/404): the
    caller then looks it up again before creating, like a record it never pushed."""
    try:
        await update
        return True
    except GhlRequestError as exc:
        if exc.status not in (400, 404):
            raise
        log.warning("GHL %s %s is gone (%s); looking it up again", kind, ghl_id, exc)
        return False
