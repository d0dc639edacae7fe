"""Events captured by real syncs against the sandbox: none from the first full sync (history), exactly the
changes the world made on the next incremental, none from a repeat (includeRecentChanges serves recent
records again) or from a full re-read, and each committed page's events exactly once after kill -9."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import STSYNC, cli_env, run_cli, sync_json, wait_for

_STATUS = {"jobs": lambda r: r["jobStatus"], "estimates": lambda r: r["status"]["name"]}


def expected_events(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, int, str]]:
    """What the merge must emit for the world's change from ``before`` to ``after`` (install units aside)."""
    out: set[tuple[str, int, str]] = set()
    for entity, created, becomes in (
        ("jobs", "job_created", {"Completed": "job_completed"}),
        ("estimates", "estimate_created", {"Sold": "estimate_approved", "Dismissed": "estimate_rejected"}),
        ("invoices", "invoice_created", {}),
        ("appointments", "appointment_created", {}),
    ):
        old_records, new_records = before.get(entity, {}), after.get(entity, {})
        for key, record in new_records.items():
            old = old_records.get(key)
            if old == record:
                continue
            if old is None:
                out.add((entity, int(key), created))
            if entity in _STATUS:
                status = _STATUS[entity](record)
                if status in becomes and (old is None or _STATUS[entity](old) != status):
                    out.add((entity, int(key), becomes[status]))
    return out


def captured(dsn: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(dsn) as conn:
        return [
            (e, int(i), t)
            for e, i, t in conn.execute(
                "SELECT entity, st_id, event_type FROM automation.events "
                "WHERE event_type NOT IN ('invoice_overdue', 'install_job_created')"
            )
        ]


@pytest.fixture(scope="module")
def small_sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=21, export_batch_size=200)) as sb:
        yield sb


def test_history_emits_nothing_and_changes_emit_exactly_their_events(small_sandbox: Any, db_dsn: str) -> None:
    sb = small_sandbox
    env = cli_env(sb.url, db_dsn)
    code, first = sync_json(["full"], env)
    assert code == 0 and first["totals"]["events"] == 0 and captured(db_dsn) == []
    before = sb.world.dump()
    sb.advance(minutes=240, changes=True)
    after = sb.world.dump()
    code, inc = sync_json(["incremental"], env)  # includeRecentChanges: the changes of the last minutes too
    assert code == 0
    expected = expected_events(before, after)
    got = captured(db_dsn)
    assert len(got) == len(set(got)) and set(got) == expected
    assert {t for _, _, t in expected} >= {"job_created", "job_completed", "estimate_created"}
    assert inc["totals"]["events"] >= len(expected)
    code, repeat = sync_json(["incremental"], env)  # the recent records are served again
    assert code == 0 and repeat["totals"]["fetched"] > 0 and repeat["totals"]["events"] == 0
    code, full = sync_json(["full"], env)  # every record re-read
    assert code == 0 and full["totals"]["events"] == 0
    assert sorted(captured(db_dsn)) == sorted(got)


@pytest.mark.faults
def test_sigkill_during_an_incremental_then_rerun_leaves_each_event_once(small_sandbox: Any, db_dsn: str) -> None:
    sb = small_sandbox
    env = cli_env(sb.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    before = sb.world.dump()
    sb.advance(minutes=600, changes=True)
    after = sb.world.dump()
    sb.faults.set({"latency": {"ms": 30, "jitter_ms": 0}})
    landed = 0
    try:
        for _ in range(3):  # each run is killed once it has committed a page with events
            seen = len(captured(db_dsn))
            proc = subprocess.Popen([STSYNC, "sync", "incremental"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            wait_for(lambda p=proc, n=seen: p.poll() is not None or len(captured(db_dsn)) > n, 120, "new events")
            landed += proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    finally:
        sb.faults.clear()
    assert landed, "every run finished before its kill: the kills prove nothing"
    final = run_cli(["sync", "incremental"], env)
    assert final.returncode == 0, final.stderr[-2000:]
    got = captured(db_dsn)
    assert len(got) == len(set(got)), "an event was written twice"
    assert set(got) == expected_events(before, after)
