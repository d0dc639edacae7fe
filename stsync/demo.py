"""`stsync demo`: the whole pipeline on a throwaway PostgreSQL and the in-process sandboxes.

Start PostgreSQL, the ServiceTitan sandbox and the GHL sandbox on loopback, migrate, run a full sync and
push to GHL, let sandbox time pass (new customers, jobs moving, estimates sold…), run an incremental sync
and push again, and report what happened. Everything is cleaned up unless ``keep`` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from stsync.config import Config, GhlConfig, load_config
from stsync.db.connect import connect_sync, db_errors
from stsync.db.migrations import migrate
from stsync.events.definitions import example_file, read_workflows
from stsync.events.poll import PollResult
from stsync.events.service import run_poll, store_workflows
from stsync.events.store import open_events
from stsync.ghl.changes import PushResult
from stsync.ghl.service import push
from stsync.sandbox import APP_KEY, CLIENT_ID, CLIENT_SECRET, Sandbox, SandboxOptions
from stsync.sandbox.ghl import GhlOptions, GhlSandbox
from stsync.sandbox.postgres import EmbeddedPostgres
from stsync.sync.model import Observer, RunResult
from stsync.sync.service import sync
from stsync.sync.streams import STREAMS

Say = Callable[[str], None]

# The GHL sandbox's default location and its fixed token (docs/ghl-sandbox.md): a throwaway fake.
GHL_LOCATION, GHL_TOKEN = next(iter(GhlOptions().locations.items()))
POOL_HOOK = "pool"


def demo_business_units(pool_webhook_url: str) -> list[dict[str, Any]]:
    """The seed's four business units, routed the way the old flow and the newer worker did."""
    return [
        {"id": 1314, "name": "Sales & Service", "mode": "api", "pipeline": "Sales"},
        {"id": 54670601, "name": "Install", "mode": "api", "pipeline": "Install"},
        {"id": 4622, "name": "Pool", "mode": "webhook", "pipeline": None, "webhook_url": pool_webhook_url},
        {"id": 26143, "name": "Plumbing", "mode": "api", "pipeline": "Sales", "sync_enabled": False},
    ]


@dataclass
class GhlState:
    """What the GHL sandbox holds after a push (its own ground truth, not stsync's bookkeeping)."""

    contacts: int
    opportunities: int
    distribution: list[tuple[str, str, str, int]]  # (pipeline, stage, status, opportunities), in stage order
    webhook_posts: dict[str, int]  # hook name -> payloads received
    requests: int  # API calls the sandbox answered so far (webhook posts excluded)
    count_429: int


@dataclass
class DemoResult:
    dsn: str
    sandbox_url: str
    timings: dict[str, float] = field(default_factory=dict)
    full: RunResult | None = None
    incremental: RunResult | None = None
    advance: dict[str, Any] = field(default_factory=dict)
    table_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (rows, active)
    ghl_url: str = ""
    pushes: list[PushResult] = field(default_factory=list)  # after the full sync, after the incremental one
    ghl: list[GhlState] = field(default_factory=list)  # the GHL sandbox after each push
    business_units: list[dict[str, Any]] = field(default_factory=list)
    poll: PollResult | None = None  # `events poll` after the second push, with two of the example's workflows
    workflow: str = ""
    kept: bool = False


def _timed(result: DemoResult, name: str, fn: Callable[[], Any]) -> Any:
    started = time.monotonic()
    value = fn()
    result.timings[name] = time.monotonic() - started
    return value


