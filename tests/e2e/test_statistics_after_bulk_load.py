"""After a bulk load the mirror has planner statistics: `sync full` analyzes what it loaded, so the push that
follows never plans against tables the planner knows nothing about; a run that changed little skips it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli, sync_json


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=11)) as sb:
        yield sb


def _tables_the_push_reads() -> set[str]:
    text = resources.files("stsync.ghl").joinpath("queries.sql").read_text(encoding="utf-8")
    return set(re.findall(r"servicetitan\.(\w+)", text))


def _statistics(dsn: str, tables: set[str]) -> dict[str, tuple[int, int, int]]:
    """table → (rows, manual ANALYZEs, columns with statistics)."""
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in sorted(tables):
            rows = conn.execute(f"SELECT count(*) FROM servicetitan.{table}").fetchone()
            counts = conn.execute(
                "SELECT analyze_count, (SELECT count(*) FROM pg_stats WHERE schemaname = 'servicetitan' "
                "AND tablename = %(t)s) FROM pg_stat_user_tables WHERE schemaname = 'servicetitan' AND relname = %(t)s",
                {"t": table},
            ).fetchone()
            assert rows is not None and counts is not None, table
            out[table] = (rows[0], counts[0], counts[1])
    return out


def test_push_after_a_full_sync_finds_statistics_on_every_table_it_reads(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    code, full = sync_json(["full"], env)
    assert code == 0, full
    reads = _tables_the_push_reads()
    assert {"st_customers", "st_jobs", "st_estimates", "st_appointments"} <= reads
    stats = _statistics(db_dsn, reads)
    loaded = {t for t, (rows, _, _) in stats.items() if rows}
    assert loaded, stats
    missing = {t: s for t, s in stats.items() if t in loaded and (s[1] < 1 or s[2] < 1)}
    assert missing == {}, f"loaded but not analyzed (rows, analyzes, columns with statistics): {missing}"
    assert {f"servicetitan.{t}" for t in loaded} <= set(full["analyzed"])

    proc = run_cli(["ghl", "push", "--dry-run"], {**env, "STSYNC_GHL__LOCATION_ID": "loc-stats"})
    assert proc.returncode == 0, proc.stderr


def test_an_incremental_that_changed_little_analyzes_nothing(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    sandbox.advance(minutes=30, changes=True)
    code, inc = sync_json(["incremental"], env)
    assert code == 0, inc
    assert inc["totals"]["created"] + inc["totals"]["updated"] > 0
    assert inc["analyzed"] == []
