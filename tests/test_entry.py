"""The console script's host-local fast path for overlapping `stsync sync` runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stsync.cli import entry


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sync", "incremental"], ""),
        (["sync"], ""),
        (["--config", "/etc/stsync.yaml", "sync", "full"], "/etc/stsync.yaml"),
        (["-c", "a.yaml", "--debug", "sync", "jobs"], "a.yaml"),
        (["--config=b.yaml", "sync"], "b.yaml"),
        (["sync", "--help"], None),
        (["sync", "full", "-h"], None),
        (["migrate"], None),
        (["ghl", "push"], None),
        (["--config"], None),
        ([], None),
    ],
)
def test_only_real_sync_runs_take_the_flock(
    argv: list[str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STSYNC_CONFIG", raising=False)
    assert entry.sync_config_path(argv) == expected


def test_the_key_is_everything_that_picks_the_tenant_and_database(tmp_path: Path) -> None:
    base = {"TMPDIR": str(tmp_path), "STSYNC_DATABASE__URL": "postgresql://db/a", "HOME": "/root"}
    same = entry.lock_path("", {**base, "HOME": "/elsewhere"}, cwd="/srv")
    assert entry.lock_path("", base, cwd="/srv") == same, "unrelated variables must not split the key"
    assert entry.lock_path("", {**base, "STSYNC_DATABASE__URL": "postgresql://db/b"}, cwd="/srv") != same
    assert entry.lock_path("x.yaml", base, cwd="/srv") != same
    assert entry.lock_path("", {**base, "PGDATABASE": "staging"}, cwd="/srv") != same
    assert entry.lock_path("", {**base, "CREDENTIALS_DIRECTORY": "/run/credentials/b"}, cwd="/srv") != same
    assert entry.lock_path("", base, cwd="/elsewhere") != same, "relative secret-file paths start from here"
    assert same.startswith(str(tmp_path) + "/stsync-sync-")


def test_a_second_holder_is_refused_and_a_dead_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flock belongs to the open descriptor: while it is held a second open is refused; once the
    holder's descriptor is gone (a crashed process), the next run gets it."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(entry, "_held", [])
    assert entry.another_sync_running(["sync"]) is False
    held = entry._held[0]
    assert entry.another_sync_running(["sync"]) is True
    os.close(held)
    assert entry.another_sync_running(["sync"]) is False
    os.close(entry._held[-1])


def test_a_lock_file_owned_by_someone_else_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another local user could pre-create the file in a shared /tmp and hold it: the fast path then steps
    aside (the advisory lock decides) instead of refusing every run."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(entry, "_held", [])
    monkeypatch.setattr(entry.os, "geteuid", lambda: os.getuid() + 1)
    assert entry.another_sync_running(["sync"]) is False
    assert entry._held == []
