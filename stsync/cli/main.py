"""`stsync` entry point: the Typer app, global options, and the one place errors become exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli import bu_cmd, config_cmd, demo_cmd, ghl_cmd, jobs_cmd, migrate_cmd, sandbox_cmd, sync_cmd
from stsync.cli.entry import split_command_line
from stsync.cli.state import STATE
from stsync.errors import ExitCode, StsyncError, exit_code_for


def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="STSYNC_CONFIG",
            help="YAML config file (default: $STSYNC_CONFIG; environment variables "
            "STSYNC_<SECTION>__<KEY> override it).",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs on stderr.")] = False,
) -> None:
    """Mirror a ServiceTitan tenant into PostgreSQL and drive GoHighLevel from it."""
    STATE.config_path = config
    STATE.debug = debug


# Each command: how it joins the app.
_COMMANDS: dict[str, Callable[[typer.Typer], object]] = {
    "config": lambda app: app.add_typer(config_cmd.app, name="config"),
    "migrate": lambda app: app.command("migrate")(migrate_cmd.migrate),
    "sync": lambda app: app.command("sync")(sync_cmd.sync),
    "sandbox": lambda app: app.add_typer(sandbox_cmd.app, name="sandbox"),
    "demo": lambda app: app.command("demo")(demo_cmd.demo),
    "ghl": lambda app: app.add_typer(ghl_cmd.app, name="ghl"),
    "bu": lambda app: app.add_typer(bu_cmd.app, name="bu"),
    "jobs": lambda app: app.add_typer(jobs_cmd.app, name="jobs"),
}


def build_app(commands: Iterable[str] = _COMMANDS) -> typer.Typer:
    """The `stsync` app with ``commands`` (by default all of them)."""
    app = typer.Typer(
        name="stsync",
        help="Mirror a ServiceTitan tenant into PostgreSQL and drive GoHighLevel from it.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: rich's help renderer alone costs ~0.2 s per `--help`
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main)
    for name in commands:
        _COMMANDS[name](app)
    for group in app.registered_groups:
        group.typer_instance.rich_markup_mode = None  # type: ignore[union-attr]
    return app


app = build_app()


def app_for(argv: list[str]) -> typer.Typer:
    """The app that runs ``argv``: when it names a command, an app of that command alone. Typer reads the
    signature of every command it holds on each run, 20-30 ms for all of them; one command's takes 5-7 ms.
    Help and anything else get the whole app, so that usage errors list every command."""
    try:
        _, i = split_command_line(argv)
    except ValueError:
        return app
    return build_app([argv[i]]) if i < len(argv) and argv[i] in _COMMANDS else app


def run() -> None:
    """Console-script entry: run the app and turn errors into one stderr line and an exit code."""
    try:
        app_for(sys.argv[1:])()
    except StsyncError as exc:
        if STATE.debug:
            traceback.print_exc()
        print(f"stsync: error: {exc}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        print("stsync: interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.TEMPFAIL))
    except Exception as exc:  # the one catch-all: a bug, reported in one line unless --debug
        if STATE.debug:
            traceback.print_exc()
        print(
            f"stsync: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
            file=sys.stderr,
        )
        sys.exit(int(exit_code_for(exc)))


if __name__ == "__main__":
    run()
