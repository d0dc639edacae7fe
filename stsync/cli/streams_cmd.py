"""`stsync streams list`: the streams stsync mirrors."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stsync.cli.state import configured
from stsync.cli.tables import render

app = typer.Typer(help="The ServiceTitan streams stsync mirrors.", no_args_is_help=True)


@app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each stream: its module and feed, whether it is enabled (sync.streams_include, sync.streams_exclude), the
    mirror's rows (all, and live: active and not marked deleted), and its last success."""
    from stsync.ops.catalog import streams
    from stsync.ops.service import catalog_settings

    found = streams(catalog_settings(configured()))
    if json_out:
        typer.echo(json.dumps(found, indent=2))
        return
    keys = ("stream", "module", "feed", "path", "enabled", "rows", "live", "last_success", "last_status")
    rows = [tuple(("yes" if r[k] else "no") if k == "enabled" else r[k] for k in keys) for r in found]
    render("streams", ("stream", "module", "feed", "path", "enabled", "rows", "live", "last success", "last run"), rows)
