"""Wire the configuration to `stsync events` and `stsync workflows`: the one place their config becomes settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from stsync.config import Config, required_secret
from stsync.errors import ConfigError, UsageError
from stsync.events.actions import Actions, ActionSettings, SmtpSettings
from stsync.events.definitions import Workflow, read_workflows
from stsync.events.poll import Clock, PollResult, PollSettings, poll, system_clock
from stsync.events.store import EventStore, jsonb, open_events
from stsync.ghl.service import client_settings, push_settings


def _dsn(config: Config) -> str:
    return required_secret(config.database.url, "database.url")


def poll_settings(config: Config, limit: int | None = None, dry_run: bool = False) -> PollSettings:
    events = config.events
    # A GHL action retries within the push's client (ghl.retry_max_seconds): the step's lease must outlast that,
    # or another poll would take the step over while it runs.
    longest = config.ghl.retry_max_seconds + 2 * config.ghl.timeout_seconds
    if config.ghl.location_id and events.lease_seconds < longest:
        raise ConfigError(
            f"config error: bad value for 'events.lease_seconds': must be at least {longest:g} "
            "(ghl.retry_max_seconds + 2 x ghl.timeout_seconds), the longest a GHL action may take"
        )
    return PollSettings(
        batch=events.batch,
        lease_seconds=events.lease_seconds,
        max_attempts=events.max_attempts,
        retry_base_seconds=events.retry_base_seconds,
        overdue_grace_days=events.overdue_grace_days,
        estimate_open_days=events.estimate_open_days,
        limit=limit,
        dry_run=dry_run,
    )


def action_settings(config: Config, env: dict[str, str] | None = None) -> ActionSettings:
    """Only what the configured sections give: an action whose section is missing fails with a line saying so."""
    smtp = None
    s = config.smtp
    if s.host:
        if not s.from_address:
            raise ConfigError("config error: 'smtp.from_address' is required with smtp.host")
        password = s.password.get_secret_value() if s.password is not None else None
        smtp = SmtpSettings(s.host, s.port, s.tls, s.from_address, s.user, password, s.timeout_seconds)
    ghl = None
    g = config.ghl
    if g.location_id and g.token is not None and g.token.get_secret_value():
        ghl = client_settings(config)
    stages = push_settings(config) if g.location_id else None
    return ActionSettings(timeout_seconds=config.events.timeout_seconds, smtp=smtp, ghl=ghl, stages=stages, env=env)


async def run_poll(
    config: Config,
    limit: int | None = None,
    dry_run: bool = False,
    clock: Clock = system_clock,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PollResult:
    """`stsync events poll`."""
    settings = poll_settings(config, limit, dry_run)
    actions_settings = action_settings(config)
    async with (
        open_events(_dsn(config), config.database.connect_timeout) as store,
        Actions(actions_settings, store, transport) as actions,
    ):
        return await poll(store, settings, actions, clock)


def check_workflows(path: Path) -> list[Workflow]:
    """`stsync workflows check`: every definition of the file, checked; WorkflowError (78) on the first problem."""
    return read_workflows(path)


async def load_workflows(config: Config, path: Path, now: datetime | None = None) -> list[dict[str, Any]]:
    """`stsync workflows load`: check the whole file, then make its definitions the current ones in one
    transaction. A workflow missing from the file stops matching new events; its instances go on."""
    workflows = read_workflows(path)
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        return await store_workflows(store, workflows, str(path), now)


async def store_workflows(
    store: EventStore, workflows: list[Workflow], source: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    current = {r["name"]: r["version_hash"] for r in await store.rows("current_workflows")}
    at = now or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    async with store.transaction("loading workflows"):
        await store.rows("retire_definitions")
        for wf in workflows:
            await store.rows(
                "load_definition",
                {"name": wf.name, "version_hash": wf.version_hash, "trigger_event": wf.trigger,
                 "enabled": wf.enabled, "definition": jsonb(wf.definition), "source_file": source, "now": at},
            )  # fmt: skip
            before = current.get(wf.name)
            change = "unchanged" if before == wf.version_hash else ("new" if before is None else "changed")
            out.append({"name": wf.name, "trigger": wf.trigger, "version": wf.version_hash[:12], "change": change})
    for name in sorted(set(current) - {w.name for w in workflows}):
        out.append({"name": name, "trigger": None, "version": None, "change": "removed"})
    return out


async def list_workflows(config: Config) -> list[dict[str, Any]]:
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        return await store.rows("workflows_list")


async def workflows_status(config: Config, clock: Clock = system_clock) -> dict[str, Any]:
    """`stsync workflows status`: instances by state, steps due and dead, the oldest unprocessed event."""
    now = clock()
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        instances: dict[str, dict[str, int]] = {}
        for r in await store.rows("status_instances"):
            instances.setdefault(r["workflow_name"], {})[r["state"]] = int(r["n"])
        steps = await store.one("status_steps", {"now": now}) or {}
        events = await store.one("status_events") or {}
        dead = await store.rows("dead_steps")
    oldest = events.get("oldest_pending")
    return {
        "instances": instances,
        "steps": {k: int(v or 0) for k, v in steps.items()},
        "pending_events": int(events.get("pending") or 0),
        "oldest_pending_event_age_seconds": round((now - oldest).total_seconds()) if oldest else None,
        "dead_letters": dead,
    }


async def retry_dead(config: Config, instance_id: int | None = None, clock: Clock = system_clock) -> list[int]:
    """`stsync workflows retry`: dead steps wait again, due now; the instances revived."""
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        return [r["id"] for r in await store.rows("retry_dead", {"now": clock(), "instance_id": instance_id})]


async def list_events(
    config: Config, event_type: str | None, since: datetime | None, limit: int = 50
) -> list[dict[str, Any]]:
    from stsync.sync.streams import EVENT_STREAMS

    if event_type is not None and event_type not in EVENT_STREAMS:
        raise UsageError(f"unknown event type '{event_type}' (known: {', '.join(sorted(EVENT_STREAMS))})")
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        return await store.rows("events_list", {"type": event_type, "since": since, "limit": limit})


async def explain_event(config: Config, event_id: int) -> dict[str, Any]:
    """`stsync events explain`: the event, each workflow's verdict on it, and the steps of its instances."""
    async with open_events(_dsn(config), config.database.connect_timeout) as store:
        event = await store.one("event", {"id": event_id})
        if event is None:
            raise UsageError(f"no event {event_id} (see `stsync events list`)")
        verdicts = await store.rows("verdicts", {"id": event_id})
        ids = [v["instance_id"] for v in verdicts if v["instance_id"] is not None]
        steps = await store.rows("instance_steps", {"ids": ids}) if ids else []
        triggered = [r for r in await store.rows("current_workflows") if r["trigger_event"] == event["event_type"]]
    return {
        "event": event,
        "verdicts": verdicts,
        "steps": steps,
        "workflows_on_trigger": [r["name"] for r in triggered],
    }
