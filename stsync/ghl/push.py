"""`stsync ghl push`: reconcile GHL with the desired state computed from the mirror.

Contacts first, then opportunities (in stage order), then webhook posts. An item is pushed only when
the hash of its desired fields differs from what GHL last accepted, or a failed attempt is due again.
Every contact carries the ServiceTitan customer id in the contact custom field ``plan.CUSTOMER_ID_FIELD``
(when the location has it). Crash safety: before creating anything we look it up (duplicate search by
email/phone; for a customer with neither, a search by name checked against that custom field; opportunity
search by contact + pipeline) and accept the ids GHL returns in duplicate errors, so a crash between
GHL's success and our bookkeeping never creates a second contact or opportunity. Webhook posts are
claimed in the database before the POST, so a job is never posted twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from stsync.config import Config, required_secret
from stsync.errors import ConfigError, ExitCode
from stsync.ghl import plan
from stsync.ghl.client import GhlClient, GhlRequestError, GhlSettings
from stsync.ghl.plan import backoff, due
from stsync.ghl.store import Store, open_store
from stsync.ghl.webhooks import post_jobs
from stsync.retry import RetryPolicy

log = logging.getLogger("stsync.ghl.push")

KINDS = ("contacts", "opportunities", "all")


@dataclass
class PushResult:
    what: str
    dry_run: bool
    counts: dict[str, Counter[str]] = field(
        default_factory=lambda: {"contacts": Counter(), "opportunities": Counter(), "webhooks": Counter()}
    )
    planned: list[str] = field(default_factory=list)
    planned_total: int = 0
    dead_urls: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def exit_code(self) -> ExitCode:
        bad = sum(c["failed"] + c["dead"] for c in self.counts.values())
        return ExitCode.PARTIAL if bad or self.dead_urls else ExitCode.OK


def make_client(config: Config, transport: httpx.AsyncBaseTransport | None = None) -> GhlClient:
    g = config.ghl
    if not g.location_id:
        raise ConfigError("missing required key 'ghl.location_id'")
    settings = GhlSettings(
        base_url=g.api_base_url,
        location_id=g.location_id,
        token=required_secret(g.token, "ghl.token"),
        requests_per_10s=g.requests_per_10s,
        daily_reserve=g.daily_reserve,
        timeout_seconds=g.timeout_seconds,
        retry=RetryPolicy(attempts=g.retry_attempts, max_seconds=g.retry_max_seconds),
    )
    return GhlClient(settings, transport)


async def push(
    config: Config,
    what: str = "all",
    *,
    dry_run: bool = False,
    limit: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PushResult:
    """Push the differences between the mirror and GHL; ``dry_run`` computes them and writes nothing."""
    result = PushResult(what, dry_run)
    async with open_store(config, dry_run=dry_run, lock=True) as store:
        client = None if dry_run else make_client(config, transport)
        try:
            run = Run(config, store, client, result, limit)
            if what in ("contacts", "all"):
                await run.contacts()
            if what in ("opportunities", "all"):
                await run.opportunities()
                await post_jobs(run)
        finally:
            if client is not None:
                result.requests = client.requests_sent
                await client.__aexit__()
    return result


class Run:
    """One push: configuration, record, client, result, and the --limit budget."""

    def __init__(
        self, config: Config, store: Store, client: GhlClient | None, result: PushResult, limit: int | None
    ) -> None:
        self.config = config
        self.g = config.ghl
        self.store = store
        self.client = client
        self.result = result
        self.limit = limit
        self.pushed = 0
        self.now = datetime.now(UTC)
        self.location = self.g.location_id or ""

    def plan_change(self, line: str) -> bool:
        """Note a planned change; False when the --limit is reached (stop pushing)."""
        self.result.planned_total += 1
        cap = self.limit if self.limit is not None else (20 if self.result.dry_run else None)
        if cap is None or len(self.result.planned) < cap:
            self.result.planned.append(line)
        if self.result.dry_run:
            return True
        if self.limit is not None and self.pushed >= self.limit:
            return False
        self.pushed += 1
        return True

    # --- contacts ----------------------------------------------------------------------------------

    async def contacts(self) -> None:
        counts = self.result.counts["contacts"]
        rows = {r["st_customer_id"]: r for r in await self.store.fetch("contact_rows")}
        id_field: str | None = None  # the customer-id custom field, resolved on first use
        resolved = False
        for cust in await self.store.fetch("desired_contacts", {"mode": "api"}):
            cid = cust["customer_id"]
            fields = plan.contact_fields(cust)
            # The customer id goes into a custom field whose id is only known once GHL is asked, so
            # the hash (also computed by a dry run) covers the id, not the resolved field.
            digest = plan.digest({**fields, "stCustomerId": cid})
            row = rows.get(cid)
            reason = due(row, digest, self.now)
            if reason is None:
                counts["unchanged" if row and row["sync_status"] == "synced" else "skipped"] += 1
                continue
            known = row["ghl_contact_id"] if row else None
            if not self.plan_change(f"contact {'update' if known else 'create'} customer={cid} ({reason})"):
                break
            if self.client is None:
                counts["planned"] += 1
                continue
            if not resolved:
                id_field, resolved = await self._customer_id_field(), True
            if id_field:
                fields["customFields"] = [{"id": id_field, "field_value": str(cid)}]
            if not known and "email" not in fields and "phone" not in fields and not (id_field and "name" in fields):
                await self._contact_failed(
                    cid,
                    digest,
                    row,
                    "customer has no email or phone, and without a name and the contact custom field "
                    f"'{plan.CUSTOMER_ID_FIELD}' GHL cannot find it again",
                    None,
                )
                counts["no_email_or_phone"] += 1
                continue
            try:
                gid, created = await self._push_contact(known, fields, cid, id_field)
            except GhlRequestError as exc:
                await self._contact_failed(cid, digest, row, str(exc), backoff((row or {}).get("attempts", 0) + 1))
                counts["dead" if (row or {}).get("attempts", 0) + 1 >= self.g.max_attempts else "failed"] += 1
                continue
            await self.store.write(
                "contact_synced", {"customer_id": cid, "ghl_id": gid, "location_id": self.location, "hash": digest}
            )
            counts["created" if created else "updated"] += 1

    async def _customer_id_field(self) -> str | None:
        """Id of the contact custom field holding the ServiceTitan customer id; None when the location has none."""
        assert self.client is not None
        try:
            found = await self.client.custom_field(plan.CUSTOMER_ID_FIELD, "contact", "the ServiceTitan customer id")
        except ConfigError:
            log.warning(
                "GHL contact custom field %r not found; contacts will not carry the customer id", plan.CUSTOMER_ID_FIELD
            )
            return None
        return str(found["id"])

    async def _push_contact(
        self, known: str | None, fields: dict[str, Any], customer_id: int, id_field: str | None
    ) -> tuple[str, bool]:
        """Update the known contact, else the one GHL already has for this customer, else create it."""
        assert self.client is not None
        update = {k: v for k, v in fields.items() if k != "source"}
        if known and await _still_there("contact", known, self.client.update_contact(known, update)):
            return known, False
        # Look up before creating: a crash after GHL created the contact but before we recorded it
        # must not create a second one.
        if "email" in fields or "phone" in fields:
            found = await self.client.find_duplicate(fields.get("email"), fields.get("phone"))
        else:
            found = await self._find_by_customer_id(fields["name"], customer_id, id_field)
        if found:
            await self.client.update_contact(found, update)
            return found, False
        return await self.client.upsert_contact(fields), True

    async def _find_by_customer_id(self, name: str, customer_id: int, id_field: str | None) -> str | None:
        """A contact without email or phone: the one named ``name`` carrying our customer id."""
        assert self.client is not None
        if not id_field:
            return None
        for c in await self.client.search_contacts(1, 100, query=name):
            for f in c.get("customFields") or []:
                if isinstance(f, dict) and f.get("id") == id_field and str(f.get("value")) == str(customer_id):
                    return str(c["id"])
        return None

    async def _contact_failed(
        self, cid: int, digest: str, row: Mapping[str, Any] | None, error: str, retry_in: str | None
    ) -> None:
        await self.store.write(
            "contact_failed",
            {
                "customer_id": cid,
                "location_id": self.location,
                "hash": digest,
                "error": error[:1000],
                "retry_in": retry_in,
                "max_attempts": self.g.max_attempts,
            },
        )

    # --- opportunities -----------------------------------------------------------------------------

    async def opportunities(self) -> None:
        counts = self.result.counts["opportunities"]
        contacts = {r["st_customer_id"]: r for r in await self.store.fetch("contact_rows")}
        names = {
            r["customer_id"]: " ".join(str(r["name"] or "").split())
            for r in await self.store.fetch("desired_contacts", {"mode": "api"})
        }
        jobs = await self.store.fetch("desired_jobs", {"mode": "api"})
        wants = plan.opportunity_wants(jobs, self.g.install_pipeline, names)
        rows = {(r["st_customer_id"], r["pipeline"]): r for r in await self.store.fetch("opportunity_rows")}
        todo = []
        for want in wants:
            row = rows.get((want.customer_id, want.pipeline))
            stage, status = plan.protect(
                want.job.stage,
                want.job.status,
                row["stage_name"] if row else None,
                row["status"] if row else None,
                want.kind,
                self.g.protected_stages,
            )
            doc = want.doc(stage, status)
            digest = plan.digest(doc)
            reason = due(row, digest, self.now)
            if reason is None:
                counts["unchanged" if row and row["sync_status"] == "synced" else "skipped"] += 1
                continue
            order = plan.stage_order(want.kind)
            todo.append((order.index(stage) if stage in order else 99, want, row, stage, status, digest, reason))
        todo.sort(key=lambda t: (t[0], t[1].customer_id))  # earlier stages first
        for _, want, row, stage, status, digest, reason in todo:
            line = (
                f"opportunity {'update' if row and row['ghl_opportunity_id'] else 'create'} "
                f"customer={want.customer_id} pipeline={want.pipeline} stage={stage!r} status={status}"
                + (f" value={want.job.value}" if want.job.value is not None else "")
                + f" ({reason})"
            )
            if not self.plan_change(line):
                break
            if self.client is None:
                counts["planned"] += 1
                continue
            contact = contacts.get(want.customer_id)
            if not contact or not contact["ghl_contact_id"] or contact["sync_status"] not in ("synced", "pending"):
                counts["waiting_for_contact"] += 1
                continue
            await self._push_opportunity(want, row, stage, status, digest, contact["ghl_contact_id"], counts)

    async def _push_opportunity(
        self,
        want: plan.OpportunityWant,
        row: Mapping[str, Any] | None,
        stage_name: str,
        status: str,
        digest: str,
        contact_id: str,
        counts: Counter[str],
    ) -> None:
        assert self.client is not None
        stage = await self.client.stage(want.pipeline, stage_name)  # ConfigError when missing: stops the run
        fields: dict[str, Any] = {
            "pipelineId": stage.pipeline_id,
            "pipelineStageId": stage.id,
            "name": want.name,
            "status": status,
        }
        if want.job.value is not None:
            fields["monetaryValue"] = float(want.job.value)
        if want.job.technicians:
            techs = await self.client.custom_field(self.g.technicians_field, "opportunity")
            fields["customFields"] = [{"id": techs["id"], "field_value": want.job.technicians}]
        params = {
            "customer_id": want.customer_id,
            "pipeline_id": stage.pipeline_id,
            "pipeline": want.pipeline,
            "job_id": want.job.job_id,
            "bu_id": want.business_unit_id,
            "location_id": self.location,
            "hash": digest,
        }
        try:
            oid, created = await self._upsert_opportunity(row, fields, contact_id)
            if status != "open" and (row is None or row["status"] != status):
                await self.client.set_opportunity_status(oid, status)
        except GhlRequestError as exc:
            attempts = (row or {}).get("attempts", 0) + 1
            await self.store.write(
                "opportunity_failed",
                {
                    **params,
                    "error": str(exc)[:1000],
                    "retry_in": backoff(attempts),
                    "max_attempts": self.g.max_attempts,
                },
            )
            counts["dead" if attempts >= self.g.max_attempts else "failed"] += 1
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
        self, row: Mapping[str, Any] | None, fields: dict[str, Any], contact_id: str
    ) -> tuple[str, bool]:
        assert self.client is not None
        known = row["ghl_opportunity_id"] if row and row["pipeline_id"] == fields["pipelineId"] else None
        if known and await _still_there("opportunity", known, self.client.update_opportunity(known, fields)):
            return known, False
        found = [
            o
            for o in await self.client.search_opportunities(contact_id=contact_id, pipeline_id=fields["pipelineId"])
            if o.get("contactId") in (None, contact_id) and o.get("pipelineId") in (None, fields["pipelineId"])
        ]
        if found:
            oid = str(found[0]["id"])
            await self.client.update_opportunity(oid, fields)
            return oid, False
        oid, created = await self.client.create_opportunity({**fields, "contactId": contact_id})
        if not created:
            await self.client.update_opportunity(oid, fields)
        return oid, created


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
