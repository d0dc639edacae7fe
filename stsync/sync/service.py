"""Wire the configuration to the sync engine: the one place config becomes client and options."""

from __future__ import annotations

from typing import Any

from stsync.errors import ConfigError
from stsync.retry import RetryPolicy
from stsync.servicetitan.client import ClientSettings, ServiceTitanClient
from stsync.sync.engine import Observer, RunResult, SyncOptions, SyncType, run_sync
from stsync.sync.streams import STREAMS, select_streams


def _secret(value: Any, key: str) -> str:
    if value is None:
        raise ConfigError(
            f"missing secret '{key}': set it in the config file, in STSYNC_{key.upper().replace('.', '__')}, "
            f"in a file named by '{key}_file', or as systemd credential '{key}'"
        )
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    if not text:
        raise ConfigError(f"secret '{key}' is empty")
    return text


def _required(value: Any, key: str) -> Any:
    if value is None or value == "":
        raise ConfigError(f"missing required key '{key}'")
    return value


def client_settings(config: Any) -> ClientSettings:
    st = config.servicetitan
    return ClientSettings(
        api_base=st.api_base(),
        auth_base=st.auth_base(),
        tenant_id=int(_required(st.tenant_id, "servicetitan.tenant_id")),
        client_id=str(_required(st.client_id, "servicetitan.client_id")),
        client_secret=_secret(st.client_secret, "servicetitan.client_secret"),
        app_key=_secret(st.app_key, "servicetitan.app_key"),
        requests_per_second=float(st.requests_per_second),
        page_memory_bytes=int(st.page_memory_mb) * 1024 * 1024,
        timeout_seconds=float(st.timeout_seconds),
        token_cache_dir=st.token_cache_path(),
        retry=RetryPolicy(
            attempts=int(getattr(st, "retry_attempts", 8)),
            max_seconds=float(getattr(st, "retry_max_seconds", 300.0)),
        ),
    )


def database_url(config: Any) -> str:
    return _secret(config.database.url, "database.url")


async def sync(
    config: Any,
    sync_type: SyncType,
    stream_names: list[str],
    since: str | None = None,
    dry_run: bool = False,
    include_recent_changes: bool | None = None,
    observer: Observer | None = None,
) -> RunResult:
    """Run `stsync sync` as configured. Raises only for run-level problems (config, lock, database)."""
    streams = select_streams(stream_names) if stream_names else list(STREAMS)
    excluded = set(getattr(getattr(config, "sync", None), "streams_exclude", []) or [])
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
    )
    async with ServiceTitanClient(settings) as client:
        return await run_sync(client, streams, options, observer)
