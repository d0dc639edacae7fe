"""The one way to PostgreSQL: ``connect`` (async) and ``connect_sync`` with stsync's session settings, and
``db_errors``, which turns driver errors into the error tree by what the operator should do.

- a connection string that does not parse, a bad sslmode, a refused password, a missing database or role: 78
- a missing privilege: 77, naming the privilege and the object
- an unmigrated database: 78, saying to run `stsync migrate`
- the server unreachable, or the connection lost: 69, naming host:port
Messages never contain the connection string (libpq's do, when it cannot parse one).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from stsync.errors import ConfigError, DatabaseOutage, DatabaseUnavailable, PrivilegeError, StsyncError
from stsync.masking import mask_dsn

# Whatever the server's defaults: zone-less ServiceTitan timestamps are taken as UTC, and the sync engine
# relies on read committed (a page loaded ahead on one connection must see the page merged on another).
SESSION_OPTIONS = (
    r"-c TimeZone=UTC -c default_transaction_isolation=read\ committed -c idle_in_transaction_session_timeout=0"
)

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@functools.cache
def _keywords() -> frozenset[str]:
    return frozenset(o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()) | {"="}


def _quoted(match: re.Match[str]) -> str:
    # Only libpq's own words are repeated: any other quoted text may be (part of) the password.
    return match.group(0) if match.group(1) in _keywords() else "…"


def conninfo_problem(dsn: str) -> str | None:
    """Why ``dsn`` is not a libpq URL or key=value string (None when it is), without repeating any of it."""
    if dsn != dsn.strip():
        return "has leading or trailing whitespace"
    if re.match(r"^[a-z][a-z0-9+.-]*\+[a-z0-9]+://", dsn, re.IGNORECASE):
        return "is a SQLAlchemy URL; use postgresql://… (drop the '+driver')"
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "does not parse"
        # libpq quotes the text it could not parse, which may be the password: keep only option names.
        reason = re.sub(r'"([^"]*)"', _quoted, reason)
        return f"is not a PostgreSQL URL (postgresql://user@host/db) or key=value string: {reason}"
    sslmode = info.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        return f"has sslmode '{sslmode}'; expected one of {', '.join(SSLMODES)}"
    return None


def where(dsn: str) -> str:
    """host:port/dbname of ``dsn`` for messages (never user or password)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured database"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    db = info.get("dbname")
    return f"{host}:{info.get('port') or 5432}" + (f"/{db}" if db else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


# libpq's reasons for refusing a connection that a person has to fix (the rest may pass on a later run).
_CONFIG_REASONS = re.compile(
    r"password authentication failed|no password supplied|database \".*\" does not exist|"
    r"role \".*\" does not exist|no pg_hba\.conf entry|invalid sslmode|sslmode value|"
    r"server does not support SSL|certificate|invalid (?:integer|port)|"
    r"is not permitted to log in",
    re.IGNORECASE,
)


_LIBPQ_PREFIX = re.compile(r"^(connection (?:failed|is bad): )?(connection to server .*? failed: )?")


def connect_error(exc: psycopg.Error, dsn: str) -> StsyncError:
    """The stsync error for a connection attempt that failed with ``exc``."""
    problem = conninfo_problem(dsn)
    if problem is not None:
        return ConfigError(f"config error: bad value for 'database.url': it {problem}")
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  <reason>'
    reason = (
        re.sub(r"^(connection (?:failed|is bad): )?(connection to server .*? failed: )?", "", lines[0]) if lines else ""
    )
    reason = mask_dsn(reason.replace("FATAL:  ", "")) or type(exc).__name__
    if "permission denied" in reason:
        return PrivilegeError(f"missing privilege: PostgreSQL at {where(dsn)}: {reason}; the role needs CONNECT")
    if _CONFIG_REASONS.search(reason):
        return ConfigError(
            f"config error: PostgreSQL at {where(dsn)} refused the connection: {reason}; check database.url"
        )
    return DatabaseOutage(f"cannot connect to PostgreSQL at {where(dsn)}: {reason}")


async def connect(dsn: str, connect_timeout: float = 10, autocommit: bool = False) -> psycopg.AsyncConnection[Any]:
    """An async connection with the session settings, or the stsync error that says why not."""
    try:
        return await psycopg.AsyncConnection.connect(
            dsn, connect_timeout=max(1, round(connect_timeout)), options=SESSION_OPTIONS, autocommit=autocommit
        )
    except psycopg.Error as exc:
        raise connect_error(exc, dsn) from None


def connect_sync(dsn: str, connect_timeout: float = 10, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A blocking connection with the session settings (migrations, checks, the demo's counts)."""
    try:
        return psycopg.connect(
            dsn, connect_timeout=max(1, round(connect_timeout)), options=SESSION_OPTIONS, autocommit=autocommit
        )
    except psycopg.Error as exc:
        raise connect_error(exc, dsn) from None


_OBJECT = re.compile(r"permission denied for (\w+) (\S+)")
_NEEDS = {
    "database": "CREATE ON DATABASE {name}",
    "schema": "USAGE (and CREATE, for migrate) ON SCHEMA {name}",
    "table": "SELECT, INSERT, UPDATE ON TABLE {name}",
    "relation": "SELECT, INSERT, UPDATE ON TABLE {name}",
    "sequence": "USAGE ON SEQUENCE {name}",
    "function": "EXECUTE ON FUNCTION {name}",
}


_UNMIGRATED = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedFunction)


def error_for(exc: psycopg.Error, what: str) -> StsyncError:
    """The stsync error for a statement that failed with ``exc`` while doing ``what``."""
    primary = (exc.diag.message_primary if exc.diag else None) or _first_line(exc)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        match = _OBJECT.search(primary)
        needs = ""
        if match and match.group(1) in _NEEDS:
            needs = "; the role needs " + _NEEDS[match.group(1)].format(name=match.group(2))
        return PrivilegeError(f"missing privilege while {what}: {primary}{needs}")
    if isinstance(
        exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName | psycopg.errors.UndefinedFunction
    ):
        return ConfigError(f"the database is not migrated ({primary}): run `stsync migrate`")
    if isinstance(exc, psycopg.OperationalError):  # the connection broke, or the server is going away
        return DatabaseOutage(f"lost the database connection while {what}: {mask_dsn(_first_line(exc))}")
    return DatabaseUnavailable(f"database error while {what}: {mask_dsn(_first_line(exc))}")


@contextlib.contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Raise driver errors inside the block as stsync errors (see ``error_for``)."""
    try:
        yield
    except psycopg.Error as exc:
        raise error_for(exc, what) from None
