"""Wire the configuration to `stsync health` and `stsync gap-analysis`: the one place their config becomes
settings."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from stsync.config import Config, required_secret
from stsync.errors import ConfigError, LockedError, StsyncError
from stsync.ops.catalog import CatalogSettings
from stsync.ops.gaps import GapReport, GapSettings, analyze
from stsync.ops.heal import HealSettings, repair
from stsync.ops.health import Check as HealthCheck
from stsync.ops.health import HealthSettings, Limits, Report, Status, check
from stsync.ops.history import HistorySettings
from stsync.ops.state import StateSettings
from stsync.servicetitan.client import ServiceTitanClient
from stsync.sync.service import check_stream_names, client_settings, database_url, excluded_streams, sync
from stsync.sync.streams import STREAMS, select_streams


def health_settings(config: Config) -> HealthSettings:
    h = config.health
    excluded = excluded_streams(config)
    check_stream_names("health.stream_every_minutes", set(h.stream_every_minutes))
    return HealthSettings(
        dsn=required_secret(config.database.url, "database.url"),
        tenant_id=config.servicetitan.tenant_id,
        streams=tuple((s.name, h.every_minutes(s.name)) for s in STREAMS if s.name not in excluded),
        location_id=config.ghl.location_id or None,
        limits=Limits(**{f.name: getattr(h, f.name) for f in dataclasses.fields(Limits)}),
        connect_timeout=config.database.connect_timeout,
    )


def health(config: Config, now: datetime | None = None, check_api: bool = False) -> Report:
    """`stsync health`: every check as of ``now`` (default: the present); with ``check_api``, also a token and
    one cheap call to each API that is configured (`config check`'s), CRITICAL when refused or unreachable."""
    report = check(health_settings(config), now or datetime.now(UTC))
    if check_api:
        report.checks += api_checks(config)
    return report


def api_checks(config: Config) -> list[HealthCheck]:
    from stsync.checks import check_ghl, check_servicetitan, servicetitan_configured

    found = []
    if servicetitan_configured(config):
        found += check_servicetitan(config)
    if config.ghl.location_id:
        found += [c for c in check_ghl(config) if c.name == "ghl location"]  # stages are `config check`'s
    if not found:
        return [HealthCheck("api", Status.OK, "no API configured")]
    return [HealthCheck(c.name, Status.OK if c.ok else Status.CRITICAL, c.detail) for c in found]


def heal(config: Config, report: Report, now: datetime | None = None) -> list[str]:
    """`stsync health --heal`: the bounded repairs ``report`` calls for, one line each (also for what it would
    not do, and why). A catch-up incremental of the stale streams, under the run lock, never beside a run that
    holds it; expired workflow leases released; GHL dead letters requeued once after a backoff. Nothing is
    deleted. The database must be reachable and migrated, or nothing is tried."""
    database = next((c for c in report.checks if c.name == "database"), None)
    if database is None or database.status != Status.OK:
        return [f"heal: nothing healed: the database is not ready ({database.summary if database else 'unchecked'})"]
    lines: list[str] = []
    stale = [s.name for s in report.streams if s.status != Status.OK and s.last_success is not None]
    never = [s.name for s in report.streams if s.last_success is None]
    if stale:
        names = ", ".join(stale)
        try:
            result = asyncio.run(sync(config, "incremental", stale))
        except LockedError:
            lines.append(f"heal: no catch-up of {names}: another run holds the sync lock (see the locks check)")
        except StsyncError as exc:
            lines.append(f"heal: the catch-up incremental of {names} could not run: {exc}")
        else:
            t = result.totals()
            lines.append(
                f"healed: caught up {names} with one incremental (exit {int(result.exit_code)}): fetched "
                f"{t['fetched']}, created {t['created']}, updated {t['updated']}, quarantined {t['quarantined']}"
            )
    if never:
        lines.append(
            f"heal: not healed: {', '.join(never)} never synced; a first `stsync sync full` is an operator's call"
        )
    settings = HealSettings(
        dsn=required_secret(config.database.url, "database.url"),
        location_id=config.ghl.location_id or None,
        dead_letters_after=timedelta(minutes=config.health.heal_dead_letters_after_minutes),
        connect_timeout=config.database.connect_timeout,
    )
    try:
        lines += repair(settings, now or datetime.now(UTC))
    except StsyncError as exc:
        lines.append(f"heal: the repairs could not run: {exc}")
    return lines or ["heal: nothing to heal"]


def ping(url: str, report: Report | None, timeout: float) -> str | None:
    """Report to a healthchecks.io-style URL: ``/start`` before the checks (``report`` None), then the URL itself
    when they pass (OK or WARNING) or ``/fail``, with the report's lines as the body. None when it went through,
    else one line saying why, naming only the host: the URL's path is the check's secret."""
    import httpx

    from stsync.ops.health import Status

    base = url.rstrip("/")
    if report is None:
        target, body = f"{base}/start", ""
    else:
        ok = report.status in (Status.OK, Status.WARNING)
        target, body = (base if ok else f"{base}/fail"), "\n".join(report.lines()) + "\n"
    host = httpx.URL(base).host or "?"
    try:
        response = httpx.post(target, content=body.encode(), timeout=timeout)
    except httpx.HTTPError as exc:
        return f"ping to {host} failed: {type(exc).__name__}"
    if response.status_code >= 400:
        return f"ping to {host} failed: HTTP {response.status_code}"
    return None


def gap_analysis(
    config: Config, stream_names: list[str], deep: bool = False, mark_deleted: bool = True, now: datetime | None = None
) -> GapReport:
    """`stsync gap-analysis`: the selected streams (default: every stream synced) against ServiceTitan."""
    excluded = excluded_streams(config)
    streams = select_streams(stream_names) if stream_names else [s for s in STREAMS if s.name not in excluded]
    settings = GapSettings(
        dsn=database_url(config),
        streams=tuple(s.name for s in streams),
        deep=deep,
        page_size=int(config.servicetitan.page_size),
        mark_deleted=mark_deleted,
        connect_timeout=config.database.connect_timeout,
    )

    async def run() -> GapReport:
        async with ServiceTitanClient(client_settings(config)) as client:
            return await analyze(client, settings, now or datetime.now(UTC))

    return asyncio.run(run())


def state_settings(config: Config) -> StateSettings:
    tenant = config.servicetitan.tenant_id
    if tenant is None:
        raise ConfigError("missing required key 'servicetitan.tenant_id' (the run lock is the tenant's)")
    return StateSettings(database_url(config), int(tenant), config.database.connect_timeout)


def history_settings(config: Config) -> HistorySettings:
    return HistorySettings(database_url(config), config.database.connect_timeout)


def catalog_settings(config: Config) -> CatalogSettings:
    return CatalogSettings(database_url(config), frozenset(excluded_streams(config)), config.database.connect_timeout)
