"""The throwaway PostgreSQL used by `stsync demo` and the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from stsync.errors import DatabaseUnavailable
from stsync.sandbox.postgres import EmbeddedPostgres


def test_start_connect_stop_removes_the_directory() -> None:
    """A started server accepts connections on its DSN; stop() shuts it down and deletes its files."""
    with EmbeddedPostgres() as pg:
        base = pg.base_dir
        assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        dsn = pg.create_database("extra")
        with psycopg.connect(dsn) as conn:
            assert conn.info.dbname == "extra"
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)


def test_keep_leaves_the_files_and_says_how_to_stop() -> None:
    """With keep=True stop() stops the server but leaves the data directory for inspection."""
    # pytest's tmp_path is private to root; as root the server user must be able to reach the base dir.
    parent = Path(tempfile.mkdtemp(prefix="stsync-test-"))
    parent.chmod(0o755)
    base = parent / "pg"
    try:
        pg = EmbeddedPostgres(base_dir=base, keep=True)
        pg.start()
        try:
            assert "pg_ctl" in pg.stop_command() and str(base) in pg.stop_command()
        finally:
            pg.stop()
        assert (base / "data" / "PG_VERSION").exists()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_an_unreachable_base_dir_is_refused_with_a_reason(tmp_path: Path) -> None:
    """As root, a base directory the server user cannot traverse fails with a message, not a hang."""
    if os.geteuid() != 0:
        pytest.skip("only root hands the server to another user")
    tmp_path.parent.chmod(0o700)
    with pytest.raises(DatabaseUnavailable, match="cannot reach"):
        EmbeddedPostgres(base_dir=tmp_path / "pg").start()


def test_missing_binaries_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without server binaries the error says what to install, and nothing is started."""
    monkeypatch.setattr("stsync.sandbox.postgres._has_server", lambda _: False)
    with pytest.raises(DatabaseUnavailable, match=r"apt-get install -y postgresql.*brew install postgresql@16"):
        EmbeddedPostgres().start()


def test_a_cluster_whose_process_was_killed_is_stopped_and_removed_by_the_next_one() -> None:
    """kill -9 leaves a throwaway cluster running, with nobody left to stop it or delete its files (a large
    benchmark world's are tens of GB). The next EmbeddedPostgres to start stops that server and removes its
    directory; the cluster of a process still alive is left alone."""
    code = (
        "import sys\nfrom stsync.sandbox.postgres import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres().start()\nprint(pg.base_dir, pg.dsn, flush=True)\nsys.stdin.read()\n"
    )
    orphan = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert orphan.stdout is not None
    base, dsn = orphan.stdout.readline().split()
    orphan.kill()
    orphan.wait()
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute("SELECT 1")  # its server outlived it
    with EmbeddedPostgres() as alive, EmbeddedPostgres():
        assert not Path(base).exists()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=5)
        assert alive.data_dir.exists()
