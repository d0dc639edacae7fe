"""`stsync logs` and `stsync stats`: what the runs did, from the sync and push logs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from stsync.cli.state import configured
from stsync.cli.tables import render

STATUSES = ("started", "completed", "partial", "failed", "stopped")
_AGO = re.compile(r"^(\d+)([mhd])$")


def since_option(value: str | None, default: timedelta | None = None) -> datetime | None:
    """``--since``: an ISO date or date-time (zone-less means UTC), or an age such as 30m, 24h or 7d."""
    if value is None:
        return datetime.now(UTC) - default if default is not None else None
    ago = _AGO.match(value.strip())
    if ago:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[ago.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(ago.group(1))})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is neither an ISO 8601 date or date-time nor an age such as 30m, 24h or 7d",
            param_hint="--since",
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


SinceOption = Annotated[
    str | None, typer.Option("--since", help="From this ISO date or date-time (UTC if no zone), or an age: 24h, 7d.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _settings() -> Any:
    from stsync.ops.service import history_settings

    return history_settings(configured())


def _counts(counts: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items() if v)


def logs(
    stream: Annotated[str | None, typer.Option("--stream", help="Only this stream's runs (no GHL pushes).")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only runs that ended so: {', '.join(STATUSES)}.")
    ] = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows, newest first.")] = 50,
    json_out: JsonOption = False,
) -> None:
    """The sync runs of each stream (full, incremental, backfill, and checkpoint changes) and the GHL pushes,
    newest first."""
    from stsync.ops.history import logs as read
    from stsync.ops.state import check_stream

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"'{status}' is none of {', '.join(STATUSES)}", param_hint="--status")
    if stream is not None:
        check_stream(stream)
    rows = read(_settings(), stream, status, since_option(since), limit)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    render(
        "runs, newest first",
        ("started at", "kind", "stream", "status", "seconds", "counts", "error or note"),
        [
            (
                r["started_at"],
                r["kind"],
                r["name"],
                r["status"],
                round(r["duration_ms"] / 1000, 2) if r["duration_ms"] is not None else None,
                _counts(r["counts"]),
                r["message"] or "",
            )
            for r in rows
        ],
    )


def stats(since: SinceOption = None, json_out: JsonOption = False) -> None:
    """Per day (UTC) and stream: runs, failures, records created, updated, unchanged and quarantined, and the time
    taken; per day and GHL location: pushes, requests, changes and failures. Default: the last 7 days."""
    from stsync.ops.history import stats as read

    found = read(_settings(), since_option(since, timedelta(days=7)))  # type: ignore[arg-type]
    if json_out:
        typer.echo(json.dumps(found, indent=2))
        return
    _per_day(
        f"sync runs per day (UTC) since {found['since']}",
        found["streams"],
        {"stream": "stream", "runs": "runs", "failed": "failed", "created": "created", "updated": "updated",
         "unchanged": "unchanged", "quarantined": "quarantined"},
    )  # fmt: skip
    if found["ghl"]:
        _per_day(
            "GHL pushes per day (UTC)",
            found["ghl"],
            {"location": "location_id", "pushes": "pushes", "failed runs": "failed_runs", "requests": "requests",
             "changes": "changes", "failed changes": "failed"},
        )  # fmt: skip


def _per_day(title: str, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """A table of ``rows`` by day: the day, then each column (heading: key), then the seconds taken."""
    render(
        title,
        ("day", *columns, "seconds"),
        [(r["day"], *(r[k] for k in columns.values()), round(r["duration_ms"] / 1000, 1)) for r in rows],
    )
