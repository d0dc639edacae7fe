"""`stsync health` under staged conditions, against a real migrated database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from stsync.ops.health import HealthSettings, Limits, Report, Status, check

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
STREAMS = (("customers", 5.0), ("jobs", 5.0))


def _settings(dsn: str, **kw: Any) -> HealthSettings:
    return HealthSettings(dsn=dsn, tenant_id=1234567, streams=STREAMS, **kw)


def _log(dsn: str, stream: str, ago_minutes: float, status: str = "completed", error: str | None = None) -> None:
    at = NOW - timedelta(minutes=ago_minutes)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status, started_at, completed_at, error)"
            " VALUES (%s, %s, 'incremental', %s, %s, %s, %s)",
            (uuid.uuid4(), stream, status, at - timedelta(seconds=5), at, error),
        )


def _fresh(dsn: str) -> None:
    for name, _ in STREAMS:
        _log(dsn, name, 1)


def _by_name(report: Report) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def test_all_fresh_is_ok(db_dsn: str) -> None:
    _fresh(db_dsn)
    report = check(_settings(db_dsn), NOW)
    assert report.status == Status.OK, report.lines()
    assert report.lines()[0].startswith(f"STSYNC OK - {len(report.checks)} checks OK|")
    assert [s.status for s in report.streams] == [Status.OK, Status.OK]


def test_a_stream_stale_past_two_and_six_times_its_schedule(db_dsn: str) -> None:
    _log(db_dsn, "customers", 1)
    _log(db_dsn, "jobs", 11)  # every 5 minutes: stale past 10
    report = check(_settings(db_dsn), NOW)
    assert report.status == Status.WARNING
    assert _by_name(report)["streams"].summary == "1 stale: jobs 11m ago (expected every 5m)"
    _log(db_dsn, "jobs", 31)  # an older success changes nothing: the newest counts
    assert check(_settings(db_dsn), NOW).status == Status.WARNING
    assert check(_settings(db_dsn), NOW + timedelta(minutes=20)).status == Status.CRITICAL  # 31 > 6 x 5


def test_a_stream_never_synced_is_critical(db_dsn: str) -> None:
    _log(db_dsn, "customers", 1)
    report = check(_settings(db_dsn), NOW)
    assert report.status == Status.CRITICAL
    assert "jobs never synced" in _by_name(report)["streams"].summary


def test_a_failed_last_run_is_critical_and_says_why(db_dsn: str) -> None:
    _fresh(db_dsn)
    _log(db_dsn, "jobs", 0.5, "failed", "ServiceTitan kept failing: HTTP 503")
    report = check(_settings(db_dsn), NOW)
    assert report.status == Status.CRITICAL
    assert _by_name(report)["last runs"].summary == "jobs failed: ServiceTitan kept failing: HTTP 503"


def test_ghl_dead_letters_warn_then_go_critical_as_configured(db_dsn: str) -> None:
    _fresh(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO integrations.ghl_push_state (location_id, changes_through, settings_digest)"
            " VALUES ('loc', %s, 'd')",
            (NOW,),
        )
        conn.execute(
            "INSERT INTO integrations.ghl_contacts (st_customer_id, location_id, sync_status, attempts)"
            " SELECT g, 'loc', 'dead', 5 FROM generate_series(1, 3) g"
        )
    report = check(_settings(db_dsn, location_id="loc"), NOW)
    assert report.status == Status.WARNING
    assert _by_name(report)["ghl dead letters"].summary.startswith("3 contacts, 0 opportunities, 0 webhook posts")
    strict = _settings(db_dsn, location_id="loc", limits=Limits(ghl_dead_critical=3))
    assert check(strict, NOW).status == Status.CRITICAL


def test_a_lock_held_past_its_limit_is_critical(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(20260523, hashtext('stsync.sync:1234567'))")
        later = NOW.replace(year=2099)  # the holder's session began now: judge it from far later
        for name, _ in STREAMS:
            _log(db_dsn, name, 1)
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("UPDATE servicetitan.st_sync_log SET completed_at = %s", (later,))
        report = check(_settings(db_dsn), later)
        locks = _by_name(report)["locks"]
        assert locks.status == Status.CRITICAL and locks.summary.startswith("held too long (over 2.0h): sync (pid ")
        assert report.status == Status.CRITICAL
    assert _by_name(check(_settings(db_dsn), later))["locks"].summary == "none held"


def test_runs_that_died_are_reported_unless_a_run_holds_the_lock(db_dsn: str) -> None:
    _fresh(db_dsn)
    _log(db_dsn, "jobs", 3, "started")
    report = check(_settings(db_dsn), NOW)
    assert _by_name(report)["dead runs"].status == Status.WARNING
    with psycopg.connect(db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(20260523, hashtext('stsync.sync:1234567'))")
        assert _by_name(check(_settings(db_dsn), NOW))["dead runs"].status == Status.OK


def test_an_unmigrated_database_is_critical_and_says_to_migrate(db_dsn: str) -> None:
    _fresh(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM public.stsync_migrations WHERE name LIKE '0015%'")
    report = check(_settings(db_dsn), NOW)
    assert report.status == Status.CRITICAL
    assert _by_name(report)["database"].summary == (
        "1 migrations pending (0015_health_and_heal.sql): run `stsync migrate`"
    )


def test_a_check_that_raises_is_critical_and_named(db_dsn: str) -> None:
    _fresh(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE servicetitan.st_sync_quarantine")
    report = check(_settings(db_dsn), NOW)
    quarantine = _by_name(report)["quarantine"]
    assert quarantine.status == Status.CRITICAL
    assert quarantine.summary.startswith("the check failed to run: the database is not migrated")
    assert _by_name(report)["streams"].status == Status.OK  # the others still ran


def test_the_database_down_is_unknown(tmp_path: Path) -> None:
    report = check(_settings("postgresql://stsync@127.0.0.1:1/none", connect_timeout=1), NOW)
    assert report.status == Status.UNKNOWN
    assert {c.status for c in report.checks} == {Status.UNKNOWN}
    assert report.lines()[0].startswith("STSYNC UNKNOWN - database: cannot be reached: ")


def _env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env.update(STSYNC_DATABASE__URL=dsn, STSYNC_SERVICETITAN__TENANT_ID="1234567")
    return env


def _stsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stsync", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_cli_exits_with_the_nagios_code_and_writes_the_prometheus_file_atomically(
    db_dsn: str, tmp_path: Path
) -> None:
    env = _env(db_dsn)
    env["STSYNC_SYNC__STREAMS_EXCLUDE"] = ",".join(
        s.name for s in __import__("stsync.sync.streams", fromlist=["STREAMS"]).STREAMS if s.name != "jobs"
    )
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status, started_at, completed_at)"
            " VALUES (gen_random_uuid(), 'jobs', 'incremental', 'completed', now(), now())"
        )
    prom = tmp_path / "textfile" / "stsync.prom"
    prom.parent.mkdir()
    prom.write_text("old\n")
    before = prom.stat().st_ino
    with prom.open() as reader:  # a collector that had opened the old file still reads all of it
        done = _stsync(env, "health", "--prometheus", str(prom))
        assert reader.read() == "old\n"
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("STSYNC OK - ")
    assert prom.stat().st_ino != before and sorted(p.name for p in prom.parent.iterdir()) == ["stsync.prom"]
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert families["stsync_health_status"].samples[0].value == 0
    checks = {s.labels["check"]: s.value for s in families["stsync_health_check_status"].samples}
    assert checks["streams"] == 0 and checks["database"] == 0
    assert [s.labels["stream"] for s in families["stsync_stream_status"].samples] == ["jobs"]

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE servicetitan.st_sync_log SET completed_at = now() - interval '1 hour'")
    done = _stsync(env, "health", "--json")
    assert done.returncode == 2
    import json

    doc = json.loads(done.stdout)
    assert doc["status"] == "CRITICAL" and doc["streams"][0]["stream"] == "jobs"
    assert doc["streams"][0]["status"] == "CRITICAL" and doc["streams"][0]["age_seconds"] >= 3600


class _Pings:
    """A healthchecks.io stand-in on loopback: records each POST's path and body."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen = self.seen = []  # type: list[tuple[str, str]]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                seen.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/3f0c-secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_ping_reports_start_then_success_or_fail_with_the_report(db_dsn: str) -> None:
    pings = _Pings()
    env = _env(db_dsn)
    env["STSYNC_HEALTH_PING_URL"] = pings.url
    try:
        done = _stsync(env, "health")  # nothing synced yet: CRITICAL
        assert done.returncode == 2
        assert [p for p, _ in pings.seen] == ["/ping/3f0c-secret/start", "/ping/3f0c-secret/fail"]
        assert pings.seen[1][1].splitlines()[0] == done.stdout.splitlines()[0]
    finally:
        pings.server.shutdown()
        pings.server.server_close()
    env["STSYNC_HEALTH_PING_URL"] = pings.url  # the server is gone: the ping fails, the exit code stays
    done = _stsync(env, "health")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["stsync health: ping to 127.0.0.1 failed: ConnectError"]
    assert "3f0c-secret" not in done.stderr + done.stdout
