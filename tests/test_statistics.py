"""The ANALYZE check after bulk writes (stsync.db.statistics) on a real PostgreSQL: a table that was never
analyzed is, a change below the threshold is left to autovacuum, one above it is analyzed again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from stsync.db.connect import connect
from stsync.db.statistics import ANALYZE_FRACTION, ANALYZE_MIN_ROWS, analyze_changed, needs_analyze


def _analyze(dsn: str, changed: dict[str, int]) -> list[str]:
    async def run() -> list[str]:
        conn = await connect(dsn)
        try:
            await conn.set_autocommit(True)
            return await analyze_changed(conn, changed)
        finally:
            await conn.close()

    return asyncio.run(run())


def _insert(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO public.bulk (n) SELECT g FROM generate_series(1, %s) g", (rows,))


def _planner_rows(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'public.bulk'::regclass").fetchone()
    assert row is not None
    return float(row[0])


def test_the_threshold() -> None:
    assert needs_analyze(-1, 1)  # never analyzed: any change
    assert not needs_analyze(-1, 0)
    assert not needs_analyze(100_000, ANALYZE_MIN_ROWS)
    assert needs_analyze(100_000, int(ANALYZE_MIN_ROWS + ANALYZE_FRACTION * 100_000))


def test_analyzes_a_bulk_load_and_skips_a_small_change(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # autovacuum would analyze it between the steps below; stsync's check is what is tested
        conn.execute("CREATE TABLE public.bulk (n integer) WITH (autovacuum_enabled = false)")
    _insert(db_dsn, 20_000)
    assert _planner_rows(db_dsn) < 0  # a fresh table: the planner knows nothing of it

    assert _analyze(db_dsn, {"public.bulk": 20_000}) == ["public.bulk"]
    assert _planner_rows(db_dsn) == 20_000

    _insert(db_dsn, 500)
    assert _analyze(db_dsn, {"public.bulk": 500}) == []
    assert _planner_rows(db_dsn) == 20_000

    _insert(db_dsn, 5_000)
    assert _analyze(db_dsn, {"public.bulk": 5_000}) == ["public.bulk"]
    assert _planner_rows(db_dsn) == 25_500
    assert _analyze(db_dsn, {}) == []


def test_a_table_this_role_does_not_own_is_reported_not_analyzed(db_dsn: str, caplog: Any) -> None:
    """ANALYZE of another role's table only warns and does nothing: it is not reported as analyzed, and the log
    says why, naming the table."""
    role = "stsync_stats_reader"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.bulk (n integer) WITH (autovacuum_enabled = false)")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT, INSERT ON public.bulk TO {role}")
    _insert(db_dsn, 20_000)
    other = psycopg.conninfo.make_conninfo(db_dsn, user=role)
    try:
        with caplog.at_level(logging.WARNING, logger="stsync.db"):
            assert _analyze(other, {"public.bulk": 20_000}) == []
        assert "public.bulk not refreshed: this database role does not own it" in caplog.text
        assert _planner_rows(db_dsn) < 0
        assert _analyze(db_dsn, {"public.bulk": 20_000}) == ["public.bulk"]  # its owner may
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE public.bulk")
            conn.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
            conn.execute(f"DROP ROLE {role}")
