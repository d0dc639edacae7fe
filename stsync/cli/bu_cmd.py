"""`stsync bu list|set|enable|disable`: route ServiceTitan business units into GHL."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from stsync.cli.state import STATE

app = typer.Typer(help="Business-unit routing into GHL (seeded from ghl.business_units).", no_args_is_help=True)

BU_ID = typer.Argument(help="ServiceTitan business unit id.")


def _config() -> Any:
    from stsync.config import load_config

    return load_config(STATE.config_path)


@app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List business units: enabled, mode, pipeline or webhook URL, active jobs in the mirror."""
    from stsync.ghl.service import list_business_units

    rows = asyncio.run(list_business_units(_config()))
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        target = r["pipeline"] if r["mode"] == "api" else "webhook"
        state = "enabled" if r["sync_enabled"] else "disabled"
        typer.echo(f"{r['id']:>10}  {r['name']:<20} {state:<8} {r['mode']:<7} {target:<12} jobs={r['jobs']}")


@app.command("set")
def set_(
    bu_id: Annotated[int, BU_ID],
    mode: Annotated[str | None, typer.Option("--mode", help="api or webhook.")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="GHL pipeline name or id (api mode).")] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="Inbound webhook URL (webhook mode).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
) -> None:
    """Change a business unit's mode, pipeline or webhook URL."""
    from stsync.ghl.service import set_business_unit

    if mode is not None and mode not in ("api", "webhook"):
        raise typer.BadParameter("expected api or webhook", param_hint="--mode")
    asyncio.run(set_business_unit(_config(), bu_id, mode=mode, pipeline=pipeline, webhook_url=webhook_url, name=name))
    typer.echo(f"business unit {bu_id} updated")


@app.command("enable")
def enable(bu_id: Annotated[int, BU_ID]) -> None:
    """Push this business unit's jobs to GHL."""
    from stsync.ghl.service import set_business_unit

    asyncio.run(set_business_unit(_config(), bu_id, sync_enabled=True))
    typer.echo(f"business unit {bu_id} enabled")


@app.command("disable")
def disable(bu_id: Annotated[int, BU_ID]) -> None:
    """Stop pushing this business unit's jobs (what was pushed stays in GHL)."""
    from stsync.ghl.service import set_business_unit

    asyncio.run(set_business_unit(_config(), bu_id, sync_enabled=False))
    typer.echo(f"business unit {bu_id} disabled")
