"""`stsync config check` and `stsync health --check-api`: try each configured connection and say what failed,
one line per problem, each naming the key to fix."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict

from stsync.config import Config, required_secret
from stsync.db.connect import connect_sync, db_errors, where
from stsync.errors import StsyncError

Purpose = Literal["all", "sync", "ghl", "events"]
PURPOSES: tuple[Purpose, ...] = ("all", "sync", "ghl", "events")


class Check(BaseModel):
    """One connection check: ok, or the error that says what failed (its exit code decides the run's)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    ok: bool
    detail: str
    error: StsyncError | None = None


def _failed(name: str, exc: StsyncError) -> Check:
    return Check(name=name, ok=False, detail=str(exc), error=exc)


def check_database(config: Config, offline: bool = False) -> Check:
    """Connect to the configured database and run ``SELECT 1`` (offline: only that its URL is set)."""
    try:
        dsn = required_secret(config.database.url, "database.url")
        if offline:
            return Check(name="database", ok=True, detail=f"{where(dsn)} (not connected: --offline)")
        with connect_sync(dsn, config.database.connect_timeout) as conn, db_errors("checking the database"):
            conn.execute("SELECT 1")
            version = conn.info.parameter_status("server_version") or "?"
    except StsyncError as exc:
        return _failed("database", exc)
    return Check(name="database", ok=True, detail=f"{where(dsn)}, PostgreSQL {version}")


def check_servicetitan(config: Config, offline: bool = False) -> list[Check]:
    """Every key a sync needs; then (unless offline) a fresh token, not the cached one, and one cheap call
    (the first business unit): a wrong app key or tenant only shows on a call, never on the token."""
    from stsync.retry import RetryPolicy
    from stsync.servicetitan.client import ServiceTitanClient
    from stsync.sync.service import client_settings, excluded_streams

    try:
        excluded_streams(config)
        settings = client_settings(config)
    except StsyncError as exc:
        return [_failed("servicetitan config", exc)]
    if offline:
        return [Check(name="servicetitan config", ok=True, detail="every key set (not called: --offline)")]
    st = config.servicetitan
    settings = dataclasses.replace(
        settings,
        token_cache_dir=None,
        outage_seconds=5.0,  # a check says "unreachable" after seconds, not after a sync's patience
        retry=RetryPolicy(attempts=min(2, st.retry_attempts), max_seconds=min(30.0, st.retry_max_seconds)),
    )

    async def call() -> list[Check]:
        async with ServiceTitanClient(settings) as client:
            try:
                await client.authenticate()
            except StsyncError as exc:
                return [_failed("servicetitan token", exc)]
            token = Check(name="servicetitan token", ok=True, detail=f"{settings.auth_base.rstrip('/')}/connect/token")
            try:
                client.release(await client.list_page("settings", "business-units", 1, 1, {}))
            except StsyncError as exc:
                return [token, _failed("servicetitan api", exc)]
            return [token, Check(name="servicetitan api", ok=True, detail=client.url("settings", "business-units"))]

    return asyncio.run(call())


def check_token_cache(config: Config) -> Check:
    """Whether the token cache's directory can be written. Without it every run asks for a token, which is
    slower but not wrong: a failure here is reported and leaves the exit code alone."""
    import tempfile

    directory = config.servicetitan.token_cache_path()
    if directory is None:
        return Check(name="token cache", ok=True, detail="off: every run asks for a token")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return Check(name="token cache", ok=False, detail=f"cannot write {directory}: {exc.strerror or exc}")
    return Check(name="token cache", ok=True, detail=str(directory))


def check_ghl(config: Config, offline: bool = False) -> list[Check]:
    """The location's pipelines, with the token (a refused token or a location it cannot see shows here), then
    every stage the configured pipelines map to: one line per stage the location lacks."""
    from stsync.ghl.service import check_location

    try:
        detail, problems = asyncio.run(check_location(config, offline))
    except StsyncError as exc:
        return [_failed("ghl location", exc)]
    location = Check(name="ghl location", ok=True, detail=detail)
    if offline:
        return [location]
    if not problems:
        return [location, Check(name="ghl stages", ok=True, detail="every mapped stage found")]
    return [location, *(_failed("ghl stages", p) for p in problems)]


def check_events(config: Config) -> Check:
    """The settings `events poll` and its actions are made from (the workflows file is `stsync workflows check`)."""
    from stsync.events.service import action_settings, poll_settings

    try:
        poll_settings(config)
        action_settings(config)
    except StsyncError as exc:
        return _failed("events config", exc)
    return Check(name="events config", ok=True, detail="poll and action settings valid")


def servicetitan_configured(config: Config) -> bool:
    st = config.servicetitan
    return bool(st.client_id or st.tenant_id)


def check_config(config: Config, purpose: Purpose = "all", offline: bool = False) -> list[Check]:
    """Every check ``purpose`` calls for, in order; none stops the others. ``all`` checks the sections that are
    configured and says which it skipped; ``sync``, ``ghl`` and ``events`` require theirs."""
    checks = [check_database(config, offline)]
    if purpose == "sync" or (purpose == "all" and servicetitan_configured(config)):
        checks += check_servicetitan(config, offline)
        checks.append(check_token_cache(config))
    elif purpose == "all":
        checks.append(Check(name="servicetitan", ok=True, detail="skipped: servicetitan.client_id is not set"))
    if purpose == "ghl" or (purpose in ("all", "events") and config.ghl.location_id):
        checks += check_ghl(config, offline)
    elif purpose == "all":
        checks.append(Check(name="ghl", ok=True, detail="skipped: ghl.location_id is not set"))
    if purpose in ("all", "events"):
        checks.append(check_events(config))
    return checks
