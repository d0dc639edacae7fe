"""`stsync events poll|list|explain`: work off the events the mirror captured, and say why workflows ran or not."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer

from stsync.cli.state import configured

app = typer.Typer(help="Events captured from the mirror, and the workflows they start.", no_args_is_help=True)


def _at(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "(unknown)"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


@app.command("poll")
def poll(
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many events, and steps.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen; claim and run nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find time-based events, match pending events to workflows, run the steps that are due (cron: every minute)."""
    from stsync.errors import ExitCode
    from stsync.events.service import run_poll

    result = asyncio.run(run_poll(configured(), limit=limit, dry_run=dry_run))
    if json_out:
        typer.echo(
            _json(
                {
                    "detected": result.detected,
                    "events": result.events,
                    "verdicts": dict(result.verdicts),
                    "steps": dict(result.steps),
                    "workflows": result.workflows,
                    "dry_run": result.dry_run,
                }
            )
        )
    else:
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(result.verdicts.items())) or "none"
        steps = ", ".join(f"{k} {v}" for k, v in sorted(result.steps.items())) or "none"
        if dry_run:  # a dry run neither searches for time-based events nor knows which instances exist
            typer.echo(f"events poll (dry run): {result.events} pending events, {result.workflows} workflows; "
                       f"verdicts (before deduplication): {verdicts}; steps due: {result.steps['due']}")  # fmt: skip
        else:
            typer.echo(f"events poll: {result.events} events ({result.detected} time-based found), "
                       f"{result.workflows} workflows; verdicts: {verdicts}; steps: {steps}")  # fmt: skip
    if result.steps["dead"] or result.verdicts["error"]:
        raise typer.Exit(ExitCode.PARTIAL)


@app.command("list")
def list_(
    event_type: Annotated[str | None, typer.Option("--type", help="Only events of this type.")] = None,
    since: Annotated[datetime | None, typer.Option("--since", help="Only events detected since (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The newest events: type, record, when it happened and was detected, processed or pending."""
    from datetime import UTC

    from stsync.events.service import list_events

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = asyncio.run(list_events(configured(), event_type, since, limit))
    if json_out:
        typer.echo(_json(rows))
        return
    for r in rows:
        state = f"processed, {r['enrolled']} enrolled" if r["processed_at"] else "pending"
        typer.echo(f"{r['id']:>8}  {r['event_type']:<20} {r['entity']} {r['st_id']:<10} "
                   f"occurred {_at(r['occurred_at'])}  {state}")  # fmt: skip


@app.command("explain")
def explain(
    event_id: Annotated[int, typer.Argument(help="The event's id (see `stsync events list`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why each workflow did or did not start for an event: enrolled, filtered (the clause and its values),
    deduped, disabled or error; and the steps of what it started."""
    from stsync.events.service import explain_event

    found = asyncio.run(explain_event(configured(), event_id))
    if json_out:
        typer.echo(_json(found))
        return
    e = found["event"]
    state = f"processed {e['processed_at']:%Y-%m-%d %H:%M:%S}" if e["processed_at"] else "pending (not polled yet)"
    typer.echo(f"event {e['id']}: {e['event_type']} of {e['entity']} {e['st_id']}, occurred {e['occurred_at']}, "
               f"detected {e['detected_at']}; {state}")  # fmt: skip
    if e["old_values"] is not None:
        changed = {k: (e["old_values"].get(k), v) for k, v in e["new_values"].items() if e["old_values"].get(k) != v}
        typer.echo(
            "  changed: " + (", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()) or "nothing watched")
        )
    if not found["verdicts"]:
        names = ", ".join(found["workflows_on_trigger"]) or "none"
        typer.echo(f"  no verdicts yet; workflows loaded on {e['event_type']}: {names}")
    steps_by_instance: dict[int, list[dict[str, Any]]] = {}
    for s in found["steps"]:
        steps_by_instance.setdefault(s["instance_id"], []).append(s)
    for v in found["verdicts"]:
        detail = v["detail"] or {}
        if v["verdict"] == "filtered":
            seen = ", ".join(f"{k} = {val!r}" for k, val in detail.get("values", {}).items())
            why = "has no value" if detail.get("null") else "was false"
            typer.echo(f"  {v['workflow_name']}: filtered: '{detail.get('clause')}' {why} ({seen})")
        elif v["verdict"] == "error":
            typer.echo(f"  {v['workflow_name']}: error: {detail.get('message')}"
                       + (f" in '{detail['clause']}'" if detail.get("clause") else ""))  # fmt: skip
        else:
            instance = f" instance {v['instance_id']} ({v['instance_state']})" if v["instance_id"] else ""
            typer.echo(f"  {v['workflow_name']}: {v['verdict']}{instance}")
        for s in steps_by_instance.get(v["instance_id"], []) if v["verdict"] == "enrolled" else []:
            error = f", last error: {s['last_error']}" if s["last_error"] else ""
            typer.echo(f"    step {s['step_no']} {s['action']}: {s['state']}, due {s['due_at']:%Y-%m-%d %H:%M}, "
                       f"{s['attempts']} attempts{error}")  # fmt: skip
