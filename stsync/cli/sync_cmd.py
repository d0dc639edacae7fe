"""`stsync sync full | incremental | reference | <stream>…`: mirror ServiceTitan into PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn

import typer

from stsync.cli.state import STATE
from stsync.errors import ExitCode, StsyncError

SYNC_TYPES = ("full", "incremental")


class PlainObserver:
    """One summary line per stream on stdout: for cron, logs and pipes."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def stream_started(self, name: str) -> None:
        pass

    def page_written(self, name: str, result: Any) -> None:
        pass

    def stream_finished(self, result: Any) -> None:
        if self.enabled and not result.outage:  # an outage is one line for the run, not one per stream
            print(stream_line(result), flush=True)


class RichObserver:
    """Progress bars on a TTY; one line per stream once it finishes."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stream_started(self, name: str) -> None:
        self.tasks[name] = self.progress.add_task(name, total=None, detail="starting")

    def page_written(self, name: str, result: Any) -> None:
        self.progress.update(self.tasks[name], detail=f"{result.fetched:,} fetched, {result.pages} pages")

    def stream_finished(self, result: Any) -> None:
        if result.name in self.tasks:
            self.progress.remove_task(self.tasks[result.name])
        if not result.outage:
            self.console.print(stream_line(result), highlight=False)


def stream_line(r: Any) -> str:
    line = (
        f"{r.name}: {r.status} fetched={r.fetched} created={r.created} updated={r.updated} "
        f"unchanged={r.unchanged} quarantined={r.quarantined} pages={r.pages} {r.duration_ms / 1000:.2f}s"
    )
    return f"{line} error={r.error}" if r.error else line


def run_line(result: Any) -> str:
    t = result.totals()
    return (
        f"{'backfill' if result.sync_type == 'backfill' else 'sync ' + result.sync_type}"
        f"{' (dry run)' if result.dry_run else ''}: exit={int(result.exit_code)} "
        f"streams={len(result.streams)} fetched={t['fetched']} created={t['created']} updated={t['updated']} "
        f"unchanged={t['unchanged']} quarantined={t['quarantined']} requests={result.requests} "
        f"{result.duration_ms / 1000:.2f}s run_id={result.run_id}"
        + (f" analyzed={len(result.analyzed)}" if result.analyzed else "")
    )


def result_json(result: Any) -> dict[str, Any]:
    return {
        "run_id": str(result.run_id),
        "sync_type": result.sync_type,
        "dry_run": result.dry_run,
        "exit_code": int(result.exit_code),
        "duration_ms": result.duration_ms,
        "requests": result.requests,
        "totals": result.totals(),
        "analyzed": result.analyzed,
        "analyze_ms": result.analyze_ms,
        "streams": [
            {
                k: getattr(s, k)
                for k in (
                    "name",
                    "status",
                    "fetched",
                    "created",
                    "updated",
                    "unchanged",
                    "quarantined",
                    "pages",
                    "duration_ms",
                    "error",
                )
            }
            for s in result.streams
        ],
    }


def iso_datetime(value: str, option: str) -> str:
    """``value`` if it is an ISO 8601 date or date-time (a zone-less one is UTC), else a usage error."""
    from datetime import datetime

    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not an ISO 8601 date or date-time such as 2026-01-31 or 2026-01-31T08:00:00Z",
            param_hint=option,
        ) from None
    return value.strip()


def sync(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="'full' or 'incremental' (default), then optionally stream names or 'reference' "
            "(default: every stream). Example: `stsync sync full customers jobs`.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start feeds at this ISO date/time (modifiedOn) instead of the checkpoint."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch and count, write nothing to the database.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")] = False,
    recent: Annotated[
        bool | None,
        typer.Option(
            "--recent-changes/--no-recent-changes",
            help="Ask export feeds for changes younger than 15 minutes (may repeat rows); "
            "default: servicetitan.include_recent_changes.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Mirror ServiceTitan into PostgreSQL: export feeds, bulk upserts, crash-safe checkpoints.

    Exit codes: 0 ok, 1 partial (records quarantined), 69 ServiceTitan or database unavailable,
    75 another run holds the lock, 78 config error.
    """
    from stsync.cli.logs import setup as setup_logs
    from stsync.cli.startup import start_up_done
    from stsync.config import load_config
    from stsync.sync.service import sync as run

    words = list(targets or [])
    sync_type = "incremental"
    if words and words[0] in SYNC_TYPES:
        sync_type = words.pop(0)
    if any(w in SYNC_TYPES for w in words):
        raise typer.BadParameter("'full' or 'incremental' must come first", param_hint="TARGETS")
    if since is not None:
        since = iso_datetime(since, "--since")

    config = load_config(STATE.config_path)
    setup_logs(config.logging.level, config.logging.format, STATE.debug)
    start_up_done()
    run_and_report(lambda observer: run(config, sync_type, words, since, dry_run, recent, observer), json_out)  # type: ignore[arg-type]


def run_and_report(start: Callable[[Any], Coroutine[Any, Any, Any]], json_out: bool) -> NoReturn:
    """Run ``start(observer)`` (a sync or a backfill) with progress on a TTY, one line per stream otherwise,
    print its summary, and exit with its code."""
    if sys.stdout.isatty() and not json_out:
        with RichObserver() as observer:
            result = asyncio.run(start(observer))
    else:
        result = asyncio.run(start(PlainObserver(enabled=not json_out)))
    if json_out:
        print(json.dumps(result_json(result), indent=2))
    else:
        print(run_line(result), flush=True)
    code = result.exit_code
    if code not in (ExitCode.OK, ExitCode.PARTIAL):
        failed = next(s for s in result.streams if s.exit_code == code)
        raise _StreamFailure(str(failed.error) if failed.outage else f"{failed.name}: {failed.error}", code)
    raise typer.Exit(int(code))


class _StreamFailure(StsyncError):
    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = code
