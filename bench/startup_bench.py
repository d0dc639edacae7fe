"""What each start-up measure of `stsync` is worth: a no-change `sync incremental` and `sync --help` with all
of them, with each one turned off in turn, and with all of them off.

    .venv/bin/python bench/startup_bench.py [--scale small] [--rounds 11]

A throwaway PostgreSQL and the sandbox; one full sync to have checkpoints and a cached token; then rounds
of runs, every variant once per round in turn (so a busy moment of the machine falls on all of them alike).
Each run is the console script's own entry (``stsync.cli.entry.run``) started by a small wrapper that turns
one measure off first. Prints per variant the median wall of each command (process start to exit) and its
difference from all measures on, as a share of the no-change run. The bar (issue 18): a measure stays when
it is worth more than 5 % of a no-change run.

The measures (stsync/cli/startup.py and the places named there):
- ``gc``: the cycle collector's start-up threshold (``startup.begin`` / ``start_up_done``);
- ``plugins``: pydantic does not search the installed packages' entry points for plugins;
- ``teardown``: the process ends without the interpreter's teardown of its modules (``startup.end``);
- ``whole-app``: the CLI builds only the command it runs (``stsync.cli.main.app_for``);
- ``lazy-imports``: commands import their services when they run, so one command does not import another's;
- ``rich-help``: click's plain help instead of rich's renderer (``rich_markup_mode=None``, kept so that
  `stsync` without a command prints its help to stderr; shown here for what it costs ``--help``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from stsync.db.migrations import migrate
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env

# Runs ``stsync.cli.entry.run`` as the console script does, with the measures named in argv[1] turned off.
_WRAPPER = """
import os, sys
off = set(filter(None, sys.argv[1].split(",")))
sys.argv = [sys.argv[0], *sys.argv[2:]]
from stsync.cli import entry, startup

real_begin = startup.begin


def begin():
    if "gc" in off:
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    else:
        real_begin()
    if "plugins" in off:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = ""
    if "teardown" in off:
        startup.end = sys.exit
    if "rich-help" in off:
        import typer

        typer_init = typer.Typer.__init__

        def rich_init(self, *args, **kwargs):
            kwargs["rich_markup_mode"] = "rich"
            typer_init(self, *args, **kwargs)

        typer.Typer.__init__ = rich_init
    if "whole-app" in off:
        from stsync.cli import main

        main.app_for = lambda argv: main.app
    if "lazy-imports" in off:
        import rich.progress, rich.table, yaml
        import stsync.checks, stsync.config, stsync.db.migrations, stsync.demo, stsync.ghl.service
        import stsync.sync.service


startup.begin = begin
entry.run()
"""

MEASURES = ("gc", "plugins", "teardown", "whole-app", "lazy-imports", "rich-help")
VARIANTS: tuple[tuple[str, str], ...] = (
    ("all measures on", ""),
    *((f"without {m}", m) for m in MEASURES),
    ("all measures off", ",".join(MEASURES)),
)
COMMANDS = (("no-change sync incremental", ["sync", "incremental", "--json"]), ("sync --help", ["sync", "--help"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", help="sandbox world (default small)")
    parser.add_argument("--rounds", type=int, default=11, help="runs of every variant and command (default 11)")
    args = parser.parse_args()

    python = str(Path(STSYNC).with_name("python"))
    walls: dict[tuple[str, str], list[float]] = {(v, c): [] for v, _ in VARIANTS for c, _ in COMMANDS}
    with EmbeddedPostgres() as pg, start_sandbox(args.scale) as sb:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        run_timed([STSYNC, "sync", "full", "--json"], env)
        for _ in range(args.rounds):
            for variant, off in VARIANTS:
                for command, argv in COMMANDS:
                    wall, _rss, _out = run_timed([python, "-c", _WRAPPER, off, *argv], env)
                    walls[(variant, command)].append(wall)

    medians = {key: statistics.median(values) for key, values in walls.items()}
    base = {command: medians[("all measures on", command)] for command, _ in COMMANDS}
    no_change = base[COMMANDS[0][0]]
    rows = []
    for variant, _off in VARIANTS:
        row = [variant]
        for command, _argv in COMMANDS:
            median = medians[(variant, command)]
            extra = median - base[command]
            row.append(f"{median * 1000:.0f} ms ({extra * 1000:+.0f} ms, {extra / no_change:+.1%})")
        rows.append(row)
    print(f"stsync {git_commit()}, {args.scale} world, median of {args.rounds} runs per cell")
    print("(each cell: median wall, its difference from all measures on, as a share of the no-change run)")
    print_table(["variant", *(command for command, _ in COMMANDS)], rows)


if __name__ == "__main__":
    main()
