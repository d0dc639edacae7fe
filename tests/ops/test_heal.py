"""`stsync health --heal`: the repairs it makes, and the ones it refuses to make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from stsync.ops.heal import HealSettings, repair
from tests.e2e.harness import cli_env, run_cli
from tests.sandbox_creds import TENANT

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _steps(dsn: str) -> None:
    """Three workflow steps: one whose lease ran out with an attempt open, one still leased, one waiting."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO automation.events (id, entity, st_id, event_type, version, new_values)"
            " VALUES (1, 'jobs', 7, 'job_completed', 'v1', '{}')"
        )
        conn.execute(
            "INSERT INTO automation.workflow_definitions (name, version_hash, trigger_event, definition)"
            " VALUES ('w', 'h', 'job_completed', '{}')"
        )
        conn.execute(
            "INSERT INTO automation.workflow_instances (id, workflow_name, version_hash, entity, st_id,"
            " trigger_event, event_id) VALUES (1, 'w', 'h', 'jobs', 7, 'job_completed', 1)"
        )
        conn.execute(
            "INSERT INTO automation.workflow_steps (instance_id, step_no, action, due_at, state, claim_id,"
            " claimed_until, attempts) VALUES"
            " (1, 1, 'ghl.add_tag', %(now)s - interval '1 hour', 'running', 'dead-poll', %(now)s - interval '1 minute', 1),"
            " (1, 2, 'ghl.add_tag', %(now)s - interval '1 hour', 'running', 'live-poll', %(now)s + interval '1 minute', 1),"
            " (1, 3, 'ghl.add_tag', %(now)s + interval '1 hour', 'waiting', NULL, NULL, 0)",
            {"now": NOW},
        )
        conn.execute(
            "INSERT INTO automation.workflow_step_executions (instance_id, step_no, attempt, idempotency_key)"
            " VALUES (1, 1, 1, 'stsync-1-1'), (1, 2, 1, 'stsync-1-2')"
        )


def test_repair_releases_only_expired_leases_and_closes_their_attempt(db_dsn: str) -> None:
    _steps(db_dsn)
    settings = HealSettings(db_dsn, location_id=None, dead_letters_after=timedelta(hours=1))
    assert repair(settings, NOW) == [
        "healed: released 1 expired workflow step leases; 1 unfinished attempts closed as 'unknown'"
    ]
    with psycopg.connect(db_dsn) as conn:
        steps = conn.execute(
            "SELECT step_no, state, claim_id, attempts FROM automation.workflow_steps ORDER BY step_no"
        ).fetchall()
        attempts = conn.execute(
            "SELECT step_no, result FROM automation.workflow_step_executions ORDER BY step_no"
        ).fetchall()
    assert steps == [(1, "waiting", None, 1), (2, "running", "live-poll", 1), (3, "waiting", None, 0)]
    assert attempts == [(1, "unknown"), (2, None)]
    assert repair(settings, NOW) == []  # nothing left to release


def test_repair_requeues_old_dead_letters_once(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO integrations.ghl_contacts (st_customer_id, location_id, sync_status, attempts,"
            " attempted_hash, updated_at) VALUES"
            " (1, 'loc', 'dead', 5, 'h1', %(now)s - interval '2 hours'),"  # dead long enough
            " (2, 'loc', 'dead', 5, 'h2', %(now)s - interval '5 minutes'),"  # too recent: backoff first
            " (3, 'other', 'dead', 5, 'h3', %(now)s - interval '2 hours')",  # another location's
            {"now": NOW},
        )
        conn.execute(
            "INSERT INTO integrations.ghl_webhook_posts (st_job_id, st_business_unit_id, status, attempts,"
            " posted_at) VALUES (9, 1, 'dead', 5, %(now)s - interval '3 hours')",
            {"now": NOW},
        )
    settings = HealSettings(db_dsn, location_id="loc", dead_letters_after=timedelta(hours=1))
    assert repair(settings, NOW) == [
        "healed: requeued GHL dead letters once (1 contacts, 1 webhook posts); the next `stsync ghl push` retries them"
    ]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT st_customer_id, attempted_hash, next_retry_at, healed_at FROM integrations.ghl_contacts"
            " ORDER BY st_customer_id"
        ).fetchall()
        assert rows == [(1, None, NOW, NOW), (2, "h2", None, None), (3, "h3", None, None)]
        assert conn.execute("SELECT status, attempts FROM integrations.ghl_webhook_posts").fetchall() == [("failed", 0)]
        # They died again: heal leaves them to a person now. Only contact 2, past its backoff a day later, is due.
        conn.execute(
            "UPDATE integrations.ghl_contacts SET attempted_hash = 'h1', next_retry_at = NULL WHERE st_customer_id = 1"
        )
        conn.execute("UPDATE integrations.ghl_webhook_posts SET status = 'dead'")
    assert repair(settings, NOW + timedelta(days=1)) == [
        "healed: requeued GHL dead letters once (1 contacts); the next `stsync ghl push` retries them"
    ]
    with psycopg.connect(db_dsn) as conn:
        healed = conn.execute("SELECT st_customer_id FROM integrations.ghl_contacts WHERE attempted_hash IS NULL")
        assert healed.fetchall() == [(2,)]


def _backdate(dsn: str, minutes: int) -> tuple[int, int]:
    """Every stream's runs moved ``minutes`` into the past (they went stale); the log's rows and streams."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE servicetitan.st_sync_log SET started_at = started_at - make_interval(mins => %(m)s),"
            " completed_at = completed_at - make_interval(mins => %(m)s)",
            {"m": minutes},
        )
        row = conn.execute("SELECT count(*), count(DISTINCT stream) FROM servicetitan.st_sync_log").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _incrementals(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return [
            (s, st)
            for s, st in conn.execute(
                "SELECT stream, status FROM servicetitan.st_sync_log WHERE sync_type = 'incremental' ORDER BY stream"
            )
        ]


def test_heal_catches_a_stalled_mirror_up_and_the_next_health_is_ok(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    _, streams = _backdate(db_dsn, 40)  # every 5 minutes: critical past 30
    before = run_cli(["health"], env)
    assert before.returncode == 2 and before.stdout.startswith("STSYNC CRITICAL - streams: "), before.stdout

    healed = run_cli(["health", "--heal"], env)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert healed.stdout.startswith("STSYNC OK - "), healed.stdout
    assert "healed: caught up " in healed.stdout and "with one incremental (exit 0)" in healed.stdout
    runs = _incrementals(db_dsn)
    assert len(runs) == streams and {st for _, st in runs} == {"completed"}  # one incremental per stream
    assert run_cli(["health"], env).returncode == 0


def test_heal_heals_nothing_while_a_run_holds_the_lock_and_says_why(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    rows, _ = _backdate(db_dsn, 40)
    with psycopg.connect(db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(20260523, hashtext(%s))", (f"stsync.sync:{TENANT}",))
        healed = run_cli(["health", "--heal"], env)
    assert healed.returncode == 2, healed.stdout
    assert "heal: no catch-up of " in healed.stdout
    assert "another run holds the sync lock (see the locks check)" in healed.stdout
    assert _incrementals(db_dsn) == []
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM servicetitan.st_sync_log").fetchone() == (rows,)
