"""`stsync gap-analysis` against the sandbox: a mirror with rows lost, rows ServiceTitan lacks, and orphans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import cli_env, run_cli
from tests.ops.damage import EXTRA_IDS, NOWHERE, one, synced_and_damaged


def _report(proc: Any) -> dict[str, Any]:
    try:
        return dict(json.loads(proc.stdout))
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON report (exit {proc.returncode}): {proc.stderr[-2000:]}") from None


def _by_stream(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stream"]: s for s in doc["streams"]}


def test_a_fresh_mirror_has_no_gaps(sandbox: Any, db_dsn: str) -> None:
    env = cli_env(sandbox.url, db_dsn)
    assert run_cli(["sync", "full"], env).returncode == 0
    proc = run_cli(["gap-analysis", "--json"], env)
    doc = _report(proc)
    assert proc.returncode == 0, proc.stdout
    streams = _by_stream(doc)
    assert streams["invoice_items"]["status"] == "unchecked"  # no list endpoint of its own
    checked = [s for s in doc["streams"] if s["status"] != "unchecked"]
    assert checked and all(s["status"] == "ok" and s["difference"] == 0 for s in checked), checked
    assert doc["orphans"] == [] and doc["requests"] == len(checked)  # one counting request per stream
    text = run_cli(["gap-analysis"], env)
    assert text.returncode == 0 and text.stdout.splitlines()[-1].startswith("gap-analysis: no gaps"), text.stdout


def test_counts_then_deep_find_the_exact_ids_and_mark_the_extra_deleted(
    sandbox: Any, db_dsn: str, tmp_path: Path
) -> None:
    env, want = synced_and_damaged(sandbox.url, db_dsn)

    counts = run_cli(["gap-analysis", "--json", "--streams", "jobs,appointments,appointment_assignments"], env)
    doc = _report(counts)
    assert counts.returncode == 1
    streams = _by_stream(doc)
    assert streams["jobs"]["difference"] == 3 - 2 and streams["jobs"]["status"] == "gap"
    assert streams["appointments"]["difference"] == 1
    assert streams["appointment_assignments"]["status"] == "ok"
    assert "missing" not in streams["jobs"]  # counts only

    out = tmp_path / "gaps.json"
    deep = run_cli(["gap-analysis", "--deep", "--json", "--out", str(out), "--streams", "jobs,appointments"], env)
    doc = _report(deep)
    assert deep.returncode == 1
    assert json.loads(out.read_text()) == doc
    streams = _by_stream(doc)
    assert streams["jobs"]["missing"] == want["lost_jobs"]
    assert streams["jobs"]["extra"] == EXTRA_IDS
    assert streams["appointments"]["missing"] == [want["appointment"]] and streams["appointments"]["extra"] == []
    assert streams["jobs"]["requests"] > 2  # it bisected: more than one count and one page
    assert doc["marked_deleted"] == 2
    # Orphans of the compared streams only (the assignments' come below).
    assert [(o["kind"], o["id"], o["parent_id"]) for o in doc["orphans"]] == [
        ("job without its location", want["stray_job"], NOWHERE)
    ]
    with psycopg.connect(db_dsn) as conn:
        marked = conn.execute(
            "SELECT st_id, active FROM servicetitan.st_jobs WHERE deleted_at IS NOT NULL ORDER BY st_id"
        ).fetchall()
    assert marked == [(i, False) for i in EXTRA_IDS]  # inactive too: the push and events leave them alone

    again = _report(run_cli(["gap-analysis", "--deep", "--json"], env))
    streams = _by_stream(again)
    assert streams["jobs"]["difference"] == 3 and streams["jobs"]["extra"] == []  # the marked ones no longer count
    assert again["marked_deleted"] == 0
    assignments = [(o["id"], o["parent_id"]) for o in again["orphans"] if o["stream"] == "appointment_assignments"]
    assert assignments == [(i, want["appointment"]) for i in want["orphaned"]]
    text = run_cli(["gap-analysis", "--streams", "jobs"], env)
    assert text.returncode == 1
    assert "jobs" in text.stdout and text.stdout.splitlines()[-1].startswith("gap-analysis: gaps found")


def test_the_mark_and_creation_dates_are_compared_in_whole_seconds(sandbox: Any, db_dsn: str) -> None:
    """The high-water mark is stored to the microsecond, rounded, where ServiceTitan has seven digits; and a job
    whose mirror row says it was created at another time is still served by ServiceTitan: never marked deleted."""
    env = cli_env(sandbox.url, db_dsn, STSYNC_SERVICETITAN__PAGE_SIZE="50")
    assert run_cli(["sync", "full"], env).returncode == 0
    active = "SELECT st_id, st_created_on FROM servicetitan.st_jobs WHERE active"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # As the mark, a createdOn that PostgreSQL rounded up: ServiceTitan (createdBefore, exclusive) would count
        # that job, and a mirror comparing st_created_on < mark would not.
        mark = one(conn, f"{active} AND substr(full_data ->> 'createdOn', 27, 1) >= '5' ORDER BY 2 DESC LIMIT 1", 1)
        conn.execute("UPDATE servicetitan.sync_state SET value = %s WHERE key = 'jobs.high_water'", (mark.isoformat(),))
        moved = one(conn, f"{active} AND st_created_on < %s ORDER BY 2 DESC OFFSET 5 LIMIT 1", 0, (mark,))
        lost = one(conn, f"{active} ORDER BY 2 OFFSET 100 LIMIT 1", 0)
        conn.execute("DELETE FROM servicetitan.st_jobs WHERE st_id = %s", (lost,))
        conn.execute(  # the moved job's row now says it was created before any other
            "UPDATE servicetitan.st_jobs SET st_created_on = '2024-01-01T00:00:00Z',"
            ' full_data = full_data || \'{"createdOn": "2024-01-01T00:00:00Z"}\' WHERE st_id = %s',
            (moved,),
        )
    doc = _report(run_cli(["gap-analysis", "--deep", "--json", "--streams", "jobs"], env))
    jobs = _by_stream(doc)["jobs"]
    assert jobs["difference"] == 1  # the lost job only
    assert jobs["extra"] == [] and doc["marked_deleted"] == 0  # asked for by id, the moved job is served
    assert jobs["missing"] == sorted([lost, moved])  # the moved one is not where ServiceTitan says: backfill mends it
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM servicetitan.st_jobs WHERE deleted_at IS NOT NULL").fetchone() == (0,)


def test_bad_input_is_one_line_before_anything_runs(sandbox: Any, db_dsn: str, tmp_path: Path) -> None:
    env = cli_env(sandbox.url, db_dsn)
    proc = run_cli(["gap-analysis", "--deep", "--out", str(tmp_path / "no-such-dir" / "gaps.json")], env)
    assert proc.returncode == 2 and "no directory" in proc.stderr and "to write the report in" in proc.stderr
    unknown = run_cli(["gap-analysis", "--streams", "jbos"], env)
    assert unknown.returncode == 2 and "unknown stream 'jbos'" in unknown.stderr
    refused = run_cli(["gap-analysis"], {**env, "STSYNC_SERVICETITAN__CLIENT_SECRET": "wrong"})
    assert refused.returncode == 78 and "servicetitan.client_secret" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("created_on", "second"),
    [
        ("2026-03-04T10:11:12.9999996Z", "2026-03-04T10:11:12Z"),  # PostgreSQL stores 10:11:13.000000
        ("2026-03-04T10:11:12.9999994Z", "2026-03-04T10:11:12Z"),
        ("2026-03-04T10:11:13Z", "2026-03-04T10:11:13Z"),
        ("2026-03-04T10:11:12.5", "2026-03-04T10:11:12Z"),  # zone-less: UTC
    ],
)
def test_created_second_is_the_second_servicetitan_filters_by(db_dsn: str, created_on: str, second: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        got = one(
            conn,
            "SELECT to_timestamp(servicetitan.created_second(jsonb_build_object('createdOn', %(c)s::text),"
            " %(c)s::timestamptz))",
            params={"c": created_on},
        )
    assert got.isoformat().replace("+00:00", "Z") == second
