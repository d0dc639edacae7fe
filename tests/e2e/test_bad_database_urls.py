"""Every shape of bad database.url, over every command that reads it: the documented exit code, one line on
stderr, and the password nowhere in the output.

The server is a private one (not the session's) because one case needs password authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import cli_env, run_cli

PASSWORD = "S3cret-PW-7"  # the test server's own throwaway role

COMMANDS = {
    "sync": ["sync", "incremental"],
    "sync --json": ["sync", "incremental", "--json"],
    "ghl push": ["ghl", "push"],
    "bu list": ["bu", "list"],
    "migrate": ["migrate"],
    "config show": ["config", "show"],
    "config check": ["config", "check", "--for", "sync"],  # GHL here is a placeholder that answers nothing
}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    sandbox_url: str

    def url(self, user: str = "pwuser", password: str = PASSWORD, db: str = "mirror", tail: str = "") -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{db}{tail}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with EmbeddedPostgres() as pg, Sandbox.start(SandboxOptions(scale="small", seed=5)) as sandbox:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE ROLE weak LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("CREATE DATABASE mirror")
            conn.execute("CREATE DATABASE empty")
        migrate(pg.dsn_for("mirror"))
        # Password authentication for the test's roles; trust for the superuser that set things up.
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text("host all pwuser,weak 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield Server(pg.host, pg.port, sandbox.url)


# case: (url builder, {command: exit code}, what the line says); commands not named exit like "default".
CASES: dict[str, tuple[Any, dict[str, int], str]] = {
    "sqlalchemy": (lambda s: s.url().replace("postgresql://", "postgresql+psycopg://"), {"default": 78}, "SQLAlchemy"),
    "leading space": (lambda s: " " + s.url(), {"default": 78}, "whitespace"),
    "bad separator": (
        lambda s: f"host={s.host} port={s.port} user=pwuser password {PASSWORD} dbname=mirror",
        {"default": 78},
        "key=value",
    ),
    "bad sslmode": (lambda s: s.url(tail="?sslmode=sometimes"), {"default": 78}, "sslmode"),
    "wrong password": (
        lambda s: s.url(password="not-" + PASSWORD),
        {"default": 78, "config show": 0},
        "password authentication failed",
    ),
    "missing database": (lambda s: s.url(db="nosuchdb"), {"default": 78, "config show": 0}, "does not exist"),
    "unmigrated": (
        lambda s: s.url(db="empty"),
        {"default": 78, "config show": 0, "config check": 0, "migrate": 0},
        "stsync migrate",
    ),
    "no privilege": (
        lambda s: s.url(user="weak"),
        {"default": 77, "config show": 0, "config check": 0},
        "permission denied",
    ),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CASES))
def test_bad_database_url(server: Server, case: str, command: str) -> None:
    build, codes, needle = CASES[case]
    if case == "unmigrated" and command == "migrate":
        pytest.skip("migrate is how an unmigrated database is fixed; covered by tests/test_migrations.py")
    env = cli_env(
        server.sandbox_url,
        build(server),
        STSYNC_GHL__API_BASE_URL="http://127.0.0.1:9",
        STSYNC_GHL__LOCATION_ID="loc-1",
        STSYNC_GHL__TOKEN="pit-test-token",
    )
    proc = run_cli(COMMANDS[command], env, timeout=120)
    expected = codes.get(command, codes["default"])
    output = proc.stdout + proc.stderr
    assert PASSWORD not in output, output
    assert proc.returncode == expected, output[-2000:]
    if expected == 0:
        return
    if command == "config check" and proc.stdout.startswith("config: ok"):  # a report, a line per check
        assert needle in proc.stdout
        return
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("stsync: error: ")
    assert needle in lines[0]
