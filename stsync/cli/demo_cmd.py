"""`stsync demo`: run the whole thing on a throwaway PostgreSQL and the sandbox, and show what it did."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli.state import STATE
from stsync.errors import ExitCode


def demo(
    scale: Annotated[
        str, typer.Option("--scale", help="Sandbox world size: small (~2k records), medium (~100k), large (~1M).")
    ] = "small",
    seed: Annotated[int, typer.Option("--seed", help="Sandbox seed; the same seed gives the same world.")] = 42,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the throwaway PostgreSQL running afterwards and print its DSN.")
    ] = False,
    base_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to put the throwaway database (default: a new temporary directory)."),
    ] = None,
) -> None:
    """Start a throwaway PostgreSQL and the sandbox, migrate, full sync, advance time, incremental sync.

    Needs the PostgreSQL server binaries (initdb, pg_ctl); it says what to install when they are missing.
    """
    from rich.console import Console
    from rich.table import Table

    from stsync.cli.logs import setup as setup_logs
    from stsync.cli.sync_cmd import PlainObserver, run_line
    from stsync.demo import run_demo

    if scale not in ("small", "medium", "large"):
        raise typer.BadParameter("choose small, medium or large", param_hint="--scale")
    setup_logs("WARNING", "text", STATE.debug)
    # Wide enough for the table when piped (Rich assumes 80 columns without a terminal).
    console = Console(width=None if sys.stdout.isatty() else 110)
    err = Console(stderr=True)

    result = run_demo(
        scale=scale,
        seed=seed,
        keep=keep,
        base_dir=base_dir,
        say=lambda line: err.print(f"[dim]demo:[/dim] {line}", highlight=False),
        observer=PlainObserver(enabled=False),
    )
    assert result.full is not None and result.incremental is not None
    table = Table(title="stsync demo: the mirror after a full and an incremental sync")
    for column in ("table", "rows", "active", "full: created", "incremental: created", "incremental: updated"):
        table.add_column(column, justify="left" if column == "table" else "right")
    by_table: dict[str, tuple[int, int, int]] = {}
    from stsync.sync.streams import STREAMS_BY_NAME

    for run_index, run in enumerate((result.full, result.incremental)):
        for s in run.streams:
            tbl = STREAMS_BY_NAME[s.name].table
            full_c, inc_c, inc_u = by_table.get(tbl, (0, 0, 0))
            if run_index == 0:
                full_c += s.created
            else:
                inc_c += s.created
                inc_u += s.updated
            by_table[tbl] = (full_c, inc_c, inc_u)
    for tbl, (rows, active) in result.table_counts.items():
        full_c, inc_c, inc_u = by_table.get(tbl, (0, 0, 0))
        table.add_row(tbl, f"{rows:,}", f"{active:,}", f"{full_c:,}", f"{inc_c:,}", f"{inc_u:,}")
    console.print(table)
    console.print(run_line(result.full), highlight=False)
    console.print(run_line(result.incremental), highlight=False)
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.timings.items())
    console.print(f"timings: {timings}", highlight=False)
    worst = max(int(result.full.exit_code), int(result.incremental.exit_code))
    if worst not in (ExitCode.OK,):
        print(f"stsync: demo finished with exit code {worst}", file=sys.stderr)
    raise typer.Exit(worst)
