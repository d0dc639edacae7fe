"""The page merge against a real PostgreSQL: counts from the statement, quarantine, repeats, items."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import psycopg
import pytest

from stsync.errors import DatabaseUnavailable
from stsync.sync.repository import ConnectionPool, RunLock, StreamRepository, SyncLog
from stsync.sync.streams import STREAMS_BY_NAME

T = TypeVar("T")


def _page(records: list[dict[str, Any]], token: str = "t1") -> bytes:
    return orjson.dumps({"hasMore": False, "continueFrom": token, "data": records})


CHECKPOINT: dict[str, str | None] = {"continue_from": "t", "high_water": None}


def _on_one_connection(dsn: str, stream: str, work: Callable[[StreamRepository, SyncLog], Awaitable[T]]) -> T:
    """Run ``work`` with one stream repository (one connection) and a fresh sync log of a full run."""

    async def go() -> T:
        pool = ConnectionPool(dsn)
        repo = await pool.stream(STREAMS_BY_NAME[stream])
        try:
            return await work(repo, SyncLog(uuid.uuid4(), stream, "full", datetime.now(UTC)))
        finally:
            await pool.close()

    return asyncio.run(go())


def _write(dsn: str, stream: str, *bodies: bytes) -> list[Any]:
    async def write(repo: StreamRepository, log: SyncLog) -> list[Any]:
        return [await repo.write_page(b, log, CHECKPOINT) for b in bodies]

    return _on_one_connection(dsn, stream, write)


def _job(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": i,
        "jobNumber": str(i),
        "customerId": 10 + i,
        "locationId": 20 + i,
        "jobStatus": "Scheduled",
        "businessUnitId": 1314,
        "active": True,
        "total": 12.5,
        "createdOn": "2026-01-02T03:04:05.1234567Z",
        "modifiedOn": "2026-01-03T00:00:00",
        **fields,
    }


def test_counts_come_from_the_merge(db_dsn: str) -> None:
    """Created, updated and unchanged are counted by the statement itself, page by page."""
    first = _page([_job(1), _job(2), _job(3)])
    second = _page([_job(1), _job(2, jobStatus="Completed"), _job(4)])
    c1, c2 = _write(db_dsn, "jobs", first, second)
    assert (c1.created, c1.updated, c1.unchanged) == (3, 0, 0)
    assert (c2.created, c2.updated, c2.unchanged) == (1, 1, 1)
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT job_status, total, st_created_on::text FROM servicetitan.st_jobs WHERE st_id = 2"
        ).fetchone()
        assert row == ("Completed", 12.5, "2026-01-02 03:04:05.123457+00")
        log = conn.execute(
            "SELECT records_fetched, records_created, records_updated, records_unchanged, pages "
            "FROM servicetitan.st_sync_log"
        ).fetchone()
        assert log == (6, 4, 1, 1, 2)


def test_repeated_rows_in_a_page_keep_the_last(db_dsn: str) -> None:
    """Export feeds may repeat a record; the last occurrence wins and nothing fails."""
    (counts,) = _write(db_dsn, "jobs", _page([_job(1), _job(1, jobStatus="Hold")]))
    assert counts.created == 1
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT job_status FROM servicetitan.st_jobs").fetchall() == [("Hold",)]


def test_malformed_records_go_to_quarantine(db_dsn: str) -> None:
    """A wrong type or a missing id quarantines that record with its payload; the rest is mirrored."""
    bad_type = _job(2, customerId="not-a-number")
    no_id = {k: v for k, v in _job(3).items() if k != "id"}
    (counts,) = _write(db_dsn, "jobs", _page([_job(1), bad_type, no_id]))
    assert (counts.created, counts.quarantined) == (1, 2)
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT st_id, reason, payload FROM servicetitan.st_sync_quarantine ORDER BY st_id NULLS LAST"
        ).fetchall()
    assert rows[0][0] == 2 and rows[0][1] == "customerId: expected bigint, got string"
    assert rows[0][2] == bad_type
    assert rows[1][0] is None and rows[1][1].startswith("id:")


def test_quarantine_resolves_when_the_record_arrives_valid(db_dsn: str) -> None:
    _write(db_dsn, "jobs", _page([_job(5, total="abc")]), _page([_job(5)]))
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT resolved_at IS NOT NULL FROM servicetitan.st_sync_quarantine WHERE st_id = 5"
        ).fetchone() == (True,)
        assert conn.execute("SELECT count(*) FROM servicetitan.st_jobs").fetchone() == (1,)


def test_money_strings_and_estimate_items(db_dsn: str) -> None:
    """Accounting money arrives as strings; estimate items are mirrored and deactivated, never deleted."""
    est = {
        "id": 7,
        "jobId": 1,
        "status": {"value": 1, "name": "Open"},
        "subtotal": 100,
        "tax": 8.25,
        "active": True,
        "createdOn": "2026-01-01T00:00:00Z",
        "modifiedOn": "2026-01-01T00:00:00Z",
        "items": [
            {"id": 70, "qty": 1, "total": 60, "sku": {"id": 5, "name": "Pump"}},
            {"id": 71, "qty": 2, "total": 40, "sku": {"id": 6, "name": "Filter"}},
        ],
    }
    later = {
        **est,
        "modifiedOn": "2026-01-02T00:00:00Z",
        "status": {"value": 2, "name": "Sold"},
        "items": [est["items"][0]],
    }
    _write(db_dsn, "estimates", _page([est]), _page([later]))
    with psycopg.connect(db_dsn) as conn:
        items = conn.execute(
            "SELECT st_id, estimate_id, sku_name, active FROM servicetitan.st_estimate_items ORDER BY st_id"
        ).fetchall()
        assert items == [(70, 7, "Pump", True), (71, 7, "Filter", False)]
        assert conn.execute("SELECT status, status_value FROM servicetitan.st_estimates").fetchone() == ("Sold", 2)
    invoice = {
        "id": 9,
        "total": "123.40",
        "balance": " 23.40 ",
        "subTotal": "",
        "active": False,
        "customer": {"id": 3, "name": "Ann"},
        "createdOn": "2026-01-01T00:00:00Z",
        "modifiedOn": "2026-01-01T00:00:00Z",
    }
    _write(db_dsn, "invoices", _page([invoice]))
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT total::text, balance::text, sub_total, customer_id, active FROM servicetitan.st_invoices"
        ).fetchone()
    assert row == ("123.40", "23.40", None, 3, False)


def test_nul_characters_do_not_break_a_page(db_dsn: str) -> None:
    (counts,) = _write(db_dsn, "jobs", _page([_job(1, summary="bad\u0000text")]))
    assert counts.created == 1


def test_values_that_convert_are_accepted_on_both_paths(db_dsn: str) -> None:
    """A numeric string converts and is accepted, whether or not another record of its page is bad:
    the fast statement and the validating one agree on what converts."""
    clean = _page([_job(1, customerId="41")])
    dirty = _page([_job(2, customerId="42"), _job(3, customerId="x")])
    c1, c2 = _write(db_dsn, "jobs", clean, dirty)
    assert (c1.created, c1.quarantined) == (1, 0)
    assert (c2.created, c2.quarantined) == (1, 1)
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT st_id, customer_id FROM servicetitan.st_jobs ORDER BY st_id").fetchall()
    assert rows == [(1, 41), (2, 42)]


def test_page_bodies_are_staged_without_pglz(db_dsn: str) -> None:
    """The staging table stores a page body with lz4 (or uncompressed on a server without lz4), never with
    the default pglz, which made staging a quarter of the merge's time. A first page whose transaction rolls
    back takes the table with it; the next page makes it again."""

    async def write_then_look(repo: StreamRepository, log: SyncLog) -> tuple[Any, ...] | None:
        with pytest.raises(DatabaseUnavailable, match="writing a page of jobs"):
            await repo.write_page(b'{"data": [not json', log, CHECKPOINT)
        counts = await repo.write_page(_page([_job(1)]), log, CHECKPOINT)
        assert counts.created == 1
        cur = await repo.conn.execute(
            "SELECT attcompression::text, attstorage::text FROM pg_attribute "
            "WHERE attrelid = 'pg_temp.stsync_stage'::regclass AND attname = 'body'"
        )
        return await cur.fetchone()

    assert _on_one_connection(db_dsn, "jobs", write_then_look) in {("l", "x"), ("", "e")}


def test_a_page_loaded_ahead_is_merged_when_written_and_gone_when_not(db_dsn: str) -> None:
    """``load`` COPYs a page and commits nothing; ``write_page(..., loaded=True)`` merges that page. A loaded
    page that is never written is rolled back when the connection is handed back, and the connection's next
    page is merged alone. A page that does not load fails as its COPY would inside ``write_page``."""

    def ids() -> list[int]:
        with psycopg.connect(db_dsn) as conn:
            return [r[0] for r in conn.execute("SELECT st_id FROM servicetitan.st_jobs ORDER BY st_id")]

    async def work(repo: StreamRepository, log: SyncLog) -> None:
        await repo.load(_page([_job(1), _job(2)]))
        assert ids() == []
        counts = await repo.write_page(b"", log, CHECKPOINT, loaded=True)
        assert (counts.fetched, counts.created) == (2, 2)
        await repo.load(_page([_job(3)]))
        await repo.close()  # the walk ended before the page's turn
        counts = await repo.write_page(_page([_job(4)]), log, CHECKPOINT)
        assert (counts.fetched, counts.created) == (1, 1)
        with pytest.raises(DatabaseUnavailable, match="writing a page of jobs"):
            await repo.load(b'{"data": [not json')

    _on_one_connection(db_dsn, "jobs", work)
    assert ids() == [1, 2, 4]


def test_a_spare_connection_is_lent_only_below_the_limit_and_never_fails(db_dsn: str) -> None:
    """A spare (to load a stream's next page on) is lent while fewer than ``spares_below`` connections are in
    use, an idle one first; at the limit, or when no connection can be opened, there is none: a spare only
    speeds a stream up and must not fail it. A connection that broke no longer counts as in use."""
    jobs = STREAMS_BY_NAME["jobs"]

    async def go() -> None:
        pool = ConnectionPool(db_dsn, spares_below=2)
        try:
            await pool.stream(jobs)
            spare = await pool.spare(jobs)
            assert spare is not None
            assert await pool.spare(jobs) is None  # two in use
            pool.release(spare)
            again = await pool.spare(jobs)
            assert again is not None and again.conn is spare.conn
            await again.conn.close()
            pool.release(again)
            assert await pool.spare(jobs) is not None
        finally:
            await pool.close()
        unreachable = ConnectionPool("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1, spares_below=1)
        assert await unreachable.spare(jobs) is None

    asyncio.run(go())


def test_sessions_read_committed_data_and_wait_in_a_transaction_whatever_the_server_defaults(db_dsn: str) -> None:
    """A page loaded ahead waits in its transaction while the page before it merges on another connection,
    then must see that page's rows: the run's sessions are READ COMMITTED without an idle-in-transaction
    timeout even where the database's defaults say otherwise."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'")
        conn.execute(f'ALTER DATABASE "{name}" SET idle_in_transaction_session_timeout = 100')

    async def settings(repo: StreamRepository, log: SyncLog) -> tuple[Any, ...] | None:
        cur = await repo.conn.execute(
            "SELECT current_setting('transaction_isolation'), current_setting('idle_in_transaction_session_timeout')"
        )
        return await cur.fetchone()

    assert _on_one_connection(db_dsn, "jobs", settings) == ("read committed", "0")


def test_marking_dead_runs_reads_only_the_rows_still_started(db_dsn: str) -> None:
    """The lock's holder marks dead runs failed at every run's start. The log grows by a row per stream per
    run, so that statement must find the 'started' rows through an index, not a scan of the whole log."""
    from stsync.sync.repository import Q

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status, completed_at)"
            " SELECT gen_random_uuid(), 'jobs', 'incremental', 'completed', now() FROM generate_series(1, 5000)"
        )
        conn.execute(
            "INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status) VALUES (%s, 'jobs', 'full', 'started')",
            (uuid.uuid4(),),
        )
        conn.execute("ANALYZE servicetitan.st_sync_log")
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE) " + Q["mark_dead_runs"]).fetchall())
        assert "Index Scan using st_sync_log_started" in plan, plan
        assert "rows=1 " in plan.split("Index Scan", 1)[1]
        statuses = conn.execute(
            "SELECT status, count(*) FROM servicetitan.st_sync_log GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert statuses == [("completed", 5000), ("failed", 1)]


def test_a_page_without_records_is_recorded_on_the_run_connection(db_dsn: str) -> None:
    """A page with no records (all a stream with nothing new gets) is counted into the stream's log row and
    moves its checkpoint in one statement on the lock's connection, as write_page would have: the row is made
    by the first such page, counted into by the next, and finished by the last ('partial' if records of the
    stream were quarantined)."""
    run_id = uuid.uuid4()

    async def go() -> tuple[SyncLog, SyncLog]:
        async with RunLock(db_dsn, 1) as lock:
            jobs = SyncLog(run_id, "jobs", "incremental", datetime.now(UTC))
            await lock.record_empty_page("jobs", jobs, {"continue_from": "a", "walk": "full"}, last=False)
            assert (jobs.started, jobs.finished) == (True, False)
            assert lock.conn is not None
            first = await (await lock.conn.execute("SELECT status, pages FROM servicetitan.st_sync_log")).fetchall()
            assert first == [("started", 1)]
            await lock.record_empty_page("jobs", jobs, {"continue_from": "b", "walk": "done"}, last=True)
            # A row that counted quarantined records (as a page written before would have) ends 'partial'.
            invoices = SyncLog(run_id, "invoices", "incremental", datetime.now(UTC))
            await lock.record_empty_page("invoices", invoices, {}, last=False)
            await lock.conn.execute(
                "UPDATE servicetitan.st_sync_log SET records_quarantined = 2 WHERE id = %s", (invoices.id,)
            )
            await lock.record_empty_page("invoices", invoices, {"high_water": "2026-01-01T00:00:00Z"}, last=True)
            return jobs, invoices

    jobs, invoices = asyncio.run(go())
    assert jobs.finished and invoices.finished
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT stream, status, pages, records_fetched, completed_at IS NOT NULL, duration_ms IS NOT NULL"
            " FROM servicetitan.st_sync_log WHERE run_id = %s ORDER BY id",
            (run_id,),
        ).fetchall()
        state = dict(conn.execute("SELECT key, value FROM servicetitan.sync_state").fetchall())
    assert rows == [("jobs", "completed", 2, 0, True, True), ("invoices", "partial", 2, 0, True, True)]
    assert state == {"jobs.continue_from": "b", "jobs.walk": "done", "invoices.high_water": "2026-01-01T00:00:00Z"}
