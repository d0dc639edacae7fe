"""The `stsync` console script: a host-local fast path for overlapping sync runs, then the CLI.

Cron and timers start `stsync sync` while the previous run may still hold the tenant's PostgreSQL
advisory lock. Such a run must exit 75 at once, but reaching the advisory lock costs the interpreter
its heavy imports (typer, pydantic, psycopg), and many of them starting together on a small machine
queue for seconds. So, before importing anything heavy, a sync run takes an flock on a file keyed by its
invocation: the config path, the working directory, every STSYNC_* and PG* variable and
$CREDENTIALS_DIRECTORY. Two runs with the same key read the same settings, so they target the same
tenant and database and the advisory lock would refuse the second one anyway; the flock only refuses
it sooner. Any other pair of runs falls through to the advisory lock, which
stays the authority (across hosts too). The kernel drops the flock when its process dies, so a
crashed run never blocks the next one.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys

from stsync.cli import startup
from stsync.cli.startup import split_command_line
from stsync.errors import LOCKED_MESSAGE, ExitCode

_held: list[int] = []  # the flock's descriptor, open for the life of the process


def sync_config_path(argv: list[str]) -> str | None:
    """The config path ('' when none) if ``argv`` runs `stsync sync` for real (not --help); else None."""
    try:
        config, i = split_command_line(argv)
    except ValueError:
        return None
    if i >= len(argv) or argv[i] != "sync" or any(a in ("-h", "--help") for a in argv[i + 1 :]):
        return None
    return config if config is not None else os.environ.get("STSYNC_CONFIG", "")


# Everything else that can change which tenant or database a run syncs: systemd credentials, libpq's own
# variables (a partial database.url is completed from them), and the directory relative paths start from.
_SETTINGS_PREFIXES = ("STSYNC_", "PG")
_SETTINGS_KEYS = ("CREDENTIALS_DIRECTORY",)


def lock_path(config: str, environ: dict[str, str] | os._Environ[str], cwd: str | None = None) -> str:
    settings = sorted(
        (k, v)
        for k, v in environ.items()
        if (k.startswith(_SETTINGS_PREFIXES) or k in _SETTINGS_KEYS) and k != "STSYNC_CONFIG"
    )
    where = cwd if cwd is not None else os.getcwd()  # noqa: PTH109 - the fast path avoids importing pathlib
    key = repr((os.path.realpath(config) if config else "", where, settings)).encode()
    # The file holds nothing and is opened with O_NOFOLLOW: a shared /tmp is fine for a lock.
    directory = environ.get("XDG_RUNTIME_DIR") or environ.get("TMPDIR") or "/tmp"  # noqa: S108
    return f"{directory.rstrip('/')}/stsync-sync-{hashlib.sha256(key).hexdigest()[:20]}.lock"


def _open_lock_file(path: str) -> int | None:
    """The lock file's descriptor, or None when it cannot be trusted or opened (then the advisory lock
    alone decides): an unwritable directory, or a file owned by another user in a shared directory."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        return None
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        return None
    return fd


def another_sync_running(argv: list[str]) -> bool:
    """True when a run with the same invocation holds the flock; otherwise this process now holds it."""
    config = sync_config_path(argv)
    if config is None:
        return False
    try:
        import fcntl
    except ImportError:  # not POSIX: the advisory lock alone decides
        return False
    fd = _open_lock_file(lock_path(config, os.environ))
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        return isinstance(exc, BlockingIOError)
    _held.append(fd)
    return False


def _terminated(signum: int, _frame: object) -> None:
    # SIGTERM (systemd stop, kill) unwinds like Ctrl-C instead of killing the interpreter outright, so
    # context managers run: the demo stops its throwaway PostgreSQL and sandboxes, a sync rolls back the
    # page it was writing (its committed checkpoints stand).
    raise SystemExit(128 + signum)


def run() -> None:
    startup.begin()
    signal.signal(signal.SIGTERM, _terminated)
    if another_sync_running(sys.argv[1:]):
        print(f"stsync: error: {LOCKED_MESSAGE}", file=sys.stderr)
        sys.exit(int(ExitCode.TEMPFAIL))
    from stsync.cli.main import run as main

    try:
        main()
    except SystemExit as exc:
        startup.end(startup.exit_code(exc))
    startup.end(0)
