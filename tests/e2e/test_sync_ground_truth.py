"""`stsync sync` against the sandbox over loopback leaves the mirror equal to the sandbox's ground truth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.config import load_config
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sync.service import sync
from tests.e2e.harness import cli_env, mirror_differences, sync_json


@pytest.fixture
def sandbox() -> Iterator[Any]:
    # A small export batch makes every feed span several pages.
    with Sandbox.start(SandboxOptions(scale="small", seed=7, export_batch_size=97)) as sb:
        yield sb


def _assert_mirror_equals_world(db_dsn: str, sandbox: Any) -> None:
    with psycopg.connect(db_dsn) as conn:
        problems = mirror_differences(conn, sandbox.world.dump())
    assert problems == []


def test_full_then_incremental_equals_ground_truth(sandbox: Any, db_dsn: str) -> None:
    """A full sync mirrors every record, and an incremental run right after changes nothing."""
    env = cli_env(sandbox.url, db_dsn)
    code, full = sync_json(["full"], env)
    assert code == 0, full
    assert all(s["status"] == "completed" for s in full["streams"]), full["streams"]
    assert full["totals"]["created"] > 1000
    _assert_mirror_equals_world(db_dsn, sandbox)

    code, inc = sync_json(["incremental"], env)
    assert code == 0
    assert inc["totals"]["created"] == 0
    assert inc["totals"]["updated"] == 0
    _assert_mirror_equals_world(db_dsn, sandbox)


def test_incremental_after_advance_follows_changes(sandbox: Any, db_dsn: str) -> None:
    """Changes made by `advance` reach the mirror through the stored continuation tokens."""
    env = cli_env(sandbox.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    sandbox.advance(minutes=120, changes=True)
    sandbox.advance(minutes=20, changes=False)  # past the export feed's 15-minute delay
    code, inc = sync_json(["incremental"], env)
    assert code == 0, inc
    assert inc["totals"]["created"] > 0
    assert inc["totals"]["updated"] > 0
    _assert_mirror_equals_world(db_dsn, sandbox)


def test_recent_changes_repeats_are_idempotent(sandbox: Any, db_dsn: str) -> None:
    """With includeRecentChanges the feed repeats rows; the mirror still equals the world, no duplicates."""
    env = cli_env(sandbox.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    sandbox.advance(minutes=10, changes=True)  # every change is younger than 15 minutes
    code, _first = sync_json(["incremental", "--recent-changes"], env)
    assert code == 0
    _assert_mirror_equals_world(db_dsn, sandbox)
    code, again = sync_json(["incremental", "--recent-changes"], env)
    assert code == 0
    assert again["totals"]["created"] == 0 and again["totals"]["updated"] == 0
    assert again["totals"]["fetched"] > 0  # the recent rows came again and were recognised as unchanged
    _assert_mirror_equals_world(db_dsn, sandbox)


@pytest.mark.faults
def test_faults_do_not_change_the_result(sandbox: Any, db_dsn: str) -> None:
    """429 storms, 5xx bursts, latency, resets, truncated bodies and a revoked token: same mirror."""
    env = cli_env(sandbox.url, db_dsn)
    sandbox.faults.set(
        {
            "rules": [
                {"kind": "latency", "ms": 5, "jitter_ms": 5},
                {"kind": "rate_limit", "count": 6, "retry_after": 0, "path": "/v2/tenant/"},
                {"kind": "rate_limit", "count": 3, "retry_after": None, "path": "/v2/tenant/"},
                {"kind": "status", "status": 503, "count": 6, "path": "/v2/tenant/"},
                {"kind": "drop", "count": 2, "path": "/export/"},
                {"kind": "truncate", "count": 2, "path": "/export/"},
            ]
        }
    )
    code, full = sync_json(["full"], env)
    assert code == 0, full
    sandbox.faults.clear()
    sandbox.advance(minutes=60, changes=True)
    sandbox.advance(minutes=20, changes=False)
    sandbox.faults.set({"rules": [{"kind": "status", "status": 502, "count": 3, "path": "/export/"}]})
    code, inc = sync_json(["incremental"], env)
    assert code == 0, inc
    _assert_mirror_equals_world(db_dsn, sandbox)
    statuses = [r["status"] for r in sandbox.requests]
    assert 429 in statuses and 503 in statuses and 502 in statuses


@pytest.mark.faults
def test_token_revoked_mid_run(sandbox: Any, db_dsn: str) -> None:
    """The sandbox revokes every token after the first committed page; the run re-authenticates once
    and finishes with the same mirror. Invoice items' pages are slow, so that some of them are asked for
    after the revocation however fast the other feeds download."""

    class RevokeAfterFirstPage:
        fired = False

        def stream_started(self, name: str) -> None:
            pass

        def page_written(self, name: str, result: Any) -> None:
            if not self.fired:
                self.fired = True
                sandbox.faults.set({"invalidate_tokens": True})

        def stream_finished(self, result: Any) -> None:
            pass

    sandbox.faults.set({"rules": [{"kind": "latency", "ms": 150, "path": "/export/invoice-items"}]})
    config = load_config(None, env=cli_env(sandbox.url, db_dsn))
    observer = RevokeAfterFirstPage()
    result = asyncio.run(sync(config, "full", [], observer=observer))
    assert observer.fired and result.exit_code == 0
    assert 401 in [r["status"] for r in sandbox.requests]
    _assert_mirror_equals_world(db_dsn, sandbox)


def test_malformed_record_is_quarantined_and_run_is_partial(sandbox: Any, db_dsn: str) -> None:
    """A record with a wrong type lands in quarantine with its payload; the rest of its page is mirrored."""
    env = cli_env(sandbox.url, db_dsn)
    sandbox.faults.set(
        {
            "rules": [
                {"kind": "malformed", "resource": "jobs", "field": "customerId", "value": "not-a-number", "count": 1}
            ]
        }
    )
    code, full = sync_json(["full"], env)
    assert code == 1
    jobs = next(s for s in full["streams"] if s["name"] == "jobs")
    assert jobs["status"] == "partial" and jobs["quarantined"] == 1
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT st_id, payload, reason FROM servicetitan.st_sync_quarantine WHERE stream = 'jobs'"
        ).fetchall()
        assert len(rows) == 1
        _st_id, payload, reason = rows[0]
        assert isinstance(payload, dict) and reason
        assert payload["customerId"] == "not-a-number" and reason.startswith("customerId:")
        world = sandbox.world.dump()
        mirrored = conn.execute("SELECT count(*) FROM servicetitan.st_jobs").fetchone()[0]
        assert mirrored == len(world["jobs"]) - 1  # only the malformed record is missing
        logged = conn.execute(
            "SELECT status, records_quarantined FROM servicetitan.st_sync_log WHERE stream = 'jobs'"
        ).fetchone()
        assert logged == ("partial", 1)


def test_sync_log_counts_match_what_the_sandbox_changed(sandbox: Any, db_dsn: str) -> None:
    """Created and updated per stream in st_sync_log equal the sandbox's own account of its changes."""
    env = cli_env(sandbox.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    changes = sandbox.advance(minutes=180, changes=True)
    sandbox.advance(minutes=20, changes=False)
    code, inc = sync_json(["incremental"], env)
    assert code == 0
    with psycopg.connect(db_dsn) as conn:
        logged = {
            stream: (created, updated, unchanged)
            for stream, created, updated, unchanged in conn.execute(
                "SELECT stream, records_created, records_updated, records_unchanged FROM servicetitan.st_sync_log "
                "WHERE run_id = %s",
                (inc["run_id"],),
            )
        }
    for stream, (created, updated, _unchanged) in logged.items():
        new = set(changes["created"].get(stream, []))
        changed = set(changes["updated"].get(stream, [])) - new
        assert (stream, created, updated) == (stream, len(new), len(changed))
    assert sum(c for c, _, _ in logged.values()) > 0 and sum(u for _, u, _ in logged.values()) > 0


def test_the_next_run_reuses_the_token_until_the_api_refuses_it(sandbox: Any, db_dsn: str) -> None:
    """Runs with one token cache (a machine's timer runs) ask the identity server once; after the API revoked
    the token, the next run is refused once, gets a fresh token, and still leaves the mirror equal."""
    env = cli_env(sandbox.url, db_dsn)

    def run(args: list[str]) -> tuple[int, list[int]]:
        before = len(sandbox.requests)
        code, doc = sync_json(args, env)
        assert code == 0, doc
        done = sandbox.requests[before:]
        return sum(r["path"] == "/connect/token" for r in done), [r["status"] for r in done]

    assert run(["full"])[0] == 1
    asked, _ = run(["incremental"])
    assert asked == 0
    sandbox.faults.set({"invalidate_tokens": True})
    sandbox.advance(minutes=60, changes=True)
    sandbox.advance(minutes=20, changes=False)
    asked, statuses = run(["incremental"])
    assert asked == 1 and 401 in statuses
    assert run(["incremental"])[0] == 0
    _assert_mirror_equals_world(db_dsn, sandbox)
