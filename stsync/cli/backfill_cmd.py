"""`stsync backfill`: fetch chosen records again through the list endpoints, without moving any cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli.sync_cmd import iso_datetime, run_and_report


def _rfc3339(value: str, option: str) -> str:
    """An ISO date or date-time as ServiceTitan's filters take it: UTC, whole seconds (zone-less means UTC)."""
    when = datetime.fromisoformat(iso_datetime(value, option))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ids(values: list[str]) -> list[int]:
    ids = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            if not (part.strip().isascii() and part.strip().isdecimal()):
                raise typer.BadParameter(f"'{part.strip()}' is not a record id", param_hint="--ids")
            ids.append(int(part))
    return ids


def backfill(
    streams: Annotated[
        list[str] | None,
        typer.Argument(
            help="Streams to backfill (with --from-gap-report: default, every stream it names).", show_default=False
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Window start (ISO date or date-time, inclusive).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Window end (ISO date or date-time, exclusive).")] = None,
    by: Annotated[
        str, typer.Option("--by", help="What the window bounds: 'modified' (modifiedOn) or 'created' (createdOn).")
    ] = "modified",
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="Record ids (repeat, or separate with commas); 50 per request.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--from-gap-report", help="The missing records of a `stsync gap-analysis --out` report."),
    ] = None,
    emit_events: Annotated[
        bool, typer.Option("--emit-events", help="Write events for the changes it merges (default: none).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")] = False,
) -> None:
    """Fetch records again through the list endpoints, by a modified or created window, by ids, or from a gap
    report, and merge them exactly as sync does (the same quarantine; the sync log says sync_type=backfill).

    It never moves a stream's cursor, takes the run lock, keeps to the rate limit, and resumes a killed backfill
    of the same records where it stopped.

    Exit codes: as `stsync sync` (0 ok, 1 partial, 2 usage, 65 bad gap report, 69, 75 lock held, 78).
    """
    from stsync.cli.state import configured
    from stsync.sync import backfill as plans
    from stsync.sync.service import backfill as run
    from stsync.sync.streams import select_streams

    names = list(streams or [])
    chosen = [start is not None or end is not None, bool(ids), report is not None]
    if sum(chosen) != 1:
        raise typer.BadParameter("give exactly one of --from/--to, --ids or --from-gap-report")
    if by not in ("modified", "created"):
        raise typer.BadParameter(f"'{by}' is neither 'modified' nor 'created'", param_hint="--by")
    if not names and report is None:
        raise typer.BadParameter("name the streams to backfill", param_hint="STREAMS")
    selected = select_streams(names) if names else []
    if report is not None:
        try:
            doc = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            from stsync.errors import DataError

            raise DataError(f"{report}: cannot read the gap report: {type(exc).__name__}: {exc}") from None
        plan = plans.report_plan(doc, str(report), {s.name for s in selected} if selected else None)
    elif ids:
        plan = plans.id_plan(selected, _ids(ids))
    else:
        if start is None or end is None:
            raise typer.BadParameter("--from and --to go together")
        plan = plans.window_plan(selected, by, _rfc3339(start, "--from"), _rfc3339(end, "--to"))
    if not plan:
        typer.echo("backfill: nothing to fetch")
        raise typer.Exit(0)
    config = configured()
    run_and_report(lambda observer: run(config, plan, emit_events, observer), json_out)
