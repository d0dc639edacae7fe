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
    check_api: Annotated[
        bool,
        typer.Option("--check-api", help="Also get a token and make one cheap call to ServiceTitan and to GHL."),
    ] = False,
    heal: Annotated[
        bool,
        typer.Option(
            "--heal",
            help="Then make the bounded repairs: a catch-up incremental of stale streams (not while a run holds "
            "the lock), release expired workflow leases, requeue GHL dead letters once. Prints what it did, and "
            "checks again.",
        ),
    ] = False,
    ping_url: Annotated[
        str | None,
        typer.Option(
            "--ping",
            envvar="STSYNC_HEALTH_PING_URL",
            show_envvar=False,
            help="Report to a healthchecks.io-style URL: URL/start, then URL (OK, WARNING) or URL/fail. "
            "Prefer $STSYNC_HEALTH_PING_URL: the URL is a secret, and argv is visible to every user.",
        ),
    ] = None,
) -> None:
    """Check the database, each stream's freshness, the last runs, the quarantine, GHL, events, workflow steps and
    the run locks. The first line is a Nagios plugin's, then one line per check.

    Exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the database cannot be reached).
    """
    from stsync.ops.service import heal as run_heal
    from stsync.ops.service import health as run_health
    from stsync.ops.service import ping

    config = configured()
    pinged = [ping(ping_url, None, config.health.ping_timeout_seconds)] if ping_url else []
    now = datetime.now(UTC)
    report = run_health(config, now, check_api and not heal)  # with --heal, only the re-check calls the APIs
    if heal:
        healed = run_heal(config, report, now)
        now = datetime.now(UTC)
        report = run_health(config, now, check_api)
        report.healed = healed
    if ping_url:
        pinged.append(ping(ping_url, report, config.health.ping_timeout_seconds))
    if prometheus is not None:
        report.write_prometheus(prometheus, now)
    if json_out:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    for problem in dict.fromkeys(p for p in pinged if p is not None):  # a failed ping leaves the exit code alone
        typer.echo(f"stsync health: {problem}", err=True)
    raise typer.Exit(int(report.status))
