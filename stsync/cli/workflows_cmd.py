"""`stsync workflows check|load|list|status`: the operator's workflows, from YAML into the database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli.state import configured

app = typer.Typer(help="Workflows that events start (defined in YAML).", no_args_is_help=True)

FILE = typer.Argument(help="The workflows file (see workflows.example.yaml).")


@app.command("check")
def check(path: Annotated[Path, FILE]) -> None:
    """Check every workflow of the file (fields, types, actions, durations) without loading anything."""
    from stsync.events.service import check_workflows

    workflows = check_workflows(path)
    for wf in workflows:
        typer.echo(f"{wf.name}: ok ({wf.trigger}, {len(wf.steps)} steps, version {wf.version_hash[:12]})")


@app.command("load")
def load(path: Annotated[Path, FILE]) -> None:
    """Check the file, then make its workflows the ones new events are matched against (all or nothing)."""
    from stsync.events.service import load_workflows

    for r in asyncio.run(load_workflows(configured(), path)):
        version = f" version {r['version']}" if r["version"] else ""
        typer.echo(f"{r['name']}: {r['change']}{version}")


@app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The loaded workflows: trigger, enabled, version and instances started."""
    from stsync.events.service import list_workflows

    rows = asyncio.run(list_workflows(configured()))
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no workflows loaded (stsync workflows load FILE)")
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        typer.echo(f"{r['name']:<32} {r['trigger_event']:<22} {state:<8} {r['version_hash'][:12]}  "
                   f"instances={r['instances']}")  # fmt: skip


@app.command("status")
def status(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Instances by state, steps due and scheduled, dead letters, and the oldest unprocessed event's age."""
    from stsync.events.service import workflows_status

    found = asyncio.run(workflows_status(configured()))
    if json_out:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    age = found["oldest_pending_event_age_seconds"]
    typer.echo(f"events pending: {found['pending_events']}" + (f" (oldest {age} s)" if age is not None else ""))
    s = found["steps"]
    typer.echo(f"steps: {s.get('due', 0)} due, {s.get('scheduled', 0)} scheduled, {s.get('running', 0)} running "
               f"({s.get('expired_leases', 0)} with expired leases), {s.get('dead', 0)} dead")  # fmt: skip
    for name, states in sorted(found["instances"].items()):
        typer.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    for d in found["dead_letters"]:
        typer.echo(f"dead: instance {d['instance_id']} ({d['workflow_name']}, {d['entity']} {d['st_id']}) "
                   f"step {d['step_no']} {d['action']} after {d['attempts']} attempts: {d['last_error']}")  # fmt: skip


@app.command("retry")
def retry(
    instance: Annotated[int | None, typer.Option("--instance", help="Only this instance's dead step.")] = None,
) -> None:
    """Make dead steps (see `stsync workflows status`) due again, with their attempts counted afresh; the next
    `stsync events poll` runs them."""
    from stsync.events.service import retry_dead

    revived = asyncio.run(retry_dead(configured(), instance))
    typer.echo(f"{len(revived)} instances with dead steps made due again" + (": " + ", ".join(map(str, revived[:20]))
               if revived else ""))  # fmt: skip
