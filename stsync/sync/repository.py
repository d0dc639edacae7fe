"""The mirror's repository: the only code that talks psycopg for `stsync sync`.

The engine hands it pages; it bulk-loads each page with binary COPY, merges it with one statement,
writes the feed checkpoint and the sync-log counts, and commits all of that in one transaction, so
a killed process loses nothing and never double-counts. Driver errors become stsync errors here.
"""

from __future__ import annotations

import contextlib
import functools
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from stsync.db.connect import connect, error_for
from stsync.db.statistics import analyze_changed
from stsync.errors import LOCKED_MESSAGE, DatabaseUnavailable, LockedError
from stsync.sqlfile import load
from stsync.sync.merge import Capture, child_merge, page_merge
from stsync.sync.streams import Stream

Q = load("sync")

# Binary COPY framing for one row with one jsonb field (format version byte 1 + JSON text):
# no escaping pass over the page body is needed, unlike text/CSV COPY.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)


def _copy_frame(body: bytes | bytearray) -> tuple[bytes, bytes | bytearray, bytes]:
    """The COPY stream for one page, in parts, so the (multi-megabyte) body is never copied."""
    return _COPY_HEADER + struct.pack("!hi", 1, len(body) + 1) + b"\x01", body, _COPY_TRAILER


def _clean(body: bytes | bytearray) -> bytes | bytearray:
    # jsonb cannot store U+0000; ServiceTitan free-text fields occasionally carry it.
    return body.replace(b"\\u0000", b"") if b"\\u0000" in body else body


