"""`stsync` entry point: the Typer app, global options, and the one place errors become exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer

from stsync.cli import (
    backfill_cmd,
    bu_cmd,
    config_cmd,
    demo_cmd,
    events_cmd,
    gaps_cmd,
    ghl_cmd,
    health_cmd,
    history_cmd,
    jobs_cmd,
    migrate_cmd,
    sandbox_cmd,
    state_cmd,
    streams_cmd,
    sync_cmd,
    workflows_cmd,
)
from stsync.cli.startup import split_command_line
from stsync.cli.state import STATE
from stsync.errors import ExitCode, StsyncError, exit_code_for
from stsync.masking import mask_dsn, mask_urls


def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="STSYNC_CONFIG",
            help="YAML config file (default: $STSYNC_CONFIG; environment variables "
            "STSYNC_<SECTION>__<KEY> override it).",
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
    "events": lambda app: app.add_typer(events_cmd.app, name="events"),
    "workflows": lambda app: app.add_typer(workflows_cmd.app, name="workflows"),
    "health": lambda app: app.command("health")(health_cmd.health),
    "gap-analysis": lambda app: app.command("gap-analysis")(gaps_cmd.gap_analysis),
    "backfill": lambda app: app.command("backfill")(backfill_cmd.backfill),
    "state": lambda app: app.add_typer(state_cmd.app, name="state"),
    "streams": lambda app: app.add_typer(streams_cmd.app, name="streams"),
    "logs": lambda app: app.command("logs")(history_cmd.logs),
    "stats": lambda app: app.command("stats")(history_cmd.stats),
}


def build_app(commands: Iterable[str] = _COMMANDS) -> typer.Typer:
    """The `stsync` app with ``commands`` (by default all of them)."""
    app = typer.Typer(
        name="stsync",
        help="Mirror a ServiceTitan tenant into PostgreSQL and drive GoHighLevel from it.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Click's plain help, written through click's formatter: `stsync` without a command can print it to
        # stderr (rich's renderer writes to stdout itself), and it reads the same in a pipe or a journal.
        rich_markup_mode=None,
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
    signature of every command it holds on each run, so one command's app starts faster than the whole
    (docs/performance.md). Help and anything else get the whole app, so that usage errors list every command."""
    try:
        _, i = split_command_line(argv)
    except ValueError:
        return app
    return build_app([argv[i]]) if i < len(argv) and argv[i] in _COMMANDS else app


def _command(argv: list[str]) -> str:
    """``stsync`` and the command's name (and its subcommand's, for a group) as ``argv`` gives them."""
    try:
        _, i = split_command_line(argv)
    except ValueError:
        return "stsync"
    words = argv[i : i + 2] if i < len(argv) and argv[i] in _GROUPS else argv[i : i + 1]
    return " ".join(["stsync", *words])


_GROUPS = ("config", "sandbox", "ghl", "bu", "jobs")


def _usage_line(exc: Exception) -> str:
    """Click's usage error as one line with a pointer to the command's help (its own is four lines)."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "stsync"
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    return f"stsync: error: {message} (see `{command} --help`)"


def run() -> None:
    """Console-script entry: run the app; every error becomes one stderr line and the exit code of
    ``stsync.errors.ExitCode`` (the one place exit codes are decided)."""
    # typer ships its own copy of click; its exceptions are only reachable there.
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        code = app_for(sys.argv[1:])(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), file=sys.stderr)
        code = ExitCode.USAGE
    except UsageError as exc:
        print(_usage_line(exc), file=sys.stderr)
        code = ExitCode.USAGE
    except ClickException as exc:
        print(f"stsync: error: {mask_dsn(exc.format_message())}", file=sys.stderr)
        code = exc.exit_code
    except StsyncError as exc:
        if STATE.debug:
            traceback.print_exc()
        hint = f" (see `{_command(sys.argv[1:])} --help`)" if exc.exit_code == ExitCode.USAGE else ""
        print(f"stsync: error: {mask_dsn(str(exc))}{hint}", file=sys.stderr)
        code = exc.exit_code
    except (KeyboardInterrupt, Abort):
        print("stsync: interrupted", file=sys.stderr)
        code = ExitCode.TEMPFAIL
    except Exception as exc:  # the one catch-all: a bug, reported in one line unless --debug
        if STATE.debug:
            traceback.print_exc()
        text = mask_urls(mask_dsn(" ".join(str(exc).split())))
        print(
            f"stsync: internal error: {type(exc).__name__}: {text} (run with --debug for a traceback)", file=sys.stderr
        )
        code = exit_code_for(exc)
    sys.exit(int(code) if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
