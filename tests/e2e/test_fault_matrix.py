"""CI's subset of the fault matrix, through the same scenario code as `bench/faults.py` (which runs the
whole matrix: 20 kills per sync type, and prints a table). Select it with `pytest -m faults`.

The other fault tests (API faults and a revoked token in test_sync_ground_truth, kills on a medium world
in test_sync_crash_and_overlap, a PostgreSQL restart in test_sync_db_restart) carry the same marker.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from bench import faults
from stsync.sandbox import SandboxOptions

pytestmark = pytest.mark.faults

OPTS = SandboxOptions(scale="small", seed=42, export_batch_size=50)


class Server:
    """What the scenarios need of a PostgreSQL server: a new database per run."""

    def __init__(self, pg_server: Any) -> None:
        self.pg = pg_server

    def create_database(self, name: str) -> str:
        import psycopg

        name = f"{name}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.pg.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return str(self.pg.dsn_for(name))


def test_kill_9_during_full_and_incremental_syncs_converges(pg_server: Any) -> None:
    rows = faults.kills(Server(pg_server), OPTS, 2, random.Random(7))  # type: ignore[arg-type]
    assert [(name, runs, converged) for name, runs, converged, _ in rows] == [
        ("kill -9 during full sync", 2, 2),
        ("kill -9 during incremental sync", 2, 2),
    ]


def test_ten_concurrent_incremental_runs_one_syncs(pg_server: Any) -> None:
    [(_name, _runs, converged, detail)] = faults.overlap(Server(pg_server), OPTS, 10)  # type: ignore[arg-type]
    assert converged == 1, detail
    assert "exit codes [0, 75, 75, 75, 75, 75, 75, 75, 75, 75]" in detail


def test_api_faults_leave_the_fault_free_mirror(pg_server: Any) -> None:
    rows = faults.api_faults(Server(pg_server), OPTS)  # type: ignore[arg-type]
    assert [r for r in rows if r[2] != r[1]] == [], rows
    assert len(rows) == len(faults.FAULTS) + 1
