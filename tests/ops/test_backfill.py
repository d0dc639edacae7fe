"""`stsync backfill`: from a gap report, by ids, and by window; it restores rows, moves no cursor, and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import STSYNC, cli_env, run_cli, wait_for
from tests.ops.damage import CURSORS, synced_and_damaged
from tests.sandbox_creds import TENANT


def _rows(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query, params).fetchall())


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return dict(json.loads(proc.stdout))
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON summary (exit {proc.returncode}): {proc.stderr[-2000:]}") from None


def _fetched(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {s["name"]: s["fetched"] for s in _summary(proc)["streams"]}


def test_backfill_from_the_gap_report_restores_the_rows_and_moves_no_cursor(
    sandbox: Any, db_dsn: str, tmp_path: Path
) -> None:
    env, want = synced_and_damaged(sandbox.url, db_dsn)
    report = tmp_path / "gaps.json"
    assert run_cli(["gap-analysis", "--deep", "--json", "--out", str(report)], env).returncode == 1
    baseline = _fetched(run_cli(["sync", "incremental", "--json"], env))  # what a run with nothing new fetches
    cursors = _rows(db_dsn, CURSORS)

    done = run_cli(["backfill", "--from-gap-report", str(report), "--json"], env)
    summary = _summary(done)
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary["sync_type"] == "backfill"
    streams = {s["name"]: s for s in summary["streams"]}
    # The lost jobs and appointment come back; the orphan's location does not exist in ServiceTitan either.
    assert streams["jobs"]["created"] == 3 and streams["appointments"]["created"] == 1
    assert streams["locations"]["fetched"] == 0
    restored = _rows(
        db_dsn,
        "SELECT st_id FROM servicetitan.st_jobs WHERE st_id = ANY(%s) AND deleted_at IS NULL",
        (want["lost_jobs"],),
    )
    assert sorted(r[0] for r in restored) == want["lost_jobs"]
    assert _rows(db_dsn, "SELECT 1 FROM servicetitan.st_appointments WHERE st_id = %s", (want["appointment"],))
    assert _rows(db_dsn, CURSORS) == cursors  # every cursor as it was
    logged = _rows(
        db_dsn, "SELECT stream, status FROM servicetitan.st_sync_log WHERE sync_type = 'backfill' ORDER BY stream"
    )
    assert logged == [("appointments", "completed"), ("jobs", "completed"), ("locations", "completed")]

    assert _fetched(run_cli(["sync", "incremental", "--json"], env)) == baseline  # nothing extra to fetch

    after = json.loads(run_cli(["gap-analysis", "--deep", "--json"], env).stdout)
    by_stream = {s["stream"]: s for s in after["streams"]}
    assert by_stream["jobs"]["status"] == "ok" and by_stream["appointments"]["status"] == "ok"
    assert [(o["kind"], o["id"]) for o in after["orphans"]] == [("job without its location", want["stray_job"])]


def test_backfill_by_ids_and_by_window_merge_as_sync_does(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    cursors = _rows(db_dsn, CURSORS)
    customers = [r[0] for r in _rows(db_dsn, "SELECT st_id FROM servicetitan.st_customers ORDER BY st_id LIMIT 60")]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM servicetitan.st_customers WHERE st_id = ANY(%s)", (customers[:55],))
        conn.execute(
            "UPDATE servicetitan.st_customers SET name = 'stale', full_data = full_data || '{\"name\": \"stale\"}'"
            " WHERE st_id = ANY(%s)",
            (customers[55:],),
        )

    by_ids = _summary(run_cli(["backfill", "customers", "--ids", ",".join(map(str, customers)), "--json"], env))
    customers_run = by_ids["streams"][0]
    assert (customers_run["created"], customers_run["updated"], customers_run["pages"]) == (55, 5, 2)  # 50 + 10 ids
    assert by_ids["requests"] == 2
    assert _rows(db_dsn, "SELECT count(*) FROM servicetitan.st_customers WHERE name = 'stale'") == [(0,)]

    window = run_cli(
        ["backfill", "customers", "locations", "--from", "2024-01-01", "--to", "2030-01-01", "--json"], env
    )
    summary = _summary(window)
    assert window.returncode == 0
    total = _rows(db_dsn, "SELECT count(*) FROM servicetitan.st_customers")[0][0]
    streams = {s["name"]: s for s in summary["streams"]}
    assert streams["customers"]["unchanged"] == total and streams["customers"]["created"] == 0
    assert _rows(db_dsn, CURSORS) == cursors


def test_backfill_refuses_what_it_cannot_do_with_one_line(sandbox: Any, db_dsn: str, tmp_path: Path) -> None:
    env = cli_env(sandbox.url, db_dsn)
    cases = [
        (["backfill", "invoice_items", "--ids", "1"], 2, "invoice_items: it has no list endpoint of its own"),
        (["backfill", "customer_contacts", "--ids", "1"], 2, "customer_contacts: its list takes no ids"),
        (["backfill", "jobs"], 2, "give exactly one of --from/--to, --ids or --from-gap-report"),
        (["backfill", "jobs", "--ids", "1", "--from", "2026-01-01"], 2, "give exactly one of"),
        (["backfill", "jobs", "--from", "yesterday", "--to", "2026-01-01"], 2, "'yesterday' is not an ISO 8601"),
        (["backfill", "jobs", "--from", "2026-02-01", "--to", "2026-01-01"], 2, "is not before --to"),
        (["backfill", "jobs", "--ids", ","], 2, "--ids names no id"),
        (["backfill", "jobs", "--ids", "\u00b2"], 2, "'\u00b2' is not a record id"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"streams": [{"stream": "jobs", "missing": ["x"]}]}))
    cases.append((["backfill", "--from-gap-report", str(bad)], 65, f"{bad}: streams[0].missing: not a list of ids"))
    for args, code, line in cases:
        proc = run_cli(args, env)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert line in proc.stderr, (args, proc.stderr)


@pytest.mark.faults
def test_a_killed_backfill_resumes_where_it_stopped(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    jobs = [r[0] for r in _rows(db_dsn, "SELECT st_id FROM servicetitan.st_jobs ORDER BY st_id LIMIT 200")]
    args = [STSYNC, "backfill", "jobs", "--ids", ",".join(map(str, jobs))]  # four requests of 50 ids
    before = len(sandbox.requests)
    sandbox.faults.set({"latency": {"ms": 300, "jitter_ms": 0}})
    try:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(
            lambda: (
                proc.poll() is not None
                or bool(
                    _rows(
                        db_dsn,
                        "SELECT 1 FROM servicetitan.sync_state WHERE key = 'jobs.backfill' AND value LIKE '%%:2:1'",
                    )
                )
            ),
            120,
            "two of the four chunks committed",
        )
        assert proc.poll() is None, "the backfill finished before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        sandbox.faults.clear()
    first = [r["query"]["ids"] for r in sandbox.requests[before:] if r["path"].endswith("/jobs") and r["status"] == 200]
    before = len(sandbox.requests)
    resumed = run_cli(["backfill", "jobs", "--ids", ",".join(map(str, jobs)), "--json"], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = [r["query"]["ids"] for r in sandbox.requests[before:] if r["path"].endswith("/jobs") and r["status"] == 200]
    chunks = [",".join(map(str, jobs[i : i + 50])) for i in range(0, 200, 50)]
    assert first[:2] == chunks[:2] and again == chunks[2:]  # the committed chunks are not fetched again
    assert _rows(db_dsn, "SELECT value FROM servicetitan.sync_state WHERE key = 'jobs.backfill'") == [(None,)]


def test_a_resumed_window_goes_on_one_page_early_and_only_under_the_same_plan(sandbox: Any, db_dsn: str) -> None:
    """The checkpoint a killed backfill leaves after two pages of a window: the same plan goes on from the second
    page (one early: a record that left the window shifts the rest forward), any other page size starts over."""
    from stsync.sync.backfill import digest, window_plan
    from stsync.sync.streams import STREAMS_BY_NAME

    env = cli_env(sandbox.url, db_dsn, STSYNC_SERVICETITAN__PAGE_SIZE="20")
    assert run_cli(["sync", "full"], env).returncode == 0
    customers = STREAMS_BY_NAME["customers"]
    args = ["backfill", "customers", "--by", "created", "--from", "2000-01-01", "--to", "2030-01-01", "--json"]
    units = window_plan([customers], "created", "2000-01-01T00:00:00Z", "2030-01-01T00:00:00Z")["customers"]

    def pages_fetched(saved: str) -> list[int]:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO servicetitan.sync_state (key, value) VALUES ('customers.backfill', %s)", (saved,))
        before = len(sandbox.requests)
        proc = run_cli(args, env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM servicetitan.sync_state WHERE key = 'customers.backfill'")
        return [
            int(r["query"]["page"])
            for r in sandbox.requests[before:]
            if r["path"].endswith("/crm/v2/tenant/" + str(TENANT) + "/customers")
        ]

    pages = -(-100 // 20)  # the small world's 100 customers
    assert pages_fetched(f"{digest(units, 20, customers.list_params)}:0:3") == list(range(2, pages + 1))
    assert pages_fetched(f"{digest(units, 50, customers.list_params)}:0:3") == list(range(1, pages + 1))


def test_backfill_refuses_an_excluded_stream(sandbox: Any, db_dsn: str) -> None:
    proc = run_cli(
        ["backfill", "jobs", "--ids", "1"], cli_env(sandbox.url, db_dsn, STSYNC_SYNC__STREAMS_EXCLUDE="jobs")
    )
    assert proc.returncode == 2 and "jobs is not enabled (sync.streams_include, sync.streams_exclude)" in proc.stderr, (
        proc.stderr
    )


def test_a_list_without_ids_is_backfilled_by_the_reports_windows(sandbox: Any, db_dsn: str, tmp_path: Path) -> None:
    """Contacts' lists take no ids (and want a modified date): a lost contact comes back through the creation
    window the report found it missing from."""
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    lost = _rows(db_dsn, "SELECT st_id FROM servicetitan.st_customer_contacts WHERE active ORDER BY st_id LIMIT 1")[0][
        0
    ]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM servicetitan.st_customer_contacts WHERE st_id = %s", (lost,))
    report = tmp_path / "gaps.json"
    found = run_cli(["gap-analysis", "--deep", "--json", "--out", str(report), "--streams", "customer_contacts"], env)
    contacts = json.loads(found.stdout)["streams"][0]
    assert (found.returncode, contacts["missing"], len(contacts["windows"])) == (1, [lost], 1)
    done = _summary(run_cli(["backfill", "--from-gap-report", str(report), "--json"], env))
    assert [(s["name"], s["created"]) for s in done["streams"]] == [("customer_contacts", 1)]
    assert _rows(db_dsn, "SELECT count(*) FROM servicetitan.st_customer_contacts WHERE st_id = %s", (lost,)) == [(1,)]
