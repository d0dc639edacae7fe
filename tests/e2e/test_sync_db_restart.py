"""PostgreSQL restarted in the middle of a sync: a clear one-line error and exit 69; the rerun completes."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import psycopg
import pytest

from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env, mirror_differences, run_cli


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.faults
def test_database_restart_mid_sync() -> None:
    with EmbeddedPostgres() as pg, Sandbox.start(SandboxOptions(scale="small", seed=9, export_batch_size=50)) as sb:
        migrate(pg.dsn)
        # Latency keeps the run going long enough to be cut in the middle.
        sb.faults.set({"rules": [{"kind": "latency", "ms": 30, "jitter_ms": 0, "path": "/export/"}]})
        env = cli_env(sb.url, pg.dsn)
        proc = subprocess.Popen(
            [STSYNC, "sync", "full"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_for(lambda: sum("/export/" in r["path"] for r in sb.requests) >= 10, 60, "10 export requests")
        pg.restart()
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 69, err[-2000:]
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err  # one line for the run, not one per stream
        assert lines[0].startswith("stsync: error: ") and "PostgreSQL" in lines[0]

        sb.faults.clear()
        rerun = run_cli(["sync", "full"], env)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        with psycopg.connect(pg.dsn) as conn:
            assert mirror_differences(conn, sb.world.dump()) == []
