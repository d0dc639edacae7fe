"""`stsync ghl push|status|retry|pull`: drive GoHighLevel from the mirror."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from stsync.cli.state import configured

app = typer.Typer(help="Push the mirror to GoHighLevel and inspect what was pushed.", no_args_is_help=True)

WHAT_HELP = "What to push: contacts, opportunities (incl. webhook posts) or all."


def progress_line(p: Any, elapsed: float) -> str:
    """Where a push stands: customers examined (in finished batches), changes and requests made, and an ETA
    from the customers' pace."""
    rate = p.requests / elapsed if elapsed > 0 else 0.0
    if p.examined and p.examined < p.customers:
        left = int(elapsed * (p.customers - p.examined) / p.examined)
        eta = f"ETA {left // 3600}h{left % 3600 // 60:02d}m" if left >= 3600 else f"ETA {left // 60}m{left % 60:02d}s"
    else:
        eta = "ETA unknown" if not p.examined else "finishing"
    return (
        f"ghl push: {p.examined:,} of {p.customers:,} customers, {p.changes:,} changes made, "
        f"{p.requests:,} requests ({rate:.1f}/s), {eta}"
    )


def pull_line(p: Any, elapsed: float) -> str:
    """Where a pull stands: the phase (contacts, then opportunities), records read of the location's total, links
    made and requests sent."""
    rate = p.requests / elapsed if elapsed > 0 else 0.0
    of = f" of {p.total:,}" if p.total is not None else ""
    return f"ghl pull: {p.phase} {p.seen:,}{of} read, {p.linked:,} linked, {p.requests:,} requests ({rate:.1f}/s)"


class PlainProgress:
    """A progress line (``line``) on stderr every ``every`` seconds, for cron, journald and pipes."""

    def __init__(
        self,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        line: Callable[[Any, float], str] = progress_line,
    ) -> None:
        self.every, self.clock, self.line = every, clock, line
        self.started = clock()
        self.due = self.started + every

    def __call__(self, p: Any) -> None:
        now = self.clock()
        if now >= self.due:
            self.due = now + self.every
            typer.echo(self.line(p, now - self.started), err=True)


class RichProgress:
    """A progress bar on a terminal (stderr). ``view`` turns a report into (bar label, done, total, detail):
    a push's customers examined, a pull's records read per phase."""

    def __init__(self, view: Callable[[Any, float], tuple[str, int, int | None, str]] | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.view = view or _push_view
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, p: Any) -> None:
        label, done, total, detail = self.view(p, max(time.monotonic() - self.started, 1e-9))
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=total, detail="")
        self.progress.update(self.tasks[label], completed=done, total=total, detail=detail)


def _push_view(p: Any, elapsed: float) -> tuple[str, int, int | None, str]:
    detail = f"customers, {p.changes:,} changes, {p.requests:,} requests ({p.requests / elapsed:.1f}/s)"
    return "ghl push", p.examined, p.customers, detail


def _pull_view(p: Any, elapsed: float) -> tuple[str, int, int | None, str]:
    detail = f"{p.phase}, {p.linked:,} linked, {p.requests:,} requests ({p.requests / elapsed:.1f}/s)"
    return f"ghl pull {p.phase}", p.seen, p.total, detail


def push_line(result: Any) -> str:
    parts = [f"ghl push {result.what}{' (dry run)' if result.dry_run else ''}: exit={int(result.exit_code)}"]
    for kind, counts in result.counts.items():
        if counts:
            parts.append(f"{kind}[" + " ".join(f"{k}={v}" for k, v in sorted(counts.items())) + "]")
    parts.append(f"mode={result.mode} examined={result.examined}")
    parts.append(f"planned={result.planned_total} requests={result.requests}")
    if not result.planned_total:
        parts.append("(nothing to push: GHL not asked)" if not result.dry_run else "(nothing to push)")
    if not result.location_id:
        parts.append("(no ghl.location_id: planned as the first push into an empty location)")
    if result.stopped:
        parts.append(f"stopped: {result.stopped}; {result.remaining} changes left for the next run")
    return " ".join(parts)


