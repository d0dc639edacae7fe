"""Bad configuration and unreachable services: one line on stderr, the documented exit code, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        yield sb


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_one_line_error(proc: Any, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("stsync: error: ")
    for needle in needles:
        assert needle in last
    return last


def test_unreachable_database_exits_69(sandbox: Any) -> None:
    env = cli_env(sandbox.url, f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres")
    _assert_one_line_error(run_cli(["sync", "incremental"], env), 69, "PostgreSQL", "cannot connect")


def test_unreachable_api_exits_69(db_dsn: str) -> None:
    """The API down: one line naming the host, not a line per stream (bench/outage_bench.py times it)."""
    host = f"127.0.0.1:{_closed_port()}"
    env = cli_env(f"http://{host}", db_dsn, STSYNC_SERVICETITAN__RETRY_ATTEMPTS="2")
    proc = run_cli(["sync", "incremental"], env)
    _assert_one_line_error(proc, 69, "unreachable", host)
    assert len((proc.stdout + proc.stderr).strip().splitlines()) <= 5, proc.stdout + proc.stderr


def test_api_down_with_a_token_cached_stops_every_stream_with_one_error(sandbox: Any, db_dsn: str) -> None:
    """Every stream's requests fail: the shared breaker stops them all, and the run says so once."""
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "reference"], env).returncode == 0  # a token in the cache, checkpoints stored
    sandbox.faults.set({"rules": [{"kind": "status", "status": 503, "retry_after": None, "path": "/tenant/"}]})
    try:
        proc = run_cli(["sync", "incremental"], env)
    finally:
        sandbox.faults.clear()
    last = _assert_one_line_error(proc, 69, "unreachable", "HTTP 503")
    assert "jobs:" not in last
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) <= 5, lines
    assert not any(line.startswith(("jobs:", "customers:")) for line in lines), "no line per stream"
    rerun = run_cli(["sync", "incremental"], env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]


def test_refused_credentials_exit_78_without_the_secret(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn, STSYNC_SERVICETITAN__CLIENT_SECRET="wrong-secret-value")
    proc = run_cli(["sync", "incremental"], env)
    _assert_one_line_error(proc, 78, "client_secret")
    assert "wrong-secret-value" not in proc.stderr + proc.stdout


def test_missing_secret_exits_78(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    del env["STSYNC_SERVICETITAN__APP_KEY"]
    _assert_one_line_error(run_cli(["sync", "incremental"], env), 78, "servicetitan.app_key")


def test_unknown_key_exits_78(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn, STSYNC_SERVICETITAN__CLIENT_SECRTE="x")
    _assert_one_line_error(run_cli(["sync", "incremental"], env), 78, "client_secrte")


def test_unknown_stream_is_a_usage_error(sandbox: Any, db_dsn: str) -> None:
    proc = run_cli(["sync", "incremental", "customerz"], cli_env(sandbox.url, db_dsn))
    assert proc.returncode == 2
    assert "customerz" in proc.stderr and "Traceback" not in proc.stderr


def test_dry_run_writes_nothing(sandbox: Any, db_dsn: str) -> None:
    """`--dry-run` fetches and counts but leaves every table, checkpoint and log empty."""
    import json

    import psycopg

    proc = run_cli(["sync", "full", "--dry-run", "--json"], cli_env(sandbox.url, db_dsn))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["dry_run"] is True and summary["totals"]["fetched"] > 1000
    with psycopg.connect(db_dsn) as conn:
        for table in ("st_jobs", "st_customers", "sync_state", "st_sync_log", "st_sync_quarantine"):
            assert conn.execute(f"SELECT count(*) FROM servicetitan.{table}").fetchone() == (0,), table


def test_last_job_pull_is_recorded(sandbox: Any, db_dsn: str) -> None:
    """The seed's job-sync cursor `lastJobPull` is kept in sync_state after the jobs stream completes."""
    import psycopg

    assert run_cli(["sync", "jobs"], cli_env(sandbox.url, db_dsn)).returncode == 0
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT value FROM servicetitan.sync_state WHERE key = 'lastJobPull'").fetchone()
    assert row is not None and row[0].startswith("20")
