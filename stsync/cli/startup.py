"""What the console script does so that a short run starts and ends fast. Each measure is kept because
``bench/startup_bench.py`` showed it worth more than 5 % of a no-change `stsync sync incremental`
(figures: docs/performance.md); the ones that were not are gone.

- ``begin``: the cycle collector waits while the process starts (start-up allocates objects that live to the
  end; at the default threshold the collector scans them over and over), and pydantic does not look for
  plugins (stsync has none; the search reads the entry points of every installed package).
- ``end``: the process ends without the interpreter's teardown of its modules.
- ``split_command_line`` lets the CLI build the one command it runs (``stsync.cli.main.app_for``): typer
  reads the signature of every command it holds on each run.
- The command modules (``stsync/cli/*_cmd.py``) import their services inside the command, so a run imports
  what its own command needs and not every other command's dependencies.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import NoReturn


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


# The young generation's size, in objects allocated, before the cycle collector runs, while the process starts:
# about what start-up (imports, pydantic and typer building their schemas) allocates, all of it living to the end.
# ``start_up_done`` goes back to the default once the work begins.
GC_START_UP_THRESHOLD = 100_000
_GC_DEFAULT_THRESHOLD = gc.get_threshold()


def start_up_done() -> None:
    """The command has imported what it needs and is about to work. What exists now lives to the end, so the
    collector stops scanning it (``gc.freeze``) and runs as often as Python's default says again: cycles of
    garbage that hold page bodies are then freed soon (a young generation as large as start-up's keeps
    megabytes more alive at the peak of a large sync). Freed page bodies go back to the system at once
    (``budget.map_page_bodies``). A no-op in a process not started by ``run`` (tests, embedding), whose
    collector and allocator were never changed."""
    if gc.get_threshold()[0] != GC_START_UP_THRESHOLD:
        return
    gc.freeze()
    gc.set_threshold(*_GC_DEFAULT_THRESHOLD)
    from stsync.budget import map_page_bodies

    map_page_bodies()


def begin() -> None:
    """Called first by the console script (see the module's docstring)."""
    gc.set_threshold(GC_START_UP_THRESHOLD, *_GC_DEFAULT_THRESHOLD[1:])
    # Setting the variable empty brings the search for plugins back.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit`` would give: None is 0, a number is itself, anything else is
    printed to stderr and gives 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def end(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of its modules, which does nothing stsync needs
    once a command is done: its
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
