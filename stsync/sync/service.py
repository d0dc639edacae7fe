"""Wire the configuration to the sync engine: the one place config becomes client and options."""

from __future__ import annotations

from typing import TypeVar

from stsync.config import Config, required_secret
from stsync.errors import ConfigError, UsageError
from stsync.retry import RetryPolicy
from stsync.servicetitan.client import ClientSettings, ServiceTitanClient
from stsync.sync.backfill import Plan
from stsync.sync.engine import run_sync
from stsync.sync.merge import Capture
from stsync.sync.model import Observer, RunResult, SyncOptions, SyncType
from stsync.sync.streams import STREAMS, STREAMS_BY_NAME, select_streams

T = TypeVar("T")


def _required(value: T | None, key: str) -> T:
    if value is None or value == "":
        raise ConfigError(f"missing required key '{key}'")
    return value


def client_settings(config: Config) -> ClientSettings:
    st = config.servicetitan
    return ClientSettings(
        api_base=st.api_base(),
        auth_base=st.auth_base(),
        tenant_id=int(_required(st.tenant_id, "servicetitan.tenant_id")),
        client_id=str(_required(st.client_id, "servicetitan.client_id")),
        client_secret=required_secret(st.client_secret, "servicetitan.client_secret"),
        app_key=required_secret(st.app_key, "servicetitan.app_key"),
        requests_per_second=float(st.requests_per_second),
        page_memory_bytes=int(st.page_memory_mb) * 1024 * 1024,
        timeout_seconds=float(st.timeout_seconds),
        token_cache_dir=st.token_cache_path(),
        retry=RetryPolicy(
            attempts=st.retry_attempts,
            max_seconds=st.retry_max_seconds,
        ),
    )


def capture_settings(config: Config) -> Capture:
    events = config.events
    return Capture(
        install_units=tuple(events.install_units),
        install_unit_ids=tuple(events.install_unit_ids),
        overdue_grace_days=events.overdue_grace_days,
    )


def database_url(config: Config) -> str:
    return required_secret(config.database.url, "database.url")


def check_stream_names(key: str, names: set[str]) -> set[str]:
    """``names``, or a config error naming ``key`` and the first that is no stream."""
    unknown = sorted(names - set(STREAMS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"config error: bad value for '{key}': unknown stream '{unknown[0]}' (known: {', '.join(STREAMS_BY_NAME)})"
        )
    return names


def excluded_streams(config: Config) -> set[str]:
    """The streams not enabled: those ``sync.streams_include`` leaves out (when it names any) and those of
    ``sync.streams_exclude``. A name that is no stream is a config error in either (a typo would sync it)."""
    include = check_stream_names("sync.streams_include", set(config.sync.streams_include))
    exclude = check_stream_names("sync.streams_exclude", set(config.sync.streams_exclude))
    return (set(STREAMS_BY_NAME) - include if include else set()) | exclude


async def sync(
    config: Config,
    sync_type: SyncType,
    stream_names: list[str],
    since: str | None = None,
    dry_run: bool = False,
    include_recent_changes: bool | None = None,
    observer: Observer | None = None,
    emit_events: bool | None = None,
    backfill: Plan | None = None,
) -> RunResult:
    """Run `stsync sync` (or with ``backfill``, `stsync backfill`) as configured. Raises only for run-level
    problems (config, lock, database)."""
    streams = select_streams(stream_names) if stream_names else list(STREAMS)
    excluded = excluded_streams(config)
    streams = [s for s in streams if s.name not in excluded]
    settings = client_settings(config)
    st = config.servicetitan
    options = SyncOptions(
        sync_type=sync_type,
        dsn=database_url(config),
        tenant_id=settings.tenant_id,
        page_size=int(st.page_size),
        include_recent_changes=bool(
            st.include_recent_changes if include_recent_changes is None else include_recent_changes
        ),
        since=since,
        dry_run=dry_run,
        max_concurrency=int(st.max_concurrency),
        connect_timeout=float(config.database.connect_timeout),
        capture=capture_settings(config) if (config.events.capture if emit_events is None else emit_events) else None,
        capture_first_sync=config.events.capture_first_sync,
        backfill=backfill,
    )
    async with ServiceTitanClient(settings) as client:
        return await run_sync(client, streams, options, observer)


async def backfill(
    config: Config, plan: Plan, emit_events: bool = False, observer: Observer | None = None
) -> RunResult:
    """Run `stsync backfill`: ``plan``'s list queries, merged as sync merges, under the run lock; no cursor moves,
    and no events are written unless ``emit_events``."""
    if not plan:
        raise UsageError("nothing to backfill: the plan names no stream")
    excluded = sorted(set(plan) & excluded_streams(config))
    if excluded:
        raise UsageError(
            f"{excluded[0]} is not enabled (sync.streams_include, sync.streams_exclude): enable it to backfill it"
        )
    return await sync(config, "backfill", list(plan), observer=observer, emit_events=emit_events, backfill=plan)