def _render(result: Any, json_out: bool) -> None:
    if json_out:
        doc = {
            "what": result.what,
            "dry_run": result.dry_run,
            "exit_code": int(result.exit_code),
            "counts": {k: dict(v) for k, v in result.counts.items()},
            "planned_total": result.planned_total,
            "planned": result.planned,
            "dead_urls": result.dead_urls,
            "requests": result.requests,
            "stopped": result.stopped,
            "remaining": result.remaining,
            "mode": result.mode,
            "since": result.since.isoformat() if result.since else None,
            "examined": result.examined,
            "location_id": result.location_id or None,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if result.dry_run:
        for line in result.planned:
            typer.echo(f"  {line}")
    for bu in result.dead_urls:
        typer.echo(f"dead webhook URL: {bu} answered without an id; fix it with `stsync bu set`", err=True)
    typer.echo(push_line(result))


@app.command("push")
def push(
    what: Annotated[str, typer.Argument(help=WHAT_HELP)] = "all",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print counts and the first planned changes; write nothing.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Push at most N changes (dry run: list the first N, default 20)."),
    ] = None,
    max_requests: Annotated[
        int | None,
        typer.Option(
            "--max-requests",
            min=1,
            help="Stop cleanly (exit 0) before the next change once N GHL requests are made; the next run goes on.",
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Compare every customer, not only those whose mirror rows changed (the daily reconcile)."
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")] = False,
) -> None:
    """Push contacts and opportunities (and webhook posts) that differ from what GHL last accepted.

    A push looks at the customers whose mirror rows changed since the location's last complete push; the
    first push of a location, a changed stage mapping or business-unit routing, and --full look at all.

    Exit codes: 0 ok, 1 some items failed or a webhook URL is dead, 69 GHL or database unavailable,
    75 another push is running or the daily GHL budget is used up, 78 config error (token, stage).
    """
    from stsync.ghl.push import KINDS
    from stsync.ghl.service import push as run

    if what not in KINDS:
        raise typer.BadParameter(f"expected one of {', '.join(KINDS)}", param_hint="WHAT")
    config = configured()
    options: dict[str, Any] = {"dry_run": dry_run, "limit": limit, "max_requests": max_requests, "full": full}
    if sys.stderr.isatty():
        with RichProgress() as bar:
            result = asyncio.run(run(config, what, progress=bar, **options))
    else:
        result = asyncio.run(run(config, what, progress=PlainProgress(), **options))
    _render(result, json_out)
    raise typer.Exit(int(result.exit_code))


@app.command("status")
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    dead: Annotated[int, typer.Option("--dead", min=0, help="List up to N dead letters.")] = 20,
) -> None:
    """Counts of contacts and opportunities by location and sync status, of webhook posts by status, and the
    dead letters. The configured location is marked; the others are kept for when the config returns to them."""
    from stsync.ghl.service import statistics

    config = configured()
    stats, letters = asyncio.run(statistics(config, dead))
    if json_out:
        doc = {"location_id": config.ghl.location_id, "statistics": stats, "dead_letters": letters}
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    if not stats:
        typer.echo("nothing pushed yet")
    heading: object = ()
    for row in stats:
        if row["location_id"] != heading:
            heading = row["location_id"]
            current = " (ghl.location_id)" if heading == config.ghl.location_id else ""
            typer.echo(f"location {heading}{current}:" if heading is not None else "webhook posts (any location):")
        typer.echo(f"  {row['kind']:<14} {row['status']:<8} {row['n']}")
    for row in letters:
        where = f" location={row['location_id']}" if row["location_id"] is not None else ""
        typer.echo(f"dead {row['kind']} {row['key']}{where} attempts={row['attempts']}: {row['error']}")


@app.command("retry")
def retry(
    dead: Annotated[bool, typer.Option("--dead", help="Also retry dead letters (attempts start over).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")] = False,
) -> None:
    """Make failed items due now (and dead ones with --dead), then push."""
    from stsync.ghl.service import push as run
    from stsync.ghl.service import requeue

    config = configured()
    counts = asyncio.run(requeue(config, dead))
    if not json_out:
        typer.echo("requeued " + " ".join(f"{k}={v}" for k, v in counts.items()))
    result = asyncio.run(run(config, "all"))
    _render(result, json_out)
    raise typer.Exit(int(result.exit_code))


@app.command("pull")
def pull(
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Link the location's existing GHL contacts and opportunities to ServiceTitan customers.

    A contact matches by the ServiceTitan customer id it carries, else its email, else its phone. Run it once
    before the first push into a location that already has contacts; a killed pull resumes where it stopped.
    """
    from stsync.ghl.service import pull as run

    config = configured()
    if sys.stderr.isatty():
        with RichProgress(_pull_view) as bar:
            counts = asyncio.run(run(config, progress=bar))
    else:
        counts = asyncio.run(run(config, progress=PlainProgress(line=pull_line)))
    if json_out:
        typer.echo(json.dumps(counts, indent=2))
    else:
        typer.echo("ghl pull: " + " ".join(f"{k}={v}" for k, v in counts.items()))


@app.command("pipelines")
def pipelines(
    json_out: Annotated[bool, typer.Option("--json", help="Print the pipelines and stages as JSON.")] = False,
    mapping: Annotated[
        bool, typer.Option("--mapping", help="Print a starting ghl.pipelines mapping to paste into the config.")
    ] = False,
) -> None:
    """List the location's pipelines and their stages (name and id), or a starting stage mapping.

    stsync reasons in its own stage names; ``ghl.pipelines`` says which of the location's stages each one is.
    """
    from stsync.ghl.service import pipelines as run

    config = configured()
    found = asyncio.run(run(config))
    if json_out:
        doc = [
            {
                "id": p.get("id"),
                "name": p.get("name"),
                "stages": [{"id": s.get("id"), "name": s.get("name")} for s in p.get("stages") or []],
            }
            for p in found
        ]
        typer.echo(json.dumps({"location_id": config.ghl.location_id, "pipelines": doc}, indent=2))
    elif mapping:
        typer.echo(mapping_yaml(found, config.ghl.pipeline_kind))
    else:
        if not found:
            typer.echo(f"location {config.ghl.location_id} has no pipelines")
        for p in found:
            typer.echo(f"{p.get('name')} (id {p.get('id')})")
            for s in p.get("stages") or []:
                typer.echo(f"  {s.get('name')} (id {s.get('id')})")


def mapping_yaml(found: list[dict[str, Any]], kind_of: Any) -> str:
    """YAML for ghl.pipelines from the location's pipelines: each stsync stage next to the stage whose name
    is its default, else one whose name suggests it (marked to check), else a comment listing the stages."""
    from stsync.ghl.stages import starting_mapping as guess

    lines = ["ghl:", "  pipelines:"]
    for p in found:
        name = str(p.get("name"))
        kind = kind_of(name)
        names = [str(s.get("name")) for s in p.get("stages") or []]
        lines += [f"    {json.dumps(name)}:", f"      kind: {kind}", "      stages:"]
        for stage, (target, how) in guess(p, kind).items():
            if target is None:
                lines.append(f"        # {stage}: no stage matched; name one of {', '.join(map(repr, names))}")
            else:
                note = "  # guessed: check it" if how == "guessed" else ""
                lines.append(f"        {stage}: {json.dumps(target)}{note}")
    return "\n".join(lines)
