"""A mirror damaged on purpose, for gap-analysis and backfill: rows lost, rows ServiceTitan never had, orphans."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.e2e.harness import cli_env, run_cli

EXTRA_IDS = [9_100_000_001, 9_100_000_002]
NOWHERE = 987_654_321  # a location ServiceTitan never had


def one(conn: psycopg.Connection[Any], query: str, column: int = 0, params: Any = None) -> Any:
    """One column of the query's first row (which must exist)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[column]


# Every checkpoint but a backfill's own: what a backfill must leave as it was.
CURSORS = "SELECT key, value FROM servicetitan.sync_state WHERE key NOT LIKE '%.backfill' ORDER BY key"


def add_unknown_jobs(conn: psycopg.Connection[Any], ids: list[int], copy_of: int) -> None:
    """Jobs ServiceTitan never had: copies of the active job at offset ``copy_of``, under ``ids``."""
    for extra in ids:
        conn.execute(
            "INSERT INTO servicetitan.st_jobs (st_id, active, customer_id, location_id, st_created_on,"
            " st_modified_on, full_data) SELECT %(id)s, true, customer_id, location_id, st_created_on,"
            " st_modified_on, full_data || jsonb_build_object('id', %(id)s::bigint) FROM servicetitan.st_jobs"
            " WHERE active ORDER BY st_id LIMIT 1 OFFSET %(offset)s",
            {"id": extra, "offset": copy_of},
        )


def damage(dsn: str) -> dict[str, Any]:
    """Lose three active jobs and one appointment, add two jobs ServiceTitan never had, and point one job at a
    location that does not exist. Returns what gap-analysis should find."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        lost = [
            r[0] for r in conn.execute("SELECT st_id FROM servicetitan.st_jobs WHERE active ORDER BY st_id LIMIT 3")
        ]
        conn.execute("DELETE FROM servicetitan.st_jobs WHERE st_id = ANY(%s)", (lost,))
        appointment = one(
            conn,
            "SELECT a.st_id FROM servicetitan.st_appointments a WHERE EXISTS (SELECT 1 FROM"
            " servicetitan.st_appointment_assignments x WHERE x.appointment_id = a.st_id) ORDER BY a.st_id LIMIT 1",
        )
        conn.execute("DELETE FROM servicetitan.st_appointments WHERE st_id = %s", (appointment,))
        add_unknown_jobs(conn, EXTRA_IDS, copy_of=10)
        stray = one(
            conn,
            "UPDATE servicetitan.st_jobs SET location_id = %s WHERE st_id = (SELECT min(st_id) FROM"
            " servicetitan.st_jobs WHERE active) RETURNING st_id",
            params=(NOWHERE,),
        )
        orphaned = [
            r[0]
            for r in conn.execute(
                "SELECT st_id FROM servicetitan.st_appointment_assignments WHERE appointment_id = %s ORDER BY st_id",
                (appointment,),
            )
        ]
    return {"lost_jobs": sorted(lost), "appointment": appointment, "stray_job": stray, "orphaned": orphaned}


def synced_and_damaged(sandbox_url: str, dsn: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A full sync in pages of 50 (the small world's 200 jobs are bisected before their ids are compared), then
    ``damage``: the CLI's environment and what gap-analysis should find."""
    env = cli_env(sandbox_url, dsn, STSYNC_SERVICETITAN__PAGE_SIZE="50")
    assert run_cli(["sync", "full"], env).returncode == 0
    return env, damage(dsn)
