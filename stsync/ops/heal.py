"""The bounded repairs of `stsync health --heal` that are plain statements: release the workflow leases a dead
poll left behind, and requeue GHL dead letters once. Neither deletes anything; each says what it changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from stsync.db.connect import connect_sync, error_for
from stsync.ops.health import Q


@dataclass(frozen=True)
class HealSettings:
    dsn: str
    location_id: str | None  # the push's location; None: GHL is not configured, no dead letters to requeue
    dead_letters_after: timedelta
    connect_timeout: float = 10


def _rows(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(Q[name], params)
            return list(cur.fetchall())
    except psycopg.Error as exc:
        raise error_for(exc, f"healing ({name.removeprefix('heal_').replace('_', ' ')})") from None


def repair(settings: HealSettings, now: datetime) -> list[str]:
    """Release expired workflow leases and requeue old GHL dead letters; one line per repair made."""
    done: list[str] = []
    with connect_sync(settings.dsn, settings.connect_timeout) as conn:
        released = _rows(conn, "heal_release_leases", {"now": now})
        if released:
            lost = int(released[0]["lost"])
            closed = f"; {lost} unfinished attempts closed as 'unknown'" if lost else ""
            done.append(f"healed: released {len(released)} expired workflow step leases{closed}")
        if settings.location_id is not None:
            params = {"now": now, "before": now - settings.dead_letters_after, "location_id": settings.location_id}
            counts = {k: int(v) for k, v in _rows(conn, "heal_dead_letters", params)[0].items()}
            if any(counts.values()):
                what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
                done.append(f"healed: requeued GHL dead letters once ({what}); the next `stsync ghl push` retries them")
    return done
