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


def test_the_key_is_the_config_and_every_stsync_variable(tmp_path: Path) -> None:
    base = {"TMPDIR": str(tmp_path), "STSYNC_DATABASE__URL": "postgresql://db/a", "HOME": "/root"}
    same = entry.lock_path("", {**base, "HOME": "/elsewhere"})
    assert entry.lock_path("", base) == same, "unrelated variables must not split the key"
    assert entry.lock_path("", {**base, "STSYNC_DATABASE__URL": "postgresql://db/b"}) != same
    assert entry.lock_path("x.yaml", base) != same
    assert entry.lock_path("", base).startswith(str(tmp_path) + "/stsync-sync-")


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
