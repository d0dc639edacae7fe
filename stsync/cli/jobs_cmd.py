"""`stsync jobs show <st_job_id>`: a job's GHL sync state."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from stsync.cli.state import STATE

app = typer.Typer(help="Inspect ServiceTitan jobs and their GHL side.", no_args_is_help=True)


@app.command("show")
def show(
    job_id: Annotated[int, typer.Argument(help="ServiceTitan job id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Business unit, GHL contact, opportunity (id, stage, status), sync status and last error of a job."""
    from stsync.config import load_config
    from stsync.ghl.service import job_status

    row = asyncio.run(job_status(load_config(STATE.config_path), job_id))
    if json_out:
        typer.echo(json.dumps(row, indent=2, default=str))
        return
    for key, value in row.items():
        if value is not None:
            typer.echo(f"{key}: {value}")