def run_demo(
    scale: str = "small",
    seed: int = 42,
    keep: bool = False,
    base_dir: Path | None = None,
    say: Say = lambda _: None,
    observer: Observer | None = None,
) -> DemoResult:
    """Run the demo; ``say`` hears one line per step, ``observer`` hears the syncs' progress."""
    pg = EmbeddedPostgres(base_dir=base_dir)
    say("starting a throwaway PostgreSQL…")
    started = time.monotonic()
    pg.start()
    try:
        say(f"PostgreSQL ready at {pg.dsn} ({time.monotonic() - started:.1f}s); starting the sandbox ({scale})…")
        with (
            Sandbox.start(SandboxOptions(scale=scale, seed=seed)) as sandbox,
            # The GHL sandbox's own limiter is off here so the demo stays quick; bench/ghl_bench.py runs the
            # push against the real 100 requests / 10 s.
            GhlSandbox.start(GhlOptions(seed=seed, locations={GHL_LOCATION: GHL_TOKEN}, rate_limit=0)) as ghl,
        ):
            result = DemoResult(dsn=pg.dsn, sandbox_url=sandbox.url, ghl_url=ghl.url)
            env = {
                "STSYNC_DATABASE__URL": pg.dsn,
                "STSYNC_SERVICETITAN__API_BASE_URL": sandbox.url,
                "STSYNC_SERVICETITAN__AUTH_URL": sandbox.url,
                "STSYNC_SERVICETITAN__TENANT_ID": str(sandbox.opts.tenant),
                "STSYNC_SERVICETITAN__CLIENT_ID": CLIENT_ID,
                "STSYNC_SERVICETITAN__CLIENT_SECRET": CLIENT_SECRET,
                "STSYNC_SERVICETITAN__APP_KEY": APP_KEY,
                # The sandbox's tokens die with it: keeping them on disk would only leave files behind.
                "STSYNC_SERVICETITAN__TOKEN_CACHE": "false",
            }
            result.business_units = demo_business_units(ghl.webhook_url(POOL_HOOK, GHL_LOCATION))
            config = _with_ghl(load_config(None, env=env), ghl.url, result.business_units)
            say(f"sandbox at {sandbox.url}, GHL sandbox at {ghl.url}; migrating…")
            _timed(result, "migrate", lambda: migrate(pg.dsn))
            say("full sync…")
            result.full = _timed(result, "full sync", lambda: asyncio.run(sync(config, "full", [], observer=observer)))
            say("pushing to GHL (contacts, opportunities, Pool webhook posts)…")
            result.pushes.append(_timed(result, "ghl push", lambda: asyncio.run(push(config, "all"))))
            result.ghl.append(ghl_state(ghl))
            say("advancing the sandbox by 2 hours (new customers and jobs, estimates sold, payments…)…")
            result.advance = sandbox.advance(minutes=120, changes=True)
            sandbox.advance(minutes=20, changes=False)  # past the export feeds' 15-minute delay
            say("incremental sync…")
            result.incremental = _timed(
                result, "incremental sync", lambda: asyncio.run(sync(config, "incremental", [], observer=observer))
            )
            say("pushing the changes to GHL…")
            result.pushes.append(_timed(result, "ghl push again", lambda: asyncio.run(push(config, "all"))))
            result.ghl.append(ghl_state(ghl))
            result.workflow = ", ".join(DEMO_WORKFLOWS)
            say(f"loading workflows {result.workflow} of workflows.example.yaml; events poll…")
            asyncio.run(_load_demo_workflow(pg.dsn))
            result.poll = _timed(result, "events poll", lambda: asyncio.run(run_poll(config)))
            result.table_counts = _table_counts(pg.dsn)
            result.kept = keep
        return result
    finally:
        if keep:
            say(f"kept PostgreSQL running at {pg.dsn} (data in {pg.base_dir}); stop it with: {pg.stop_command()}")
        else:
            pg.stop()


# The example workflows the demo runs (the others need an SMTP server or an install job in the window): a
# completed Pool job posts a review request to the Pool unit's webhook; an Open estimate of $1000 or more is
# tagged in GHL, its follow-up due in two days.
DEMO_WORKFLOWS = ("review-request", "big-estimate-follow-up")


async def _load_demo_workflow(dsn: str) -> None:
    path = example_file()
    workflows = [w for w in read_workflows(path) if w.name in DEMO_WORKFLOWS]
    async with open_events(dsn) as store:
        await store_workflows(store, workflows, str(path))


def _table_counts(dsn: str) -> dict[str, tuple[int, int]]:
    tables = sorted({s.table for s in STREAMS} | {c.table for s in STREAMS for c in s.children})
    counts: dict[str, tuple[int, int]] = {}
    with connect_sync(dsn) as conn, db_errors("counting the mirror's rows"):
        for table in tables:
            row = conn.execute(
                sql.SQL("SELECT count(*), count(*) FILTER (WHERE active) FROM servicetitan.{}").format(
                    sql.Identifier(table)
                )
            ).fetchone()
            counts[table] = (int(row[0]), int(row[1])) if row else (0, 0)
    return counts


def _with_ghl(config: Config, ghl_url: str, units: list[dict[str, Any]]) -> Config:
    """``config`` with a ghl section for the sandbox location (its limiter is off, so no client pacing)."""
    ghl = GhlConfig.model_validate(
        {
            "api_base_url": ghl_url,
            "location_id": GHL_LOCATION,
            "token": GHL_TOKEN,
            "requests_per_10s": 100_000,
            "business_units": units,
        }
    )
    return config.model_copy(update={"ghl": ghl})


def ghl_state(ghl: GhlSandbox) -> GhlState:
    """Count what the GHL sandbox holds: opportunities by pipeline, stage and status, webhook payloads."""
    dump = ghl.dump()
    stages: dict[str, tuple[str, str, int]] = {}  # stage id -> (pipeline name, stage name, position)
    for pipeline in dump["pipelines"]:
        for stage in pipeline["stages"]:
            stages[stage["id"]] = (pipeline["name"], stage["name"], int(stage["position"]))
    counts: Counter[tuple[str, str, str]] = Counter()
    for opp in dump["opportunities"].values():
        pipeline, stage, _ = stages.get(opp["pipelineStageId"], ("?", "?", 99))
        counts[(pipeline, stage, str(opp["status"]))] += 1
    order = {(p, s): pos for p, s, pos in stages.values()}
    distribution = [
        (p, s, status, n)
        for (p, s, status), n in sorted(counts.items(), key=lambda kv: (kv[0][0], order.get(kv[0][:2], 99), kv[0][2]))
    ]
    api_calls = sum(1 for r in ghl.requests if not str(r["path"]).startswith("/hooks/"))
    return GhlState(
        contacts=len(dump["contacts"]),
        opportunities=len(dump["opportunities"]),
        distribution=distribution,
        webhook_posts={name: len(posts) for name, posts in dump["webhooks"].items()},
        requests=api_calls,
        count_429=ghl.count_429,
    )
