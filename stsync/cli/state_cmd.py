"""`stsync state list | get | set | reset`: the sync checkpoints."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from stsync.cli.state import configured
from stsync.cli.tables import render

app = typer.Typer(help="The sync checkpoints: where each feed resumes.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
SHOWN = 60  # characters of a value in the table (continuation tokens are long); --json has them whole


def _settings() -> Any:
    from stsync.ops.service import state_settings

    return state_settings(configured())


def _short(value: str) -> str:
    return value if len(value) <= SHOWN else value[: SHOWN - 1] + "…"


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise typer.BadParameter("not a terminal to confirm on: add --yes", param_hint="--yes")
    if not typer.confirm(question):
        typer.echo("nothing changed")
        raise typer.Exit(1)


@app.command("list")
def list_(
    stream: Annotated[str | None, typer.Option("--stream", help="Only this stream's checkpoints.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Every checkpoint: key, value and when it was written."""
    from stsync.ops.state import check_stream, checkpoints

    if stream is not None:
        check_stream(stream)
    found = checkpoints(_settings(), f"{stream}." if stream else None)
    if json_out:
        typer.echo(json.dumps([c.as_json() for c in found], indent=2))
        return
    rows = [(c.key, _short(c.value or ""), c.updated_at.isoformat()) for c in found]
    render("checkpoints", ("key", "value", "updated at"), rows)


@app.command("get")
def get(
    key: Annotated[str, typer.Argument(help="The checkpoint, e.g. jobs.high_water.")], json_out: JsonOption = False
) -> None:
    """One checkpoint's value. Exit 1 when it is not set."""
    from stsync.ops.state import checkpoints

    found = [c for c in checkpoints(_settings(), key) if c.key == key]
    if json_out:
        typer.echo(json.dumps(found[0].as_json() if found else None, indent=2))
    elif found:
        typer.echo(found[0].value if found[0].value is not None else "")
    else:
        typer.echo(f"stsync state: '{key}' is not set", err=True)
    raise typer.Exit(0 if found else 1)


@app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="The checkpoint, e.g. jobs.high_water.")],
    value: Annotated[str, typer.Argument(help="Its new value.")],
    yes: YesOption = False,
) -> None:
    """Set one checkpoint (under the run lock), and note the change in the sync log."""
    from stsync.ops.state import check_key, set_checkpoint

    _, stored = check_key(key, value)
    settings = _settings()
    _confirm(f"Set {key} to '{stored}'? The stream's next run starts from it", yes)
    typer.echo(asyncio.run(set_checkpoint(settings, key, value)))


@app.command("reset")
def reset(
    stream: Annotated[str, typer.Argument(help="The stream whose checkpoints go.")], yes: YesOption = False
) -> None:
    """Remove a stream's checkpoints (under the run lock): its next run walks it from the start. Noted in the sync
    log."""
    from stsync.ops.state import reset_stream

    settings = _settings()
    _confirm(f"Remove every checkpoint of {stream}? Its next run reads it all again", yes)
    typer.echo(asyncio.run(reset_stream(settings, stream)))
