"""Bad `--since` values and unknown stream names: one line, the documented exit code, nothing synced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        yield sb


@pytest.mark.parametrize(
    ("args", "extra", "code", "needle"),
    [
        (["sync", "--since", "2026xyz"], {}, 2, "'2026xyz' is not an ISO 8601 date"),
        (["sync", "jobs", "--since", "2026-13-45"], {}, 2, "'2026-13-45' is not an ISO 8601 date"),
        (["sync", "full", "jobz"], {}, 2, "unknown stream 'jobz'"),
        (["sync", "incremental"], {"STSYNC_SYNC__STREAMS_EXCLUDE": "jobs,jobz"}, 78, "unknown stream 'jobz'"),
        (["sync", "--sinse", "2026-01-01"], {}, 2, "No such option"),
    ],
)
def test_bad_argument_is_one_line_and_syncs_nothing(
    sandbox: Any, db_dsn: str, args: list[str], extra: dict[str, str], code: int, needle: str
) -> None:
    sandbox.clear_requests()
    proc = run_cli(args, cli_env(sandbox.url, db_dsn, **extra))
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stsync: error: ") and needle in lines[0], proc.stderr
    if code == 2:
        assert lines[0].endswith("--help`)"), "a usage error points at the command's help"
    assert proc.stdout == ""
    assert sandbox.requests == []
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM servicetitan.st_sync_log").fetchone() == (0,)


@pytest.mark.parametrize("which", ["directory", "missing"])
def test_a_config_that_is_not_a_readable_file_is_a_config_error(tmp_path: Any, db_dsn: str, which: str) -> None:
    path = tmp_path if which == "directory" else tmp_path / "nope.yaml"
    proc = run_cli(["--config", str(path), "sync", "incremental"], cli_env("http://127.0.0.1:9", db_dsn))
    assert proc.returncode == 78, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stsync: error: config error: ") and str(path) in lines[0]
