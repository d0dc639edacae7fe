"""`stsync demo`: run the whole thing on a throwaway PostgreSQL and the sandbox, and show what it did."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

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
    """Start a throwaway PostgreSQL and the sandboxes, migrate, full sync and GHL push, advance time,
    incremental sync and push again; print the mirror and the GHL pipeline distribution.

    Needs the PostgreSQL server binaries (initdb, pg_ctl); it says what to install when they are missing.
    """
    from rich.console import Console
    from rich.table import Table

    from stsync.cli.ghl_cmd import push_line
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
        # A child table (estimate items) has no stream of its own: its rows are counted with the parent's.
        counts = [f"{n:,}" for n in by_table[tbl]] if tbl in by_table else ["(with parent)"] * 3
        table.add_row(tbl, f"{rows:,}", f"{active:,}", *counts)
    console.print(table)
    console.print(run_line(result.full), highlight=False, soft_wrap=True)
    console.print(run_line(result.incremental), highlight=False, soft_wrap=True)
    _print_ghl(console, result)
    for push_result in result.pushes:
        # push_line's "contacts[created=…]" is not Rich markup.
        console.print(push_line(push_result), highlight=False, markup=False, soft_wrap=True)
    if result.poll is not None:
        poll = result.poll
        steps = ", ".join(f"{k} {v}" for k, v in sorted(poll.steps.items())) or "none"
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(poll.verdicts.items())) or "none"
        console.print(
            f"events poll: {poll.events} events from the incremental sync; workflows {result.workflow}: "
            f"{verdicts}; steps: {steps} (stsync events list / explain EVENT_ID, with --keep)",
            highlight=False,
            soft_wrap=True,
        )
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.timings.items())
    console.print(f"timings: {timings}", highlight=False)
    codes = [result.full.exit_code, result.incremental.exit_code, *(p.exit_code for p in result.pushes)]
    worst = max(int(code) for code in codes)
    if worst not in (ExitCode.OK,):
        print(f"stsync: demo finished with exit code {worst}", file=sys.stderr)
    raise typer.Exit(worst)


def _print_ghl(console: Any, result: Any) -> None:
    """Routing, the pipeline distribution after each push, contacts and webhook posts."""
    from rich.table import Table

    routes = []
    for bu in result.business_units:
        where = f"{bu['pipeline']} pipeline" if bu["mode"] == "api" else "inbound webhook"
        state = "" if bu.get("sync_enabled", True) else ", disabled"
        routes.append(f"{bu['id']} {bu['name']} -> {where}{state}")
    console.print("GHL routing (stsync bu list): " + "; ".join(routes), highlight=False, soft_wrap=True)
    first, second = result.ghl
    keys = [row[:3] for row in first.distribution]
    keys += [row[:3] for row in second.distribution if row[:3] not in keys]
    before = {row[:3]: row[3] for row in first.distribution}
    after = {row[:3]: row[3] for row in second.distribution}
    table = Table(title="GHL sandbox: opportunities by pipeline, stage and status")
    for column in ("pipeline", "stage", "status", "after first push", "after second push"):
        table.add_column(column, justify="left" if column in ("pipeline", "stage", "status") else "right")
    for key in keys:
        table.add_row(*key, f"{before.get(key, 0):,}", f"{after.get(key, 0):,}")
    table.add_row("total", "", "", f"{first.opportunities:,}", f"{second.opportunities:,}", style="bold")
    console.print(table)
    for label, push_result, state in zip(("first push", "second push"), result.pushes, result.ghl, strict=True):
        contacts = push_result.counts["contacts"]
        opportunities = push_result.counts["opportunities"]
        hooks = ", ".join(f"{name}={n}" for name, n in state.webhook_posts.items()) or "none"
        console.print(
            f"GHL {label}: contacts created={contacts['created']} updated={contacts['updated']} "
            f"(location holds {state.contacts}); opportunities created={opportunities['created']} "
            f"updated={opportunities['updated']} (holds {state.opportunities}); "
            f"webhook payloads received {hooks}; API requests {push_result.requests}, 429s {state.count_429}",
            highlight=False,
            soft_wrap=True,
        )
