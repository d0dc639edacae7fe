"""`stsync migrate`: create or upgrade the schemas from the ordered files in sql/."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stsync.cli.state import STATE


def migrate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be applied; change nothing.")] = False,
    list_: Annotated[
        bool,
        typer.Option("--list", help="List every migration as applied (with its time) or pending; change nothing."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Create or upgrade every schema from sql/ (each file once, in its own transaction, under a lock).

    Exit codes: 0 ok, 65 an applied file was edited or removed or a file failed, 69 database unreachable,
    78 config error.
    """
    from stsync.config import load_config, required_secret
    from stsync.db import migrations

    config = load_config(STATE.config_path)
    dsn = required_secret(config.database.url, "database.url")
    timeout = config.database.connect_timeout
    if list_:
        statuses = migrations.status(dsn, connect_timeout=timeout)
        rows = [(s.name, "pending" if s.pending else f"applied {s.applied_at:%Y-%m-%d %H:%M:%S%z}") for s in statuses]
        if json_out:
            doc = [{"name": s.name, "applied_at": s.applied_at.isoformat() if s.applied_at else None} for s in statuses]
            typer.echo(json.dumps({"migrations": doc}, indent=2))
        else:
            _render(rows, "Migrations")
        return
    result = migrations.migrate(dsn, dry_run=dry_run, connect_timeout=timeout)
    if json_out:
        typer.echo(
            json.dumps({"dry_run": dry_run, "applied": result.applied, "durations_ms": result.durations_ms}, indent=2)
        )
        return
    verb = "would apply" if dry_run else "applied"
    rows = [(name, verb if dry_run else f"applied in {result.durations_ms.get(name, 0)} ms") for name in result.applied]
    if rows:
        _render(rows, "Pending migrations" if dry_run else "Applied migrations")
    if not result.applied:
        typer.echo(f"migrations: nothing to apply ({len(result.statuses)} applied)")
    else:
        typer.echo(f"migrations: {len(result.applied)} {verb}")


def _render(rows: list[tuple[str, str]], title: str) -> None:
    from stsync.cli.tables import render

    render(title, ("migration", "status"), rows)
