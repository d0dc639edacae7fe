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
    url = f"http://127.0.0.1:{_closed_port()}"
    env = cli_env(url, db_dsn, STSYNC_SERVICETITAN__RETRY_ATTEMPTS="2")
    _assert_one_line_error(run_cli(["sync", "incremental"], env), 69, "unreachable", url)


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
