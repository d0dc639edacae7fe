"""Errors of `stsync ghl push`: GHL unreachable (69), a refused token (78), a configured stage that GHL
does not have (78). Each is one `stsync: error:` line naming the problem, no traceback, and what the run
pushed before the error stays recorded."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg

from stsync.sandbox.ghl import INSTALL_STAGES, SALES_STAGES, GhlSandbox
from tests.ghl.conftest import LOCATION, TOKEN, ghl_options, write_config
from tests.ghl.scenario import cli, env_for, expected_customers, one_line_error, push_json, rows

CONTACTS = "SELECT st_customer_id, ghl_contact_id, sync_status, pushed_hash FROM integrations.ghl_contacts ORDER BY 1"
OPPS = (
    "SELECT st_customer_id, pipeline, ghl_opportunity_id, stage_name, sync_status FROM integrations.ghl_opportunities "
    "ORDER BY 1, 2"
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_ghl_exits_69(mirror_dsn: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, url, retry_attempts=2))
    one_line_error(cli(["ghl", "push"], env), 69, "GHL", url, "connection refused")
    assert rows(mirror_dsn, CONTACTS) == []


def test_ghl_failing_mid_run_keeps_what_was_pushed(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """Opportunity creates answer 503 until the retries give up: exit 69, and every contact pushed earlier in
    the same run is recorded as synced (the next run does not push them again)."""
    ghl.faults.set({"status": {"status": 503, "path": "/opportunities$"}})
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, retry_attempts=2))
    one_line_error(cli(["ghl", "push"], env), 69, "GHL", "/opportunities", "503")
    recorded = rows(mirror_dsn, CONTACTS)
    assert {r[2] for r in recorded} == {"synced"}
    assert len(recorded) == len(expected_customers(mirror_dsn)) == len(ghl.dump()["contacts"])
    ghl.faults.clear()
    code, doc = push_json(env)
    assert code == 0, doc
    assert doc["counts"]["contacts"] == {"unchanged": len(recorded)}
    assert doc["counts"]["opportunities"]["created"] > 0


def test_refused_token_exits_78_and_keeps_the_record(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    assert push_json(env)[0] == 0
    before = rows(mirror_dsn, CONTACTS), rows(mirror_dsn, OPPS), ghl.dump()
    with psycopg.connect(mirror_dsn) as conn:  # something to push
        conn.execute("UPDATE servicetitan.st_customers SET last_synced_at = now(), name = name || ' II'")
    bad = env_for(
        "http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, token="pit-revoked-token-xyz")
    )
    proc = cli(["ghl", "push"], bad)
    one_line_error(proc, 78, "GHL refused the token", LOCATION, "ghl.token")
    assert "pit-revoked-token-xyz" not in proc.stderr + proc.stdout
    assert TOKEN not in proc.stderr + proc.stdout
    assert (rows(mirror_dsn, CONTACTS), rows(mirror_dsn, OPPS), ghl.dump()) == before


def test_missing_stage_exits_78_naming_it_before_anything_is_pushed(mirror_dsn: str, tmp_path: Path) -> None:
    """The location's Sales pipeline lacks "Proposal Sent" (the default of stsync's proposal_sent): the push
    stops before its first change, naming the stage, the pipeline and the config key; nothing is pushed."""
    sales = tuple(s for s in SALES_STAGES if s != "Proposal Sent")
    with GhlSandbox.start(ghl_options(pipelines={"Sales": sales, "Install": INSTALL_STAGES})) as g:
        env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, g.url))
        one_line_error(
            cli(["ghl", "push"], env), 78, "stage 'Proposal Sent'", "pipeline 'Sales'", "ghl.pipelines.Sales"
        )
        dump = g.dump()
    assert dump["contacts"] == {} and dump["opportunities"] == {}
    assert rows(mirror_dsn, CONTACTS) == [] and rows(mirror_dsn, OPPS) == []


def test_a_second_push_at_the_same_time_exits_75(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """Pushes cannot overlap: while one holds the advisory lock another does nothing and says so."""
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    with psycopg.connect(mirror_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(20260523, hashtext('stsync.ghl.push'))")
        one_line_error(cli(["ghl", "push"], env), 75, "another stsync ghl push is running")
    assert ghl.requests == [] and rows(mirror_dsn, CONTACTS) == []
