"""The `stsync` console script: a host-local fast path for overlapping sync runs, then the CLI.

Cron and timers start `stsync sync` while the previous run may still hold the tenant's PostgreSQL
advisory lock. Such a run must exit 75 at once, but reaching the advisory lock costs the interpreter
~0.3 s of imports (typer, pydantic, psycopg), and ten of them starting together on two cores queue
for seconds. So, before importing anything heavy, a sync run takes an flock on a file keyed by its
invocation: the config path, the working directory, every STSYNC_* and PG* variable and
$CREDENTIALS_DIRECTORY. Two runs with the same key read the same settings, so they target the same
tenant and database and the advisory lock would refuse the second one anyway; the flock only refuses
it sooner. Any other pair of runs falls through to the advisory lock, which
stays the authority (across hosts too). The kernel drops the flock when its process dies, so a
crashed run never blocks the next one.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import os
import signal
import sys
from typing import NoReturn

from stsync.errors import LOCKED_MESSAGE, ExitCode

_held: list[int] = []  # the flock's descriptor, open for the life of the process


def split_command_line(argv: list[str]) -> tuple[str | None, int]:
    """The config path given by the global options that lead ``argv`` (None when none is), and the index of
    the command's name, the first word after them (``len(argv)`` when there is none). Raises ValueError when
    ``--config`` has no value."""
    config: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "-c"):
            if i + 1 >= len(argv):
                raise ValueError("--config needs a value")
            config, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            config, i = arg.split("=", 1)[1], i + 1
        elif arg == "--debug":
            i += 1
        else:
            break
    return config, i


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


def _exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit`` would give: None is 0, a number is itself, anything else is
    printed to stderr and gives 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _end(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of its modules, which takes 60-100 ms after a
    run has imported some 700 of them, and does nothing stsync needs once a command is done: its
    connections and files are closed by then. Output is flushed and exit handlers run (logging's, weakref
    finalizers) as on a normal exit. This is for a process with nothing left running beside it, as after
    `stsync sync`: while any other thread or a child process is alive (the sandbox's server and prewarm
    pool, say), it is a normal exit, whose teardown stops and waits for them."""
    import threading

    multiprocessing = sys.modules.get("multiprocessing")
    if threading.active_count() > 1 or (multiprocessing is not None and multiprocessing.active_children()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`stsync ... | head`) or a closed stream: nothing to save
            if code == 0:
                code = 120  # what the interpreter reports when it cannot flush its output
    os._exit(code)


# The young generation's size, in objects allocated, before the cycle collector runs, while the process starts.
# Start-up (imports, pydantic and typer building their schemas) allocates about 100,000 objects that live to the
# end of the process; at Python's default of 700 the collector scans them about 140 times, 45-55 ms of CPU in a
# 0.45 s no-change run. ``start_up_done`` goes back to the default once the work begins.
GC_START_UP_THRESHOLD = 100_000
_GC_DEFAULT_THRESHOLD = gc.get_threshold()


def start_up_done() -> None:
    """The command has imported what it needs and is about to work. What exists now lives to the end, so the
    collector stops scanning it (``gc.freeze``) and runs as often as Python's default says again: cycles of
    garbage that hold page bodies are then freed within 700 allocations (a young generation of 100,000 kept
    7-10 MB more alive at the peak of a large sync). Freed page bodies go back to the system at once
    (``budget.map_page_bodies``). A no-op in a process not started by ``run`` (tests, embedding), whose
    collector and allocator were never changed."""
    if gc.get_threshold()[0] != GC_START_UP_THRESHOLD:
        return
    gc.freeze()
    gc.set_threshold(*_GC_DEFAULT_THRESHOLD)
    from stsync.budget import map_page_bodies

    map_page_bodies()


def run() -> None:
    gc.set_threshold(GC_START_UP_THRESHOLD, *_GC_DEFAULT_THRESHOLD[1:])
    # stsync uses no pydantic plugins, and looking for them reads the entry points of every installed
    # package (15-30 ms of each run). Setting the variable empty brings the search back.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    signal.signal(signal.SIGTERM, _terminated)
    if another_sync_running(sys.argv[1:]):
        print(f"stsync: error: {LOCKED_MESSAGE}", file=sys.stderr)
        sys.exit(int(ExitCode.TEMPFAIL))
    from stsync.cli.main import run as main

    try:
        main()
    except SystemExit as exc:
        _end(_exit_code(exc))
    _end(0)
