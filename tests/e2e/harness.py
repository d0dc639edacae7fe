"""Helpers for end-to-end tests: run the real `stsync` CLI against the sandbox and compare the mirror
with the sandbox's ground truth."""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from stsync.sandbox.app import token_position
from stsync.sync.streams import STREAMS, STREAMS_BY_NAME
from tests.sandbox_creds import SANDBOX_ENV, TENANT

STSYNC = str(Path(sys.executable).with_name("stsync"))


def cli_env(sandbox_url: str, dsn: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI run against ``sandbox_url``. Runs made with one such environment share a token
    cache, as a machine's timer runs do; it is never the user's own ~/.cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env.update(SANDBOX_ENV)
    token_cache = tempfile.mkdtemp(prefix="stsync-token-cache-")
    atexit.register(shutil.rmtree, token_cache, True)
    env.update(
        {
            "STSYNC_DATABASE__URL": dsn,
            "STSYNC_SERVICETITAN__API_BASE_URL": sandbox_url,
            "STSYNC_SERVICETITAN__AUTH_URL": sandbox_url,
            "STSYNC_SERVICETITAN__TOKEN_CACHE_DIR": token_cache,
            "STSYNC_RETRY_NO_WAIT": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(args: list[str], env: Mapping[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STSYNC, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)


def sync_json(args: list[str], env: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    proc = run_cli(["sync", *args, "--json"], env)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON summary (exit {proc.returncode}): {proc.stderr[-2000:]}") from None
    return proc.returncode, doc


def _resource_rows(conn: psycopg.Connection[Any], table: str, where: str = "") -> dict[str, tuple[Any, bool]]:
    key = "entity || ':' || st_id" if table == "st_custom_field_types" else "st_id::text"
    rows = conn.execute(f"SELECT {key}, full_data, active FROM servicetitan.{table} {where}").fetchall()
    return {k: (d, a) for k, d, a in rows}


def mirror_differences(conn: psycopg.Connection[Any], world: Mapping[str, Mapping[Any, Any]]) -> list[str]:
    """Every way the mirror differs from the sandbox's ground truth (empty when equal)."""
    problems: list[str] = []
    tables = {s.name: s.table for s in STREAMS}
    tables["custom_field_types"] = "st_custom_field_types"
    for resource, records in world.items():
        if resource not in tables:
            continue
        expected = {str(k): v for k, v in records.items()}
        actual = _resource_rows(conn, tables[resource])
        missing = expected.keys() - actual.keys()
        extra = actual.keys() - expected.keys()
        if missing:
            problems.append(f"{resource}: {len(missing)} missing, e.g. {sorted(missing)[:3]}")
        if extra:
            problems.append(f"{resource}: {len(extra)} not in the sandbox, e.g. {sorted(extra)[:3]}")
        wrong = [k for k in expected.keys() & actual.keys() if actual[k][0] != expected[k]]
        if wrong:
            problems.append(f"{resource}: {len(wrong)} with different full_data, e.g. {sorted(wrong)[:3]}")
        bad_active = [k for k in expected.keys() & actual.keys() if actual[k][1] != expected[k].get("active", True)]
        if bad_active:
            problems.append(f"{resource}: {len(bad_active)} with wrong active, e.g. {sorted(bad_active)[:3]}")
    if "estimates" in world:
        # Items mirror their estimate's embedded items; an item is active when its estimate is, and an
        # item that left its estimate stays in the table, inactive.
        items = {
            str(item["id"]): (item, est.get("active", True))
            for est in world["estimates"].values()
            for item in (est.get("items") or [])
        }
        actual = _resource_rows(conn, "st_estimate_items")
        missing = items.keys() - actual.keys()
        if missing:
            problems.append(f"estimate items: {len(missing)} missing, e.g. {sorted(missing)[:3]}")
        wrong = [k for k in items.keys() & actual.keys() if actual[k] != items[k]]
        if wrong:
            problems.append(f"estimate items: {len(wrong)} with different full_data or active, e.g. {wrong[:3]}")
        stale = [k for k in actual.keys() - items.keys() if actual[k][1]]
        if stale:
            problems.append(f"estimate items: {len(stale)} no longer embedded but still active")
    return problems


EXPORT = "/export/"


def export_requests(requests: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [
        (r["path"], (r.get("query") or {}).get("from")) for r in requests if EXPORT in r["path"] and r["status"] == 200
    ]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll a condition; the test fails (not sleeps its way through) if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def committed_pages(run: list[tuple[str, str | None]], stored: dict[str, str]) -> set[tuple[str, str | None]]:
    """The (path, from) pages of ``run`` that are committed: on each feed, those that start before the token
    stored with its last committed page (a page and that token commit together). Which run asked for a page
    does not matter: a killed run's requests that the sandbox was still serving are logged after it died.
    Pages asked for by date are left out."""
    committed: set[tuple[str, str | None]] = set()
    for path, token in run:
        resume = token_position(stored[path]) if isinstance(stored.get(path), str) else None
        start = 0 if token is None else token_position(token)
        if resume is not None and start is not None and start < resume:
            committed.add((path, token))
    return committed


def stored_tokens(db_dsn: str) -> dict[str, str]:
    """Stored continuation token per export path, read from sync_state."""
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT key, value FROM servicetitan.sync_state WHERE key LIKE '%.continue_from'"
        ).fetchall()
    by_stream = {key.removesuffix(".continue_from"): value for key, value in rows}
    return {
        f"/{s.module}/v2/tenant/{TENANT}/{s.export_path}": by_stream[s.name]
        for s in STREAMS
        if s.export_path and s.name in by_stream
    }


@dataclass(frozen=True)
class InProcessRun:
    result: Any  # stsync.sync.model.RunResult
    held: int  # page-budget bytes still held at the end (a leak would stall later pages)
    peak: int


def sync_in_process(
    sandbox_url: str,
    dsn: str,
    names: Sequence[str] | None = None,
    sync_type: str = "full",
    max_concurrency: int = 8,
    timeout: float = 300,
    **client: Any,
) -> InProcessRun:
    """Run the sync engine in this process (so tests can patch it) against the sandbox, over ``names`` (default:
    every stream), with ``client`` overriding ClientSettings fields. A run that deadlocks fails after ``timeout``
    instead of hanging the suite."""
    from stsync.config import load_config
    from stsync.servicetitan.client import ServiceTitanClient
    from stsync.sync.engine import run_sync
    from stsync.sync.model import SyncOptions
    from stsync.sync.service import client_settings

    settings = dataclasses.replace(client_settings(load_config(None, cli_env(sandbox_url, dsn))), **client)
    options = SyncOptions(
        sync_type=sync_type,  # type: ignore[arg-type]
        dsn=dsn,
        tenant_id=settings.tenant_id,
        max_concurrency=max_concurrency,
    )
    streams = [STREAMS_BY_NAME[n] for n in names] if names is not None else list(STREAMS)

    async def go() -> InProcessRun:
        async with ServiceTitanClient(settings) as st:
            result = await asyncio.wait_for(run_sync(st, streams, options), timeout=timeout)
            return InProcessRun(result, st.budget.held, st.budget.peak)

    return asyncio.run(go())
