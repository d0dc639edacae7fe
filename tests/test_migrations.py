"""Versioned migrations: applied once, in order, recorded with checksums, safe to run concurrently."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from stsync.db.migrations import discover, migrate, sql_dir, status
from stsync.errors import DatabaseUnavailable, MigrationError


@pytest.fixture
def empty_dsn(pg_server: Any) -> Iterator[str]:
    """A brand-new database without any migration applied."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(sql_dir(), target)
    return target


def _schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}


def _recorded(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM public.stsync_migrations ORDER BY name").fetchall()]


def test_files_are_discovered_in_order() -> None:
    """sql/ holds NNNN_name.sql files, 0001 first."""
    names = [f.name for f in discover()]
    assert names == sorted(names)
    assert names[0] == "0001_schemas.sql"


def test_fresh_database_gets_everything_then_nothing(empty_dsn: str) -> None:
    """The first run applies every file and records it; the second run applies nothing."""
    first = migrate(empty_dsn)
    all_files = [f.name for f in discover()]
    assert first.applied == all_files
    assert {"servicetitan", "integrations", "automation"} <= _schemas(empty_dsn)
    assert _recorded(empty_dsn) == all_files
    second = migrate(empty_dsn)
    assert second.applied == []
    assert all(not s.pending for s in second.statuses)


def test_dry_run_writes_nothing(empty_dsn: str) -> None:
    """--dry-run lists the pending files and creates nothing, not even the bookkeeping table."""
    result = migrate(empty_dsn, dry_run=True)
    assert result.applied == [f.name for f in discover()]
    assert "servicetitan" not in _schemas(empty_dsn)
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.stsync_migrations')").fetchone() == (None,)
    assert all(s.pending for s in status(empty_dsn))


def test_edited_applied_file_is_refused_naming_it(empty_dsn: str, migrations_copy: Path) -> None:
    """Changing a released migration stops migrate with an error naming the file."""
    migrate(empty_dsn, directory=migrations_copy)
    edited = migrations_copy / "0001_schemas.sql"
    edited.write_text(edited.read_text() + "\nCREATE SCHEMA IF NOT EXISTS extra;\n")
    with pytest.raises(MigrationError, match=r"0001_schemas\.sql changed"):
        migrate(empty_dsn, directory=migrations_copy)
    with pytest.raises(MigrationError, match=r"0001_schemas\.sql changed"):
        migrate(empty_dsn, directory=migrations_copy, dry_run=True)


def test_applied_file_missing_on_disk_is_refused(empty_dsn: str, migrations_copy: Path) -> None:
    """An applied migration deleted from sql/ is an error naming it."""
    migrate(empty_dsn, directory=migrations_copy)
    last = sorted(migrations_copy.glob("*.sql"))[-1]
    last.unlink()
    with pytest.raises(MigrationError, match=last.name):
        migrate(empty_dsn, directory=migrations_copy)


def test_failing_file_rolls_back_alone_and_is_named(empty_dsn: str, migrations_copy: Path) -> None:
    """A broken file is rolled back and named; the files before it stay applied."""
    (migrations_copy / "9999_broken.sql").write_text("CREATE TABLE servicetitan.ok (id int);\nSELECT nonsense(;\n")
    with pytest.raises(MigrationError, match=r"9999_broken\.sql"):
        migrate(empty_dsn, directory=migrations_copy)
    assert "9999_broken.sql" not in _recorded(empty_dsn)
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regclass('servicetitan.ok')").fetchone() == (None,)
    assert len(_recorded(empty_dsn)) == len(discover())


def test_schema_rebuilds_from_scratch(postgresql: Any, db_dsn: str) -> None:
    """Dropping every stsync schema and the bookkeeping table, then migrating again, works."""
    postgresql.execute(
        "DROP SCHEMA servicetitan, integrations, automation CASCADE; DROP TABLE public.stsync_migrations"
    )
    postgresql.commit()
    result = migrate(db_dsn)
    assert result.applied == [f.name for f in discover()]


def test_concurrent_runs_wait_and_then_find_nothing(empty_dsn: str) -> None:
    """Two migrate calls at once: the lock serialises them and every file is applied exactly once."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    applied = sorted(name for r in results for name in r.applied)
    assert applied == [f.name for f in discover()]


def test_unreachable_database_names_host_and_port_not_password() -> None:
    """A refused connection is DatabaseUnavailable naming host:port, without the password."""
    with pytest.raises(DatabaseUnavailable) as info:
        migrate("postgresql://stsync:hunter2secret@127.0.0.1:1/stsync", connect_timeout=2)
    assert "127.0.0.1:1" in str(info.value)
    assert "hunter2secret" not in str(info.value)
