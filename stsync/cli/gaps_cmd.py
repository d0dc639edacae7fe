"""`stsync gap-analysis`: what ServiceTitan holds that the mirror lacks, and the reverse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from stsync.cli.state import configured
from stsync.cli.tables import render
from stsync.files import write_atomically

SHOWN = 10  # ids per line in the text report; --json and --out have them all


def gap_analysis(
    streams: Annotated[
        list[str] | None,
        typer.Option(
            "--streams",
            help="Streams to compare (repeat, or separate with commas). Default: every enabled stream "
            "(sync.streams_include, sync.streams_exclude).",
        ),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Locate the differences: bisect creation-date windows by their counts, then compare the ids of "
            "the small windows that differ. Marks records ServiceTitan no longer serves (asked for by id) as "
            "deleted, where the stream's list takes ids.",
        ),
    ] = False,
    mark: Annotated[
        bool, typer.Option("--mark-deleted/--no-mark-deleted", help="With --deep: mark the extra records deleted.")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the report as JSON to FILE, for `stsync backfill`.")
    ] = None,
) -> None:
    """Per stream, ServiceTitan's count of records created before the stream's high-water mark against the
    mirror's; orphans (a job without its customer or location, an assignment without its appointment, an invoice
    without its job).

    Exit codes: 0 no gaps, 1 gaps, orphans, or a stream that could not be compared; 69 ServiceTitan or the database
    unreachable; 78 bad config.
    """
    from stsync.ops.service import gap_analysis as analyze

    names = [n.strip() for arg in streams or () for n in arg.split(",") if n.strip()]
    if out is not None and not out.resolve().parent.is_dir():  # before --deep marks anything
        raise typer.BadParameter(f"no directory {out.resolve().parent} to write the report in", param_hint="--out")
    report = analyze(configured(), names, deep=deep, mark_deleted=mark)
    doc = report.as_json()
    if out is not None:
        write_json(out, doc)
    if json_out:
        typer.echo(json.dumps(doc, indent=2))
    else:
        show(doc)
    raise typer.Exit(1 if report.has_gaps or any(s.status == "failed" for s in report.streams) else 0)


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` to ``path`` atomically: a reader never sees half a report."""
    write_atomically(path.resolve(), (json.dumps(doc, indent=2) + "\n").encode())


def _ids(ids: list[int]) -> str:
    more = f" … and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return ", ".join(map(str, ids[:SHOWN])) + more


def show(doc: dict[str, Any]) -> None:
    keys = ("stream", "servicetitan", "mirror", "difference", "status", "created_before", "note")
    rows = [tuple(s[k] for k in keys) for s in doc["streams"]]
    render(
        f"gap analysis ({'deep' if doc['deep'] else 'counts'})",
        ("stream", "servicetitan", "mirror", "difference", "status", "created before", "note"),
        rows,
    )
    for s in doc["streams"]:
        if s.get("missing"):
            typer.echo(f"{s['stream']}: {len(s['missing'])} missing: {_ids(s['missing'])}")
        if s.get("extra"):
            typer.echo(f"{s['stream']}: {len(s['extra'])} not in ServiceTitan: {_ids(s['extra'])}")
    kinds: dict[str, list[int]] = {}
    for o in doc["orphans"]:
        kinds.setdefault(o["kind"], []).append(o["id"])
    for kind, ids in kinds.items():
        typer.echo(f"orphans: {len(ids)} {kind}: {_ids(ids)}")
    if doc["marked_deleted"]:
        typer.echo(f"marked deleted: {doc['marked_deleted']} records ServiceTitan no longer serves")
    unchecked = [s["stream"] for s in doc["streams"] if s["status"] == "failed"]
    verdict = "gaps found" if doc["gaps"] else "no gaps"
    if unchecked:
        verdict += f"; not compared: {', '.join(unchecked)}"
    typer.echo(f"gap-analysis: {verdict} ({doc['requests']} ServiceTitan requests)")
