"""GHL push fixtures: a ServiceTitan mirror synced once per session (copied per test), a GHL sandbox,
and a config pointing at both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from stsync.config import Config, load_config
from stsync.retry import set_no_wait
from tests.sandbox_creds import GHL_LOCATION as LOCATION
from tests.sandbox_creds import GHL_TOKEN as TOKEN
from tests.sandbox_creds import SANDBOX_ENV

SALES, INSTALL, POOL, PLUMBING = 1314, 54670601, 4622, 26143


def st_env(sandbox_url: str, dsn: str) -> dict[str, str]:
    return {
        "STSYNC_DATABASE__URL": dsn,
        "STSYNC_SERVICETITAN__API_BASE_URL": sandbox_url,
        "STSYNC_SERVICETITAN__AUTH_URL": sandbox_url,
        **SANDBOX_ENV,
    }


def sync_mirror(sandbox_url: str, dsn: str, sync_type: str = "full") -> None:
    from stsync.sync.service import sync

    config = load_config(None, st_env(sandbox_url, dsn))
    result = asyncio.run(sync(config, sync_type, []))  # type: ignore[arg-type]
    assert int(result.exit_code) == 0


def default_units(webhook_url: str | None = None) -> list[dict[str, Any]]:
    pool: dict[str, Any] = {
        "id": POOL,
        "name": "Pool",
        "mode": "webhook",
        "sync_enabled": webhook_url is not None,
        "webhook_url": webhook_url or "http://127.0.0.1:9/hooks/none",
    }
    return [
        {"id": SALES, "name": "Sales & Service", "mode": "api", "pipeline": "Sales", "sync_enabled": True},
        {"id": INSTALL, "name": "Install", "mode": "api", "pipeline": "Install", "sync_enabled": True},
        pool,
        {"id": PLUMBING, "name": "Plumbing", "mode": "api", "pipeline": "Sales", "sync_enabled": False},
    ]


def write_config(tmp_path: Path, dsn: str, ghl_url: str, units: list[dict[str, Any]] | None = None, **ghl: Any) -> Path:
    doc = {
        "database": {"url": dsn},
        "ghl": {
            "api_base_url": ghl_url,
            "location_id": LOCATION,
            "token": TOKEN,
            "requests_per_10s": 100_000,
            "business_units": units if units is not None else default_units(),
            **ghl,
        },
    }
    path = tmp_path / f"stsync-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def config_at(path: Path) -> Config:
    return load_config(path, {})


@pytest.fixture(autouse=True)
def _no_retry_wait() -> Iterator[None]:
    set_no_wait(True)
    yield
    set_no_wait(False)


@pytest.fixture(scope="session")
def mirror_template(pg_server: Any, postgresql_noproc: Any) -> Iterator[str]:
    """A database holding a full sync of a small ServiceTitan sandbox (seed 7), used as a template."""
    from stsync.sandbox import Sandbox, SandboxOptions

    name = f"ghl_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(postgresql_noproc.template_dbname)
            )
        )
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        sync_mirror(sb.url, pg_server.dsn_for(name))
    yield name
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def mirror_copies(pg_server: Any, mirror_template: str) -> Iterator[Callable[[], str]]:
    """Make fresh copies of the synced mirror (each call one more database); dropped after the test."""
    names: list[str] = []

    def make() -> str:
        name = f"ghl_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(mirror_template))
            )
        names.append(name)
        return str(pg_server.dsn_for(name))

    yield make
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def mirror_dsn(mirror_copies: Callable[[], str]) -> str:
    """A fresh copy of the synced mirror for one test."""
    return mirror_copies()


def ghl_options(**kw: Any) -> Any:
    from stsync.sandbox.ghl import GhlOptions

    return GhlOptions(**{"seed": 42, "locations": {LOCATION: TOKEN}, "rate_limit": 0, **kw})


@pytest.fixture
def ghl() -> Iterator[Any]:
    from stsync.sandbox.ghl import GhlSandbox

    with GhlSandbox.start(ghl_options()) as g:
        yield g
