"""Crash safety (SIGKILL mid-sync, then rerun) and one-run-at-a-time (advisory lock)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import (
    STSYNC,
    cli_env,
    committed_pages,
    export_requests,
    mirror_differences,
    run_cli,
    stored_tokens,
    wait_for,
)


@pytest.fixture(scope="module")
def medium_sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="medium", seed=3, export_batch_size=1000)) as sb:
        yield sb


@pytest.mark.slow
@pytest.mark.faults
def test_sigkill_during_full_sync_then_rerun_converges(medium_sandbox: Any, db_dsn: str) -> None:
    """Kill -9 at several points of a full sync of a medium world; reruns finish it, refetch no page
    that was committed before a kill, and the mirror equals the ground truth. Each run is killed once it
    has made so many export requests and committed a page of its own, so that the kill lands among its
    writes (downloads run ahead of them, so a request count alone can come before the first commit)."""
    sb = medium_sandbox
    env = cli_env(sb.url, db_dsn)
    committed: set[tuple[str, str | None]] = set()

    def due(before: int, point: int, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is not None:
            return True
        run = export_requests(sb.requests[before:])
        return len(run) >= point and bool(committed_pages(run, stored_tokens(db_dsn)))

    for point in (8, 15, 22):  # successful export requests into each run
        before = len(sb.requests)
        proc = subprocess.Popen([STSYNC, "sync", "full"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda b=before, p=point, pr=proc: due(b, p, pr), 120, f"{point} export requests and a commit")
        assert proc.poll() is None, "the sync finished before the kill point"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        run = export_requests(sb.requests[before:])
        refetched = [page for page in run if page in committed]
        assert refetched == [], f"pages committed before a kill were fetched again: {refetched[:5]}"
        committed |= committed_pages(run, stored_tokens(db_dsn))
    assert committed, "the killed runs committed nothing; the kill points are too early"

    before = len(sb.requests)
    final = run_cli(["sync", "full"], env)
    assert final.returncode == 0, final.stderr[-2000:]
    refetched = [page for page in export_requests(sb.requests[before:]) if page in committed]
    assert refetched == [], f"pages committed before a kill were fetched again: {refetched[:5]}"
    with psycopg.connect(db_dsn) as conn:
        assert mirror_differences(conn, sb.world.dump()) == []


@pytest.mark.faults
def test_overlapping_runs_exit_75(db_dsn: str) -> None:
    """Five concurrent `sync incremental` runs: exactly one syncs, the others exit 75 at once."""
    with Sandbox.start(SandboxOptions(scale="small", seed=11)) as sb:
        sb.faults.set({"latency": {"ms": 40, "jitter_ms": 0}})  # keep the winner busy for a while
        env = cli_env(sb.url, db_dsn)
        procs = [
            subprocess.Popen(
                [STSYNC, "sync", "incremental"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(5)
        ]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 75, 75, 75, 75], results
        losers = [err for code, err in results if code == 75]
        assert all("another stsync sync is running" in err for err in losers)
        assert all(len(err.strip().splitlines()) == 1 for err in losers)


def _holds_run_lock(db_dsn: str) -> bool:
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()
    return bool(row and row[0])


@pytest.mark.faults
def test_the_advisory_lock_refuses_a_run_the_local_fast_path_lets_through(db_dsn: str) -> None:
    """Runs with different settings for one tenant do not share the host-local flock; PostgreSQL's
    advisory lock still lets only one of them sync, and the crashed winner's lock dies with it."""
    with Sandbox.start(SandboxOptions(scale="small", seed=12)) as sb:
        sb.faults.set({"latency": {"ms": 300, "jitter_ms": 0}})  # the winner is killed, not awaited
        env = cli_env(sb.url, db_dsn)
        winner = subprocess.Popen([STSYNC, "sync", "full"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: _holds_run_lock(db_dsn), 60, "the first run to take the advisory lock")
            other = run_cli(["sync", "incremental"], {**env, "STSYNC_LOGGING__LEVEL": "warning"})
            assert other.returncode == 75, other.stderr
            assert other.stderr.strip() == "stsync: error: another stsync sync is running for this tenant; " + (
                "exiting without syncing"
            )
        finally:
            winner.kill()
            winner.wait()
        again = run_cli(["sync", "incremental"], env)
        assert again.returncode == 0, again.stderr[-2000:]
