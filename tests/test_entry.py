"""The console script: its host-local fast path for overlapping `stsync sync` runs, and how it ends the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stsync.cli import entry, startup


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


def _end_in_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_ending_without_teardown_keeps_output_exit_handlers_and_the_code() -> None:
    """The process ends without the interpreter's teardown, but buffered output is written, exit handlers
    run, and the exit code is the one asked for."""
    done = _end_in_child(
        "import atexit, sys\n"
        "from stsync.cli.startup import end as _end\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "sys.stdout.write('x' * 200_000)\n"
        "sys.stderr.write('to stderr')\n"
        "_end(3)\n"
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 200_000 + "handler ran\n"
    assert done.stderr == "to stderr"


def test_ending_waits_for_a_thread_still_running() -> None:
    """A non-daemon thread still running when the command returns is waited for, as on a normal exit."""
    done = _end_in_child(
        "import threading\n"
        "from stsync.cli.startup import end as _end\n"
        "go = threading.Event()\n"
        "counted = threading.active_count\n"
        "threading.active_count = lambda: (counted(), go.set())[0]  # the thread is let go once _end has looked\n"
        "threading.Thread(target=lambda: (go.wait(), print('thread finished'))).start()\n"
        "_end(4)\n"
    )
    assert done.returncode == 4
    assert done.stdout == "thread finished\n"


def test_ending_with_a_process_pool_still_up_stops_it_and_exits() -> None:
    """A process pool made by a daemon thread (the sandbox's prewarm) is still up when the command ends:
    the normal teardown stops its workers. Skipping it would leave the exit waiting for them forever."""
    done = _end_in_child(
        "import concurrent.futures as cf, multiprocessing, threading\n"
        "from stsync.cli.startup import end as _end\n"
        "if __name__ == '__main__':\n"
        "    made, pools = threading.Event(), []\n"
        "    def prewarm():\n"
        "        pools.append(cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')))\n"
        "        pools[0].submit(abs, -1).result()\n"
        "        made.set()\n"
        "    threading.Thread(target=prewarm, daemon=True).start()\n"
        "    made.wait()\n"
        "    pools[0].shutdown(wait=False, cancel_futures=True)\n"
        "    print('ending', flush=True)\n"
        "    _end(3)\n"
    )
    assert (done.returncode, done.stdout) == (3, "ending\n")


@pytest.mark.parametrize(("code", "expected", "stderr"), [(None, 0, ""), (5, 5, ""), ("bad things", 1, "bad things\n")])
def test_exit_codes_are_those_of_sys_exit(
    code: object, expected: int, stderr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert startup.exit_code(SystemExit(code)) == expected
    assert capsys.readouterr().err == stderr


def _run_as_cli(command: str, before: str = "", env: dict[str, str] | None = None) -> list[str]:
    """Start a process through ``entry.run`` (as the console script does) whose command runs ``command``
    (Python lines, with ``entry`` imported); ``before`` runs first, outside ``run``. Returns the output lines."""
    body = "".join(f"    {line}\n" for line in command.strip().splitlines())
    code = (
        "import gc, os, sys\n"
        "from stsync.cli import entry, startup\n"
        "import stsync.cli.main\n"
        f"{before}"
        f"def command():\n{body}"
        "stsync.cli.main.run = command\n"
        "sys.argv = ['stsync', '--version']\n"
        "entry.run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_collector_waits_while_the_process_starts_and_is_back_to_normal_when_the_work_begins() -> None:
    """`run` sets the start-up threshold; `start_up_done` freezes what start-up made and restores the default.
    In a process `run` did not start (tests, embedding), `start_up_done` changes nothing."""
    lines = _run_as_cli(
        """
print(gc.get_threshold()[0])
startup.start_up_done()
print(gc.get_threshold() == default, gc.get_freeze_count() > 0)
""",
        before=(
            "default = gc.get_threshold()\n"
            "startup.start_up_done()\n"
            "print(gc.get_threshold() == default, gc.get_freeze_count() == 0)\n"
        ),
    )
    assert lines == ["True True", str(startup.GC_START_UP_THRESHOLD), "True True"]


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc() or not Path("/proc/self/statm").exists(), reason="glibc's allocator on Linux")
def test_page_bodies_freed_once_the_work_begins_go_back_to_the_system() -> None:
    """After `start_up_done`, a freed 16 MB body leaves the process, however many came before it. By glibc's
    default, the first freed one raises the mmap threshold and the next ones stay in the heap."""
    (grown,) = _run_as_cli(
        """
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
startup.start_up_done()
before = rss()
for _ in range(3):
    body = bytearray(16 << 20)
    del body
print(rss() - before)
"""
    )
    assert int(grown) < 4 << 20


@pytest.mark.parametrize(("preset", "searched"), [(None, False), ("", True)])
def test_the_cli_does_not_search_for_pydantic_plugins(preset: str | None, searched: bool) -> None:
    """Looking for pydantic plugins reads every installed package's entry points; the CLI has none to find.
    An operator who wants one sets PYDANTIC_DISABLE_PLUGINS empty."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if preset is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = preset
    lines = _run_as_cli(
        """
import stsync.config
from pydantic.plugin import _loader
print(_loader._plugins is not None)
""",
        env=env,
    )
    assert lines == [str(searched)]
