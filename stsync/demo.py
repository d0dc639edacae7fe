"""`stsync demo`: the whole pipeline on a throwaway PostgreSQL and the in-process sandbox.

Start both on loopback, migrate, run a full sync, let sandbox time pass (new customers, jobs moving,
estimates sold…), run an incremental sync, and report what happened. Everything is cleaned up
unless ``keep`` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from stsync.config import load_config
from stsync.db.embedded import EmbeddedPostgres
from stsync.db.migrations import migrate
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sync.engine import Observer, RunResult
from stsync.sync.service import sync
from stsync.sync.streams import STREAMS

Say = Callable[[str], None]


@dataclass
class DemoResult:
    dsn: str
    sandbox_url: str
    timings: dict[str, float] = field(default_factory=dict)
    full: RunResult | None = None
    incremental: RunResult | None = None
    advance: dict[str, Any] = field(default_factory=dict)
    table_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (rows, active)
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
        with Sandbox.start(SandboxOptions(scale=scale, seed=seed)) as sandbox:
            result = DemoResult(dsn=pg.dsn, sandbox_url=sandbox.url)
            env = {
                "STSYNC_DATABASE__URL": pg.dsn,
                "STSYNC_SERVICETITAN__API_BASE_URL": sandbox.url,
                "STSYNC_SERVICETITAN__AUTH_URL": sandbox.url,
                "STSYNC_SERVICETITAN__TENANT_ID": "1234567",
                "STSYNC_SERVICETITAN__CLIENT_ID": "sandbox-client-id",
                "STSYNC_SERVICETITAN__CLIENT_SECRET": "sandbox-client-secret",
                "STSYNC_SERVICETITAN__APP_KEY": "sandbox-app-key",
            }
            config = load_config(None, env=env)
            say(f"sandbox at {sandbox.url}; migrating…")
            _timed(result, "migrate", lambda: migrate(pg.dsn))
            say("full sync…")
            result.full = _timed(result, "full sync", lambda: asyncio.run(sync(config, "full", [], observer=observer)))
            say("advancing the sandbox by 2 hours (new customers and jobs, estimates sold, payments…)…")
            result.advance = sandbox.advance(minutes=120, changes=True)
            sandbox.advance(minutes=20, changes=False)  # past the export feeds' 15-minute delay
            say("incremental sync…")
            result.incremental = _timed(
                result, "incremental sync", lambda: asyncio.run(sync(config, "incremental", [], observer=observer))
            )
            result.table_counts = _table_counts(pg.dsn)
            result.kept = keep
        return result
    finally:
        if keep:
            say(f"kept PostgreSQL running at {pg.dsn} (data in {pg.base_dir}); stop it with: {pg.stop_command()}")
        else:
            pg.stop()


def _table_counts(dsn: str) -> dict[str, tuple[int, int]]:
    tables = sorted({s.table for s in STREAMS} | {c.table for s in STREAMS for c in s.children})
    counts: dict[str, tuple[int, int]] = {}
    with psycopg.connect(dsn) as conn:
        for table in tables:
            row = conn.execute(
                psycopg.sql.SQL("SELECT count(*), count(*) FILTER (WHERE active) FROM servicetitan.{}").format(
                    psycopg.sql.Identifier(table)
                )
            ).fetchone()
            counts[table] = (int(row[0]), int(row[1])) if row else (0, 0)
    return counts
