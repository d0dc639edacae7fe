"""The GHL commands' service functions: the only GHL code that sees ``Config``. Each builds the small
settings objects the parts below take, then calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from stsync.config import Config, required_secret
from stsync.errors import ConfigError
from stsync.ghl import pull as pull_module
from stsync.ghl import push as push_module
from stsync.ghl import stages, store
from stsync.ghl.changes import PushProgress, PushResult
from stsync.ghl.client import GhlClient, GhlSettings
from stsync.ghl.settings import BusinessUnitSeed, PushSettings, StoreSettings
from stsync.ghl.stages import PipelineStages
from stsync.retry import RetryPolicy


def store_settings(config: Config) -> StoreSettings:
    seeds = tuple(
        BusinessUnitSeed(bu.id, bu.name, bu.sync_enabled, bu.mode, bu.pipeline, bu.webhook_url)
        for bu in config.ghl.business_units
    )
    return StoreSettings(
        dsn=required_secret(config.database.url, "database.url"),
        connect_timeout=config.database.connect_timeout,
        business_units=seeds,
        location_id=config.ghl.location_id,
    )


def _location(config: Config) -> str:
    if not config.ghl.location_id:
        raise ConfigError("missing required key 'ghl.location_id'")
    return config.ghl.location_id


def push_settings(config: Config) -> PushSettings:
    g = config.ghl
    return PushSettings(
        location_id=config.ghl.location_id or "",  # a dry run needs none; the client checks it
        max_attempts=g.max_attempts,
        install_pipeline=g.install_pipeline,
        protected_stages=g.protected_stages,
        technicians_field=g.technicians_field,
        daily_request_budget=g.daily_request_budget,
        concurrency=g.concurrency,
        pipelines=tuple(
            PipelineStages.of(name, g.pipeline_kind(name), dict(p.stages)) for name, p in g.pipelines.items()
        ),
    )


def client_settings(config: Config) -> GhlSettings:
    g = config.ghl
    return GhlSettings(
        base_url=g.api_base_url,
        location_id=_location(config),
        token=required_secret(g.token, "ghl.token"),
        requests_per_10s=g.requests_per_10s,
        daily_reserve=g.daily_reserve,
        timeout_seconds=g.timeout_seconds,
        retry=RetryPolicy(attempts=g.retry_attempts, max_seconds=g.retry_max_seconds),
    )


def make_client(config: Config, transport: httpx.AsyncBaseTransport | None = None) -> GhlClient:
    return GhlClient(client_settings(config), transport)


async def push(
    config: Config,
    what: str = "all",
    *,
    dry_run: bool = False,
    limit: int | None = None,
    max_requests: int | None = None,
    full: bool = False,
    progress: Callable[[PushProgress], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PushResult:
    """`stsync ghl push`: plan, then (unless ``dry_run``) apply the first ``limit`` changes, within
    ``max_requests`` and the daily request budget; ``full`` compares every customer, not only those changed."""
    settings, stored = push_settings(config), store_settings(config)
    if dry_run:
        return await push_module.push(stored, settings, None, what, limit=limit, full=full)
    async with make_client(config, transport) as client:
        return await push_module.push(
            stored, settings, client, what, limit=limit, max_requests=max_requests, full=full, progress=progress
        )


async def check_location(
    config: Config, offline: bool = False, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[str, list[ConfigError]]:
    """`config check`: what was found of the location's pipelines, read with the token (AuthError when GHL
    refuses it), and every mapped stage of the configured pipelines (those of the business units in api mode,
    and those ``ghl.pipelines`` lists) the location lacks. Offline: only that the keys are set and the mapping is
    well formed."""
    g = config.ghl
    names = sorted({bu.pipeline for bu in g.business_units if bu.mode == "api" and bu.pipeline} | set(g.pipelines))
    settings = push_settings(config)
    client_config = client_settings(config)  # every key the client needs
    mappings = [settings.stages_for(name) for name in names]
    if offline:
        return f"{client_config.location_id} (not called: --offline)", []
    async with make_client(config, transport) as client:
        found = await client.pipelines()
        problems = await stages.problems(client, mappings, settings.location_id)
    listed = ", ".join(names) or "none mapped"
    return f"{client_config.location_id}: {len(found)} pipelines (configured: {listed})", problems


async def pipelines(config: Config, transport: httpx.AsyncBaseTransport | None = None) -> list[dict[str, Any]]:
    """`stsync ghl pipelines`: the location's pipelines and their stages, as GHL lists them."""
    async with make_client(config, transport) as client:
        return await client.pipelines()


async def pull(
    config: Config,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[pull_module.PullProgress], None] = lambda _: None,
) -> dict[str, int]:
    """`stsync ghl pull`."""
    async with make_client(config, transport) as client:
        return await pull_module.pull(store_settings(config), client, progress)


async def set_business_unit(config: Config, bu_id: int, **changes: Any) -> None:
    await store.set_business_unit(store_settings(config), bu_id, **changes)


async def list_business_units(config: Config) -> list[dict[str, Any]]:
    return await store.list_business_units(store_settings(config))


async def statistics(config: Config, dead_limit: int = 20) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return await store.statistics(store_settings(config), dead_limit)


async def job_status(config: Config, job_id: int) -> dict[str, Any]:
    return await store.job_status(store_settings(config), job_id)


async def requeue(config: Config, dead: bool) -> dict[str, int]:
    return await store.requeue(store_settings(config), dead)
