"""Versioned SQL migrations: ordered ``sql/NNNN_name.sql`` files, each applied once in its own transaction.

Applied files are recorded in ``public.stsync_migrations`` with their sha256; an applied file that was
edited or deleted afterwards stops `migrate` (released migrations are never edited: add a new file).
Concurrent runs serialise on one advisory lock; the later one then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from stsync.db.connect import connect_sync, db_errors, error_for
from stsync.errors import DatabaseUnavailable, MigrationError

# Fixed key of the session advisory lock that serialises migrations ("stsy-mig" as ASCII).
LOCK_KEY = 0x737473792D6D6967
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS public.stsync_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL
)
"""


def sql_dir() -> Path:
    """Where the migration files are: ``stsync/_sql`` in an installed wheel, else ``<repo>/sql``."""
    packaged = Path(str(resources.files("stsync").joinpath("_sql")))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


@dataclass(frozen=True)
class MigrationFile:
    name: str  # file name, e.g. 0001_schemas.sql
    path: Path
    checksum: str  # sha256 hex of the file's bytes

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrationStatus:
    name: str
    applied_at: datetime | None  # None: pending
    duration_ms: int | None = None

    @property
    def pending(self) -> bool:
        return self.applied_at is None


@dataclass
class MigrationResult:
    """What `migrate` did (or, with ``dry_run``, would do), plus every file's status afterwards."""

    dry_run: bool
    applied: list[str] = field(default_factory=list)  # applied now (dry run: would apply)
    statuses: list[MigrationStatus] = field(default_factory=list)
    durations_ms: dict[str, int] = field(default_factory=dict)


def discover(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files in order; a stray or duplicate-numbered file is an error."""
    directory = directory or sql_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} not found")
    files: list[MigrationFile] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_lowercase_name.sql")
        number = match.group(1)
        if number in seen:
            raise MigrationError(f"{path.name}: number {number} is already used by {seen[number]}")
        seen[number] = path.name
        files.append(MigrationFile(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return files


def connect(dsn: str, connect_timeout: float = 10) -> psycopg.Connection[Any]:
    return connect_sync(dsn, connect_timeout, autocommit=True)


def _applied(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, datetime, int]]:
    row = conn.execute("SELECT to_regclass('public.stsync_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return {}
    rows = conn.execute("SELECT name, checksum, applied_at, duration_ms FROM public.stsync_migrations").fetchall()
    return {name: (checksum, at, ms) for name, checksum, at, ms in rows}


def _verify(files: list[MigrationFile], applied: dict[str, tuple[str, datetime, int]]) -> None:
    on_disk = {f.name: f for f in files}
    for name, (checksum, _, _) in sorted(applied.items()):
        if name not in on_disk:
            raise MigrationError(f"{name} was applied but is missing from {sql_dir()}; restore it")
        if on_disk[name].checksum != checksum:
            raise MigrationError(
                f"{name} changed after it was applied (checksum mismatch); "
                "applied migrations must not be edited: revert it and add a new file"
            )


def _statuses(files: list[MigrationFile], applied: dict[str, tuple[str, datetime, int]]) -> list[MigrationStatus]:
    return [
        MigrationStatus(f.name, applied[f.name][1], applied[f.name][2])
        if f.name in applied
        else MigrationStatus(f.name, None)
        for f in files
    ]


def status(dsn: str, directory: Path | None = None, connect_timeout: float = 10) -> list[MigrationStatus]:
    """Every migration file with when it was applied (None: pending). Writes nothing."""
    files = discover(directory)
    with connect(dsn, connect_timeout) as conn, db_errors("reading the applied migrations"):
        applied = _applied(conn)
    return _statuses(files, applied)


def pending_on(conn: psycopg.Connection[Any], directory: Path | None = None) -> tuple[list[str], int]:
    """The migration files not applied yet on ``conn``'s database, and how many are; MigrationError when an
    applied one was edited or removed (`stsync health`)."""
    files = discover(directory)
    with db_errors("reading the applied migrations"):
        applied = _applied(conn)
    _verify(files, applied)
    return [f.name for f in files if f.name not in applied], len(applied)


def migrate(
    dsn: str, dry_run: bool = False, directory: Path | None = None, connect_timeout: float = 10
) -> MigrationResult:
    """Apply every pending migration, each in its own transaction, under the migrations advisory lock.

    With ``dry_run`` nothing is written (not even the bookkeeping table); the result lists what would apply.
    """
    files = discover(directory)
    result = MigrationResult(dry_run=dry_run)
    with connect(dsn, connect_timeout) as conn, db_errors("applying migrations"):
        if dry_run:
            applied = _applied(conn)
            _verify(files, applied)
            result.applied = [f.name for f in files if f.name not in applied]
            result.statuses = _statuses(files, applied)
            return result
        # Session lock: held across the per-file transactions, released when the connection closes.
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            applied = _applied(conn)
            _verify(files, applied)
            for f in files:
                if f.name in applied:
                    continue
                result.durations_ms[f.name] = _apply(conn, f)
                result.applied.append(f.name)
            result.statuses = _statuses(files, _applied(conn))
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return result


def _apply(conn: psycopg.Connection[Any], f: MigrationFile) -> int:
    started = time.monotonic()
    try:
        with conn.transaction():
            conn.execute(f.read())  # type: ignore[arg-type]  # a migration file is trusted, static SQL
            duration_ms = round((time.monotonic() - started) * 1000)
            conn.execute(
                "INSERT INTO public.stsync_migrations (name, checksum, duration_ms) VALUES (%s, %s, %s)",
                (f.name, f.checksum, duration_ms),
            )
    except psycopg.OperationalError as exc:
        if conn.closed or conn.broken:
            raise DatabaseUnavailable(f"lost the database connection while applying {f.name}") from None
        raise MigrationError(f"{f.name}: {_first_line(exc)}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise error_for(exc, f"applying {f.name}") from None
    except psycopg.Error as exc:
        raise MigrationError(f"{f.name}: {_first_line(exc)}") from None
    return duration_ms


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
