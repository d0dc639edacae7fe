"""Crash safety (SIGKILL mid-sync, then rerun) and one-run-at-a-time (advisory lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sync.streams import STREAMS
from tests.e2e.harness import STSYNC, cli_env, mirror_differences, run_cli

EXPORT = "/export/"


def _export_requests(requests: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [
        (r["path"], (r.get("query") or {}).get("from")) for r in requests if EXPORT in r["path"] and r["status"] == 200
    ]


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll a condition; the test fails (not sleeps its way through) if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def medium_sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="medium", seed=3, export_batch_size=1000)) as sb:
        yield sb


def _committed_pages(run: list[tuple[str, str | None]], stored: dict[str, str]) -> set[tuple[str, str | None]]:
    """The (path, from) pages a killed run committed: on each feed, those requested before the stored token."""
    committed: set[tuple[str, str | None]] = set()
    by_path: dict[str, list[str | None]] = {}
    for path, token in run:
        by_path.setdefault(path, []).append(token)
    for path, tokens in by_path.items():
        resume = stored.get(path)
        if resume is None:
            continue  # nothing of this feed was committed
        prefix = tokens[: tokens.index(resume)] if resume in tokens else tokens
        committed.update((path, t) for t in prefix)
    return committed


def _stored_tokens(db_dsn: str) -> dict[str, str]:
    """Stored continuation token per export path, read from sync_state."""
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT key, value FROM servicetitan.sync_state WHERE key LIKE '%.continue_from'"
        ).fetchall()
    by_stream = {key.removesuffix(".continue_from"): value for key, value in rows}
    return {
        f"/{s.module}/v2/tenant/1234567/{s.export_path}": by_stream[s.name]
        for s in STREAMS
        if s.export_path and s.name in by_stream
    }


@pytest.mark.slow
def test_sigkill_during_full_sync_then_rerun_converges(medium_sandbox: Any, db_dsn: str) -> None:
    """Kill -9 at several points of a full sync of a medium world; reruns finish it, refetch no page
    that was committed before a kill, and the mirror equals the ground truth."""
    sb = medium_sandbox
    env = cli_env(sb.url, db_dsn)
    committed: set[tuple[str, str | None]] = set()
    for point in (8, 15, 22):  # successful export requests into each run
        before = len(sb.requests)
        proc = subprocess.Popen([STSYNC, "sync", "full"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(
            lambda b=before, p=point, pr=proc: len(_export_requests(sb.requests[b:])) >= p or pr.poll() is not None,
            120,
            f"{point} export requests",
        )
        assert proc.poll() is None, "the sync finished before the kill point"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        run = _export_requests(sb.requests[before:])
        refetched = [page for page in run if page in committed]
        assert refetched == [], f"pages committed before a kill were fetched again: {refetched[:5]}"
        committed |= _committed_pages(run, _stored_tokens(db_dsn))
    assert committed, "the killed runs committed nothing; the kill points are too early"

    before = len(sb.requests)
    final = run_cli(["sync", "full"], env)
    assert final.returncode == 0, final.stderr[-2000:]
    refetched = [page for page in _export_requests(sb.requests[before:]) if page in committed]
    assert refetched == [], f"pages committed before a kill were fetched again: {refetched[:5]}"
    with psycopg.connect(db_dsn) as conn:
        assert mirror_differences(conn, sb.world.dump()) == []


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
