"""What a workflow step does: each action is one call, given the step, its context and its idempotency key.

An action returns a short detail (recorded on its attempt) or raises ``ActionFailed``, which says whether
trying again later can help. URLs of webhooks are secrets: messages name only their host.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import orjson

from stsync.errors import StsyncError
from stsync.events.definitions import (
    EmailStep,
    GhlMoveStep,
    GhlTagStep,
    GhlUpsertStep,
    GhlWebhookStep,
    HttpPostStep,
    LogStep,
    render,
)
from stsync.events.store import EventStore
from stsync.ghl.client import GhlClient, GhlRequestError, GhlSettings
from stsync.ghl.plan import progress
from stsync.ghl.settings import PushSettings
from stsync.httplog import SECRET_PATH, event_hooks
from stsync.masking import mask_urls, mask_webhook

log = logging.getLogger("stsync.events")


class ActionFailed(Exception):
    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str  # starttls | ssl | none
    from_address: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30


@dataclass(frozen=True)
class ActionSettings:
    timeout_seconds: float = 30
    smtp: SmtpSettings | None = None
    ghl: GhlSettings | None = None  # the GHL actions go through the push's client: its pace, retries and errors
    stages: PushSettings | None = None  # the push's stage mapping and protected stages
    env: dict[str, str] | None = field(default=None, repr=False)  # where url_env is looked up (os.environ)


class Actions:
    """Runs steps' actions over one HTTP client; ``async with`` it."""

    def __init__(self, settings: ActionSettings, store: EventStore, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.store = store
        self._transport = transport
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds)),
            transport=transport,
            event_hooks=event_hooks(),
        )
        self._ghl: GhlClient | None = None

    async def __aenter__(self) -> Actions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        if self._ghl is not None:
            await self._ghl.__aexit__()

    def _client(self, action: str) -> GhlClient:
        if self.settings.ghl is None:
            raise ActionFailed(f"{action} needs ghl.location_id and ghl.token in the config", False)
        if self._ghl is None:
            self._ghl = GhlClient(self.settings.ghl, self._transport)
        return self._ghl

    async def run(self, step: Any, context: dict[str, Any], key: str) -> dict[str, Any]:
        match step:
            case LogStep():
                message = str(render(step.message, context))
                log.info("workflow %s: %s", context["workflow"], message)
                return {"message": message}
            case HttpPostStep():
                env = os.environ if self.settings.env is None else self.settings.env
                url = env.get(step.url_env)
                if not url:
                    raise ActionFailed(f"environment variable {step.url_env} (the URL of http.post) is not set", False)
                return await self._post(
                    url, render(step.body, context) if step.body is not None else _default(context), key
                )
            case GhlWebhookStep():
                bu = context["entity"].get("business_unit_id")
                row = await self.store.one("business_unit_webhook", {"id": bu}) if bu is not None else None
                if row is None or not row["webhook_url"]:
                    raise ActionFailed(
                        f"business unit {bu} has no webhook_url (set one with `stsync bu set {bu} --webhook-url …`)",
                        False,
                    )
                body = render(step.body, context) if step.body is not None else _default(context)
                return await self._post(row["webhook_url"], body, key)
            case EmailStep():
                return await self._email(step, context, key)
        return await self._ghl_action(step, context)

    async def _ghl_action(self, step: Any, context: dict[str, Any]) -> dict[str, Any]:
        try:
            match step:
                case GhlTagStep():
                    return await self._tag(step, context)
                case GhlMoveStep():
                    return await self._move(step, context)
                case GhlUpsertStep():
                    return await self._upsert(context)
        except GhlRequestError as exc:  # GHL refused this record (4xx): trying again will not help
            raise ActionFailed(exc.message, False) from None
        except StsyncError as exc:  # GHL unreachable, retries used up, the token refused: a later poll may pass
            raise ActionFailed(exc.message) from None
        raise ActionFailed(f"action {step.action} is not available in this version of stsync", False)

    async def _post(self, url: str, body: Any, key: str) -> dict[str, Any]:
        where = mask_webhook(url)
        try:
            resp = await self._http.post(
                url,
                content=orjson.dumps(body, default=str),
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
                extensions=SECRET_PATH,
            )
        except httpx.HTTPError as exc:
            raise ActionFailed(f"POST {where}: {mask_urls(str(exc) or type(exc).__name__)}") from None
        if resp.status_code >= 300:
            retryable = resp.status_code in (408, 409, 425, 429) or resp.status_code >= 500
            raise ActionFailed(f"POST {where} answered HTTP {resp.status_code}", retryable)
        return {"status": resp.status_code}

    async def _email(self, step: EmailStep, context: dict[str, Any], key: str) -> dict[str, Any]:
        smtp = self.settings.smtp
        if smtp is None:
            raise ActionFailed("the email action needs smtp.host and smtp.from_address in the config", False)
        to = [str(render(t, context)) for t in step.to]
        to = [t for t in to if t]
        if not to:
            raise ActionFailed("no recipient: every address of 'to' is empty for this record", False)
        message = EmailMessage()
        message["From"] = smtp.from_address
        message["To"] = ", ".join(to)
        message["Subject"] = str(render(step.subject, context))
        # The same Message-ID on every attempt of the step: a mail system that dedupes can.
        message["Message-ID"] = f"<{key}@{smtp.from_address.rpartition('@')[2] or 'stsync.invalid'}>"
        message.set_content(str(render(step.body, context)))
        try:
            await asyncio.to_thread(_send, smtp, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise ActionFailed(
                f"the SMTP server refused every recipient ({', '.join(exc.recipients)})", False
            ) from None
        except smtplib.SMTPAuthenticationError:
            raise ActionFailed("the SMTP server refused smtp.user and smtp.password", False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ActionFailed(f"SMTP {smtp.host}:{smtp.port}: {str(exc) or type(exc).__name__}") from None
        return {"to": to, "message_id": message["Message-ID"]}

    @property
    def location(self) -> str | None:
        """The GHL location the actions work on, if one is configured."""
        return self.settings.ghl.location_id if self.settings.ghl is not None else None

    def _location(self) -> str:
        assert self.settings.ghl is not None
        return self.settings.ghl.location_id

    async def _contact(self, context: dict[str, Any]) -> str:
        customer = context["entity"].get("customer_id")
        row = await self.store.one("ghl_contact", {"customer_id": customer, "location_id": self._location()})
        if row is None:
            # The push has not made the contact yet: it may by the next attempt.
            raise ActionFailed(f"customer {customer} has no GHL contact in location {self._location()} yet")
        return str(row["ghl_contact_id"])

    async def _tag(self, step: GhlTagStep, context: dict[str, Any]) -> dict[str, Any]:
        client = self._client(step.action)
        contact = await self._contact(context)
        tag = str(render(step.tag, context))
        method = "POST" if step.action == "ghl.add_tag" else "DELETE"
        await client.request(method, f"/contacts/{contact}/tags", json={"tags": [tag]}, ok=(200, 201))
        return {"contact_id": contact, "tag": tag}

    async def _move(self, step: GhlMoveStep, context: dict[str, Any]) -> dict[str, Any]:
        """Move the record's opportunity forward to ``step.stage``; never back (that is the push's to decide,
        from the mirror). The bookkeeping learns the new stage, so the push's protected stages hold."""
        client = self._client(step.action)
        stages = self.settings.stages or PushSettings(location_id=self._location())
        entity = context["entity"]
        pipeline = step.pipeline
        if pipeline is None:
            bu = await self.store.one("business_unit_route", {"id": entity.get("business_unit_id")})
            pipeline = bu["pipeline"] if bu is not None else None
            if not pipeline:
                raise ActionFailed(f"business unit {entity.get('business_unit_id')} has no pipeline; "
                                   "give the step a pipeline", False)  # fmt: skip
        mapping = stages.stages_for(pipeline)
        if progress(step.stage, mapping.kind) < 0:
            raise ActionFailed(f"'{step.stage}' is not a stage of {mapping.kind} pipeline '{pipeline}'", False)
        row = await self.store.one(
            "ghl_opportunity",
            {"customer_id": entity.get("customer_id"), "location_id": self._location(), "pipeline": pipeline},
        )
        if row is None:
            raise ActionFailed(f"customer {entity.get('customer_id')} has no opportunity in '{pipeline}' yet")
        current = mapping.stage_of(row["stage_name"], row["stage_id"])
        if current is not None and progress(step.stage, mapping.kind) <= progress(current, mapping.kind):
            return {"opportunity_id": row["ghl_opportunity_id"], "not_moved": f"already at {current}"}
        target = await client.stage(pipeline, mapping.target(step.stage))
        await client.update_opportunity(str(row["ghl_opportunity_id"]), {"pipelineStageId": target.id})
        await self.store.count(
            "opportunity_moved",
            {"location_id": self._location(), "opportunity_id": row["ghl_opportunity_id"], "stage_id": target.id,
             "stage_name": target.name},
        )  # fmt: skip
        return {"opportunity_id": row["ghl_opportunity_id"], "from": current, "to": step.stage}

    async def _upsert(self, context: dict[str, Any]) -> dict[str, Any]:
        """The push owns a contact's fields: the step makes the customer's contact due, and the next
        `ghl push` upserts it with its own rules."""
        customer = context["entity"].get("customer_id")
        if customer is None:
            raise ActionFailed("the record has no customer_id", False)
        location = self._location() if self.settings.ghl is not None else None
        if location is None:
            raise ActionFailed("ghl.upsert_contact needs ghl.location_id in the config", False)
        await self.store.count("contact_due", {"customer_id": customer, "location_id": location})
        return {"queued_for_push": customer}


def _send(smtp: SmtpSettings, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.tls == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.tls == "starttls":
            client.starttls(context=context)
        if smtp.user and smtp.password:
            client.login(smtp.user, smtp.password)
        client.send_message(message)


def _default(context: dict[str, Any]) -> dict[str, Any]:
    """The body of a webhook step that gives none: the event and the record's ids and typed fields."""
    event = context["event"]
    return {
        "event": event["type"],
        "event_id": event["id"],
        "workflow": context["workflow"],
        "entity": event["entity"],
        "id": context["entity"].get("id"),
        "record": context["entity"],
    }