def _instant(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # zone-less: UTC, as ServiceTitan means


def later(a: str | None, b: str | None) -> str | None:
    """The later of two ISO-8601 instants (as stored in sync_state), keeping the original text."""
    if a is None or b is None:
        return a or b
    return a if _instant(a) >= _instant(b) else b


@dataclass(frozen=True)
class PageCounts:
    fetched: int
    created: int
    updated: int
    unchanged: int
    quarantined: int
    max_modified_on: str | None
    events: int = 0  # written to automation.events with the page


def run_lock_name(tenant_id: int) -> str:
    """The name of the tenant's sync run lock (its advisory lock's key is ``hashtext`` of it); `stsync health`
    looks for it in pg_locks."""
    return f"stsync.sync:{tenant_id}"


class RunLock:
    """One sync run per tenant: a session advisory lock held on its own connection.

    The lock lives as long as the connection, so a killed process never blocks the next run.
    """

    def __init__(self, dsn: str, tenant_id: int, connect_timeout: float = 10) -> None:
        self.dsn = dsn
        self.name = run_lock_name(tenant_id)
        self.connect_timeout = connect_timeout
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> RunLock:
        self.conn = await connect(self.dsn, self.connect_timeout)
        await self.conn.set_autocommit(True)
        try:
            cur = await self.conn.execute(Q["try_lock"], {"lock_name": self.name})
            row = await cur.fetchone()
            if not row or not row[0]:
                await self.conn.close()
                raise LockedError(LOCKED_MESSAGE)
            await self.conn.execute(Q["mark_dead_runs"])
        except psycopg.Error as exc:
            await self.conn.close()
            raise error_for(exc, "taking the run lock") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()  # closing the session releases the advisory lock

    async def read_state(self, prefix: str) -> dict[str, str]:
        """Run-level checkpoints under ``prefix`` (e.g. 'full_run.'), read on the lock's connection."""
        assert self.conn is not None
        try:
            cur = await self.conn.execute(Q["get_state"], {"prefix": prefix.replace("_", r"\_") + "%"})
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise error_for(exc, "reading the run state") from None
        return {key[len(prefix) :]: value for key, value in rows if value is not None}

    async def write_state(self, prefix: str, values: dict[str, str | None]) -> None:
        assert self.conn is not None
        try:
            await self.conn.execute(Q["put_state"], _state_params(prefix, values, {"scope": "run"}))
        except psycopg.Error as exc:
            raise error_for(exc, "writing the run state") from None

    async def refresh_statistics(self, changed: dict[str, int]) -> list[str]:
        """ANALYZE the tables the run changed enough (``stsync.db.statistics``), on this connection; the
        tables analyzed."""
        assert self.conn is not None
        return await analyze_changed(self.conn, changed)

    async def record_empty_page(
        self, stream: str, log: SyncLog, checkpoint: dict[str, str | None], last: bool
    ) -> PageCounts:
        """What ``StreamRepository.write_page`` does with a page that has no records (its log row and its
        checkpoint), in one autocommitted statement on this connection. A stream that has nothing new is
        given only such a page, so a run where nothing changed opens no connection but this one. The lock's
        connection is idle while the streams run; psycopg queues concurrent statements on it."""
        assert self.conn is not None
        try:
            cur = await self.conn.execute(
                Q["record_empty_page"],
                {**log.params(), "finish": last, **_state_params(f"{stream}.", checkpoint, {"stream": stream})},
            )
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise error_for(exc, f"writing a page of {stream}") from None
        assert row is not None
        log.id, log.started, log.finished = int(row[0]), True, last
        return PageCounts(0, 0, 0, 0, 0, None)


def _state_params(prefix: str, values: dict[str, str | None], metadata: dict[str, str]) -> dict[str, Any]:
    """The parameters of ``put_state``: ``values`` under keys ``prefix`` + name."""
    return {
        "keys": [prefix + k for k in values],
        "values": list(values.values()),
        "metadata": orjson.dumps(metadata).decode(),
    }


@dataclass
class SyncLog:
    """One stream's row in ``st_sync_log`` for one run, written with the stream's pages, not before them;
    ``started`` and ``finished`` say what has been committed."""

    run_id: uuid.UUID
    stream: str
    sync_type: str
    started_at: datetime
    id: int | None = None
    started: bool = False
    finished: bool = False

    def params(self) -> dict[str, Any]:
        return {
            "log_id": self.id,
            "run_id": self.run_id,
            "stream": self.stream,
            "sync_type": self.sync_type,
            "started_at": self.started_at,
        }


class StreamRepository:
    """Writes one stream's pages; owns one connection for the stream's lifetime. With ``capture``, each page
    also writes the events of the records it changed (``stsync.sync.merge.Capture``)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], stream: Stream, capture: Capture | None = None) -> None:
        self.conn = conn
        self.stream = stream
        self.capture = capture

    # Each statement comes twice: a fast one that trusts the page, and one that checks every typed field
    # and quarantines what does not convert, run only when the fast one hits bad data. They are composed
    # on a stream's first page with records: a run where nothing changed composes none.
    @functools.cached_property
    def _merge(self) -> tuple[Any, Any]:
        capture = self.capture
        return page_merge(self.stream, False, capture), page_merge(self.stream, True, capture)

    @functools.cached_property
    def _children(self) -> list[tuple[Any, Any]]:
        return [
            (child_merge(self.stream, child, validate=False), child_merge(self.stream, child, validate=True))
            for child in self.stream.children
        ]

    async def close(self) -> None:
        """Hand the connection back; a stream never leaves a transaction open behind it."""
        await self._rollback()

    async def finish_log(self, log: SyncLog, status: str, error: str | None) -> None:
        """Record how the stream ended, unless its last page already did; writes the whole row when no page
        of the stream was committed (it failed before its first page, or its first page was rolled back)."""
        if log.finished:
            return
        try:
            cur = await self.conn.execute(Q["finish_log"], {**log.params(), "status": status, "error": error})
            row = await cur.fetchone()
            await self.conn.commit()
        except psycopg.Error as exc:
            await self._rollback()
            raise error_for(exc, f"finishing the sync log of {self.stream.name}") from None
        assert row is not None
        log.id, log.finished = int(row[0]), True

    async def load(self, body: bytes | bytearray) -> None:
        """COPY a page into this connection's staging table ahead of its turn, while another connection
        merges the page before it; ``write_page(..., loaded=True)`` then merges it here. The load commits
        nothing: a page that is never written is rolled back with ``close``."""
        try:
            async with self.conn.cursor() as cur:
                await self._copy(cur, body)
        except psycopg.Error as exc:
            await self._rollback()
            raise error_for(exc, f"writing a page of {self.stream.name}") from None

    async def write_page(
        self,
        body: bytes | bytearray,
        log: SyncLog,
        checkpoint: dict[str, str | None],
        empty: bool = False,
        last: bool = False,
        loaded: bool = False,
    ) -> PageCounts:
        """COPY + merge one page, record its counts and its checkpoint, and commit — all or nothing.
        An ``empty`` page (no records) only moves the checkpoint and the log; a ``loaded`` one (see ``load``)
        is only merged. The stream's first page also starts its sync-log row; its ``last`` page also finishes
        it ('completed', or 'partial' when records were quarantined). (A stream whose first page has no records
        does not come here: see ``RunLock.record_empty_page``.)"""
        try:
            async with self.conn.cursor() as cur:
                if not log.started:
                    await cur.execute(Q["start_log"], log.params())
                    started = await cur.fetchone()
                    assert started is not None
                    log.id = int(started[0])  # kept if this transaction rolls back: finish_log then writes the row
                if empty:
                    row = (0, 0, 0, 0, 0, 0, None, 0)
                else:
                    if not loaded:
                        await self._copy(cur, body)
                    row = await self._execute(cur, self._merge)
                    assert row is not None
                    for statements in self._children:
                        await self._execute(cur, statements)
                fetched, created, updated, unchanged, quarantined, _resolved, max_modified, events = row
                counts = PageCounts(
                    fetched,
                    created,
                    updated,
                    unchanged,
                    quarantined,
                    max_modified.isoformat() if max_modified is not None else None,
                    events,
                )
                await cur.execute(
                    Q["add_page_to_log"],
                    {
                        "log_id": log.id,
                        "finish": last,
                        "fetched": fetched,
                        "created": created,
                        "updated": updated,
                        "unchanged": unchanged,
                        "quarantined": quarantined,
                    },
                )
                if "high_water" in checkpoint:
                    checkpoint = {**checkpoint, "high_water": later(checkpoint["high_water"], counts.max_modified_on)}
                await self._put_state(cur, checkpoint)
            await self.conn.commit()
        except psycopg.Error as exc:
            await self._rollback()
            raise error_for(exc, f"writing a page of {self.stream.name}") from None
        except Exception:
            await self._rollback()  # never leave the page half-done for a later commit on this connection
            raise
        log.started, log.finished = True, last
        return counts

    async def _copy(self, cur: psycopg.AsyncCursor[Any], body: bytes | bytearray) -> None:
        # The session's staging table, made on first use (a run where nothing changed needs none).
        await cur.execute(Q["create_stage"])
        async with cur.copy("COPY stsync_stage (body) FROM STDIN (FORMAT BINARY)") as copy:
            for part in _copy_frame(_clean(body)):
                await copy.write(part)

    async def _execute(self, cur: psycopg.AsyncCursor[Any], statements: tuple[Any, Any]) -> Any:
        """Run the fast statement; if a record's value does not convert, run the validating one."""
        fast, validating = statements
        await cur.execute("SAVEPOINT stsync_fast")
        try:
            await cur.execute(fast)
        except (psycopg.errors.DataError, psycopg.errors.NotNullViolation):
            await cur.execute("ROLLBACK TO SAVEPOINT stsync_fast")
            await cur.execute(validating)
        return await cur.fetchone()

    async def _put_state(self, cur: psycopg.AsyncCursor[Any], checkpoint: dict[str, str | None]) -> None:
        if not checkpoint:
            return
        name = self.stream.name
        await cur.execute(Q["put_state"], _state_params(f"{name}.", checkpoint, {"stream": name}))

    async def _rollback(self) -> None:
        # If the connection is gone, the error that brought us here is what gets reported.
        with contextlib.suppress(psycopg.Error):
            await self.conn.rollback()


class ConnectionPool:
    """The run's database connections, one per concurrently writing stream, reused across streams, and
    spares: while fewer than ``spares_below`` are in use, a writing stream may take a second one to load its
    next page on (see ``StreamRepository.load``).

    A stream that has nothing new takes no connection from it (see ``RunLock.record_empty_page``); the staging
    table is made in a connection's session by its first page that has records.
    """

    def __init__(self, dsn: str, connect_timeout: float = 10, spares_below: int = 0) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self.spares_below = spares_below
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._all: list[psycopg.AsyncConnection[Any]] = []
        self._opening = 0  # spares being handed out (a new connection may take a while)

    async def stream(self, stream: Stream, capture: Capture | None = None) -> StreamRepository:
        """A repository for ``stream`` on an idle (or new) connection; ``release`` it when done."""
        conn = self._idle.pop() if self._idle else await self._connect()
        return StreamRepository(conn, stream, capture)

    async def spare(self, stream: Stream, capture: Capture | None = None) -> StreamRepository | None:
        """Like ``stream`` while fewer than ``spares_below`` connections are in use (or being opened);
        otherwise, or if a new connection cannot be opened, None: a spare is never worth an error."""
        if len(self._all) - len(self._idle) + self._opening >= self.spares_below:
            return None
        self._opening += 1
        try:
            return await self.stream(stream, capture)
        except DatabaseUnavailable:
            return None
        finally:
            self._opening -= 1

    def release(self, repo: StreamRepository) -> None:
        if repo.conn.closed:
            with contextlib.suppress(ValueError):
                self._all.remove(repo.conn)  # a connection that broke no longer counts as in use
        elif repo.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self._idle.append(repo.conn)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await connect(self.dsn, self.connect_timeout)
        self._all.append(conn)
        return conn

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle.clear()
