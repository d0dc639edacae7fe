"""An app without one module's scope: that module's streams are refused (HTTP 403), the others sync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli, sync_json

ACCOUNTING = {"invoices", "invoice_items", "payments"}
MARK = "2026-05-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def no_accounting() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7, denied_modules=("accounting",))) as sb:
        yield sb


def test_a_module_without_scope_leaves_the_other_streams_synced(no_accounting: Any, db_dsn: str) -> None:
    env = cli_env(no_accounting.url, db_dsn)
    code, doc = sync_json(["full"], env)
    assert code == 1  # partial, as documented
    streams = {s["name"]: s for s in doc["streams"]}
    for name in ACCOUNTING:
        assert streams[name]["status"] == "failed"
        assert streams[name]["error"] == (
            "no access to ServiceTitan's accounting API (HTTP 403): the app lacks its scope; add it to the app, "
            f"or list {name} in sync.streams_exclude"
        )
    others = [s for name, s in streams.items() if name not in ACCOUNTING]
    assert others and all(s["status"] == "completed" and s["fetched"] > 0 for s in others if s["name"] != "tag_types")
    health = run_cli(["health"], env)
    assert health.returncode == 2
    assert "no access to ServiceTitan's accounting API" in health.stdout


def test_when_every_stream_is_refused_it_is_the_credentials(no_accounting: Any, db_dsn: str) -> None:
    proc = run_cli(["sync", "invoices", "payments"], cli_env(no_accounting.url, db_dsn))
    assert proc.returncode == 78
    assert proc.stderr.strip().splitlines()[-1] == (
        "stsync: error: ServiceTitan refused every stream of the run (HTTP 403 from its accounting API): the app "
        "lacks that scope, or servicetitan.app_key or servicetitan.tenant_id is wrong"
    )


def test_a_refused_module_does_not_hold_the_full_walk_open(no_accounting: Any, db_dsn: str) -> None:
    """Were the refused streams to keep the full walk unfinished, the next `sync full` would resume it: every
    other stream skipped as done, only the refused ones run, and all of them refused."""
    env = cli_env(no_accounting.url, db_dsn)
    assert sync_json(["full"], env)[0] == 1
    code, again = sync_json(["full"], env)
    assert code == 1
    statuses = {s["name"]: s["status"] for s in again["streams"]}
    assert {n for n, st in statuses.items() if st == "failed"} == ACCOUNTING
    assert "skipped" not in statuses.values()


def test_gap_analysis_exits_1_when_a_stream_cannot_be_compared(no_accounting: Any, db_dsn: str) -> None:
    env = cli_env(no_accounting.url, db_dsn)
    sync_json(["full"], env)
    ok = run_cli(["gap-analysis", "--streams", "customers,jobs"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with psycopg.connect(db_dsn, autocommit=True) as conn:  # as if invoices had synced before the scope went
        conn.execute("INSERT INTO servicetitan.sync_state (key, value) VALUES ('invoices.high_water', %s)", (MARK,))
    proc = run_cli(["gap-analysis", "--streams", "customers,invoices"], env)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1].startswith("gap-analysis: no gaps; not compared: invoices")
