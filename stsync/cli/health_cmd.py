"""`stsync health`: one run of every check, for a monitoring script (Nagios plugin exit codes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli.state import configured


def health(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    prometheus: Annotated[
        Path | None,
        typer.Option("--prometheus", help="Also write node_exporter's textfile format to FILE (atomically)."),
    ] = None,
) -> None:
    """Check the database, each stream's freshness, the last runs, the quarantine, GHL, events, workflow steps and
    the run locks. The first line is a Nagios plugin's, then one line per check.

    Exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the database cannot be reached).
    """
    from stsync.ops.service import health as run_health

    now = datetime.now(UTC)
    report = run_health(configured(), now)
    if prometheus is not None:
        report.write_prometheus(prometheus, now)
    if json_out:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(int(report.status))
