"""Shared fixtures: one PostgreSQL server per session, the schema built once into a template database,
and a fresh copy of it for every test that asks for ``postgresql`` or ``db_dsn``; a private cache home.

The server is our own EmbeddedPostgres (started on first use), or an existing server named by
``STSYNC_TEST_PG_DSN`` (its user must be allowed to create databases).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.factories.noprocess import xdistify_dbname
from pytest_postgresql.janitor import DatabaseJanitor

from stsync.db.migrations import migrate
from stsync.sandbox.postgres import EmbeddedPostgres


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str | None = None

    def dsn_for(self, dbname: str) -> str:
        if self.password is None:
            return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"
        return make_conninfo(host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname)

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server: host, port, user, dsn (of the ``postgres`` database)."""
    external = os.environ.get("STSYNC_TEST_PG_DSN")
    if external:
        info = conninfo_to_dict(external)
        yield PgServer(
            host=str(info.get("host") or "127.0.0.1"),
            port=int(info.get("port") or 5432),
            user=str(info.get("user") or "postgres"),
            password=str(info["password"]) if info.get("password") else None,
        )
        return
    with EmbeddedPostgres() as pg:
        yield PgServer(host=pg.host, port=pg.port, user=pg.user)


def apply_migrations(host: str, port: int | str, user: str, dbname: str, password: str | None, **_: Any) -> None:
    """pytest-postgresql loader: build the schema into the template database with sql/ migrations."""
    migrate(make_conninfo(host=host, port=port, user=user, password=password, dbname=dbname))


@pytest.fixture(scope="session")
def postgresql_noproc(request: pytest.FixtureRequest, pg_server: PgServer) -> Iterator[NoopExecutor]:
    """pytest-postgresql's no-process executor for ``pg_server``, with the migrated template database.

    Written out rather than ``factories.postgresql_noproc(host=…, port=…)`` because the port is only
    known once the session's server has started.
    """
    config = get_config(request)
    executor = NoopExecutor(
        host=pg_server.host,
        port=pg_server.port,
        user=pg_server.user,
        password=pg_server.password,
        dbname=xdistify_dbname(config.dbname),
        options="",
    )
    janitor = DatabaseJanitor(
        user=executor.user,
        host=executor.host,
        port=executor.port,
        dbname=executor.template_dbname,
        maintenance_dbname=executor.maintenance_dbname,
        as_template=True,
        password=executor.password,
    )
    janitor.drop()  # left over from an interrupted run against an external server
    with janitor:
        janitor.load(apply_migrations)
        yield executor


postgresql = factories.postgresql("postgresql_noproc")


@pytest.fixture
def db_dsn(postgresql: psycopg.Connection[Any], pg_server: PgServer) -> str:
    """DSN of this test's fresh, migrated database (for the CLI in a subprocess, or a second connection)."""
    return pg_server.dsn_for(postgresql.info.dbname)


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default token cache ($XDG_CACHE_HOME/stsync) of every test, in-process or a child, is a temporary
    directory: never the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
