"""`stsync state`, `logs` and `stats` against a mirror the CLI synced: what they print is what the database holds."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from stsync.sync.streams import STREAMS
from tests.e2e.harness import cli_env, run_cli, sync_json
from tests.sandbox_creds import TENANT

PUSH = (
    "INSERT INTO integrations.ghl_push_log (location_id, what, mode, status, started_at, duration_ms, examined,"
    " changes, failed, requests, error) VALUES ('loc-1', 'all', 'changes', 'partial', %s, 1500, 40, 12, 2, 14,"
    " '2 changes failed')"
)
FAILED = (
    "INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status, started_at, completed_at, duration_ms,"
    " error) VALUES (gen_random_uuid(), 'invoices', 'incremental', 'failed', %s, %s, 900, 'ServiceTitan answered 500')"
)


def _rows(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query, params).fetchall())


def _json(args: list[str], env: dict[str, str], code: int = 0) -> Any:
    proc = run_cli(args, env)
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture
def synced(sandbox: Any, db_dsn: str) -> dict[str, str]:
    """A full and an incremental sync, a failed run, and a GHL push in the logs."""
    env = cli_env(sandbox.url, db_dsn)
    assert sync_json(["full"], env)[0] == 0
    assert sync_json(["incremental"], env)[0] == 0
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        now = datetime.now(UTC)
        conn.execute(FAILED, (now, now))
        conn.execute(PUSH, (now,))
    return env


def test_logs_match_the_sync_and_push_logs(synced: dict[str, str], db_dsn: str) -> None:
    rows = _json(["logs", "--json", "--limit", "1000"], synced)
    db = _rows(db_dsn, "SELECT stream, sync_type, status, records_created FROM servicetitan.st_sync_log")
    pushes = [r for r in rows if r["kind"] == "ghl push"]
    runs = [r for r in rows if r["kind"] != "ghl push"]
    assert len(runs) == len(db) and len(pushes) == 1
    assert sorted((r["name"], r["kind"], r["status"], r["counts"]["created"]) for r in runs) == sorted(
        (s, f"sync {t}", st, c) for s, t, st, c in db
    )
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    assert all(r["started_at"].endswith("+00:00") for r in rows)  # ISO 8601 with the zone
    assert pushes[0]["counts"] == {"examined": 40, "changes": 12, "failed": 2, "requests": 14}

    jobs = _json(["logs", "--json", "--stream", "jobs"], synced)
    assert [(r["kind"], r["name"]) for r in jobs] == [("sync incremental", "jobs"), ("sync full", "jobs")]
    failed = _json(["logs", "--json", "--status", "failed"], synced)
    assert [(r["name"], r["message"]) for r in failed] == [("invoices", "ServiceTitan answered 500")]
    assert len(_json(["logs", "--json", "--limit", "3"], synced)) == 3

    text = run_cli(["logs", "--status", "failed"], synced)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["started", "at", "kind"] and len(lines) == 2
    assert "invoices" in lines[1] and "ServiceTitan answered 500" in lines[1]
    bad = run_cli(["logs", "--since", "last tuesday"], synced)
    assert bad.returncode == 2 and "'last tuesday' is neither an ISO 8601 date" in bad.stderr


def test_stats_match_the_logs_per_day_and_stream(synced: dict[str, str], db_dsn: str) -> None:
    found = _json(["stats", "--json", "--since", "2000-01-01"], synced)
    db = _rows(
        db_dsn,
        "SELECT started_at::date::text, stream, count(*), count(*) FILTER (WHERE status = 'failed'),"
        " sum(records_created), sum(records_updated), sum(records_unchanged), sum(records_quarantined)"
        " FROM servicetitan.st_sync_log GROUP BY 1, 2",
    )
    got = [
        (r["day"], r["stream"], r["runs"], r["failed"], r["created"], r["updated"], r["unchanged"], r["quarantined"])
        for r in found["streams"]
    ]
    assert sorted(got) == sorted(db)
    invoices = next(r for r in found["streams"] if r["stream"] == "invoices")
    assert (invoices["runs"], invoices["failed"]) == (3, 1)
    assert [(g["location_id"], g["pushes"], g["requests"], g["failed"]) for g in found["ghl"]] == [("loc-1", 1, 14, 2)]
    text = run_cli(["stats"], synced)  # the last 7 days
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].split()[:2] == ["day", "stream"]
    assert sum(1 for line in text.stdout.splitlines() if " invoices " in f" {line} ") == 1
    assert "loc-1" in text.stdout


def test_state_lists_gets_sets_and_resets_with_a_note(synced: dict[str, str], db_dsn: str) -> None:
    listed = _json(["state", "list", "--json"], synced)
    assert [(c["key"], c["value"]) for c in listed] == _rows(
        db_dsn, "SELECT key, value FROM servicetitan.sync_state ORDER BY key"
    )
    mark = _rows(db_dsn, "SELECT value FROM servicetitan.sync_state WHERE key = 'jobs.high_water'")[0][0]
    got = run_cli(["state", "get", "jobs.high_water"], synced)
    assert (got.returncode, got.stdout) == (0, f"{mark}\n")
    missing = run_cli(["state", "get", "jobs.nothing"], synced)
    assert missing.returncode == 1 and "'jobs.nothing' is not set" in missing.stderr
    assert [c["key"] for c in _json(["state", "list", "--stream", "jobs", "--json"], synced)] == sorted(
        k for k, _ in _rows(db_dsn, "SELECT key, value FROM servicetitan.sync_state WHERE key LIKE 'jobs.%%'")
    )

    unconfirmed = run_cli(["state", "set", "jobs.high_water", "2026-01-01T00:00:00Z"], synced)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr
    for args, line in (
        (["jobs.cursor", "x"], "'jobs.cursor' is no checkpoint"),
        (["jobs.high_water", "soon"], "'soon' is not an ISO 8601 date-time"),
        (["jobs.walk", "halfway"], "'halfway' is not a value of jobs.walk"),
    ):
        bad = run_cli(["state", "set", *args, "--yes"], synced)
        assert bad.returncode == 2 and line in bad.stderr, bad.stderr
    done = run_cli(["state", "set", "jobs.high_water", "2026-01-01T00:00:00Z", "--yes"], synced)
    assert done.returncode == 0, done.stderr
    assert _rows(db_dsn, "SELECT value FROM servicetitan.sync_state WHERE key = 'jobs.high_water'") == [
        ("2026-01-01T00:00:00+00:00",)
    ]
    note = f"state set jobs.high_water: '{mark}' -> '2026-01-01T00:00:00+00:00'"
    assert done.stdout.strip() == note
    assert _rows(db_dsn, "SELECT stream, note FROM servicetitan.st_sync_log WHERE sync_type = 'state'") == [
        ("jobs", note)
    ]
    assert _json(["logs", "--json", "--limit", "1", "--stream", "jobs"], synced)[0]["message"] == note

    zoneless = run_cli(["state", "set", "jobs.high_water", "2026-01-02T00:00:00", "--yes"], synced)
    assert zoneless.returncode == 0  # zone-less means UTC, stored with its zone: the next run can compare it
    assert _rows(db_dsn, "SELECT value FROM servicetitan.sync_state WHERE key = 'jobs.high_water'") == [
        ("2026-01-02T00:00:00+00:00",)
    ]
    assert sync_json(["incremental", "jobs"], synced)[0] == 0
    for args in (["logs", "--stream", "jbos"], ["state", "list", "--stream", "jbos"]):
        wrong = run_cli(args, synced)
        assert wrong.returncode == 2 and "unknown stream 'jbos'" in wrong.stderr, wrong.stderr

    reset = run_cli(["state", "reset", "jobs", "--yes"], synced)
    assert reset.returncode == 0 and reset.stdout.startswith("state reset jobs: removed jobs.")
    assert _rows(db_dsn, "SELECT key FROM servicetitan.sync_state WHERE key LIKE 'jobs.%%'") == []
    jobs = _rows(db_dsn, "SELECT count(*) FROM servicetitan.st_jobs")[0][0]
    code, doc = sync_json(["incremental", "jobs"], synced)  # a stream without checkpoints is walked whole
    assert code == 0 and doc["streams"][0]["fetched"] == jobs


def test_state_changes_wait_for_no_run_they_refuse_while_one_holds_the_lock(
    synced: dict[str, str], db_dsn: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(20260523, hashtext(%s))", (f"stsync.sync:{TENANT}",))
        held = run_cli(["state", "reset", "jobs", "--yes"], synced)
    assert held.returncode == 75, held.stderr
    assert _rows(db_dsn, "SELECT count(*) FROM servicetitan.sync_state WHERE key LIKE 'jobs.%%'")[0][0] > 0


def test_a_terminal_table_shows_values_as_text_not_markup(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from stsync.cli.tables import render

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    render("t", ("error", "n"), [("token abc[/x] and [bold]this[/bold]", 3)])
    out = capsys.readouterr().out
    assert "abc[/x]" in out and "[bold]this[/bold]" in out


def test_streams_list_matches_the_mirror(synced: dict[str, str], db_dsn: str) -> None:
    env = {**synced, "STSYNC_SYNC__STREAMS_EXCLUDE": "payments"}
    found = {r["stream"]: r for r in _json(["streams", "list", "--json"], env)}
    assert set(found) == {s.name for s in STREAMS}
    for stream in STREAMS:
        where = " AND ".join(f"{k} = '{v}'" for k, v in stream.key_constants.items()) or "true"
        rows = _rows(db_dsn, f"SELECT count(*) FROM servicetitan.{stream.table} WHERE {where}")[0][0]
        assert found[stream.name]["rows"] == rows, stream.name
        assert found[stream.name]["enabled"] is (stream.name != "payments")
    last = _rows(
        db_dsn,
        "SELECT completed_at FROM servicetitan.st_sync_log WHERE stream = 'jobs' AND status = 'completed'"
        " ORDER BY started_at DESC LIMIT 1",
    )[0][0]
    assert found["jobs"]["last_success"] == last.isoformat() and found["jobs"]["last_status"] == "completed"
    assert found["invoices"]["last_status"] == "failed"  # the run inserted above
    text = run_cli(["streams", "list"], env)
    assert text.returncode == 0 and text.stdout.splitlines()[0].split()[:3] == ["stream", "module", "feed"]
    assert len(text.stdout.splitlines()) == 1 + len(STREAMS)
