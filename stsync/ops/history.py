"""`stsync logs` and `stsync stats`: the sync log and the GHL push log, read for an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from stsync.db.connect import connect_sync, error_for
from stsync.ops.health import Q


@dataclass(frozen=True)
class HistorySettings:
    dsn: str
    connect_timeout: float = 10


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}


def _rows(settings: HistorySettings, queries: list[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    try:
        with connect_sync(settings.dsn, settings.connect_timeout) as conn, conn.cursor(row_factory=dict_row) as cur:
            found = []
            for name, params in queries:
                cur.execute(Q[name], params)
                found.append([_json(r) for r in cur.fetchall()])
            return found
    except psycopg.Error as exc:
        raise error_for(exc, "reading the sync and push logs") from None


def logs(
    settings: HistorySettings,
    stream: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Sync runs per stream and GHL pushes, newest first (naming a stream leaves the pushes out)."""
    params = {"stream": stream, "status": status, "since": since, "limit": limit, "sync": True, "push": stream is None}
    return _rows(settings, [("logs", params)])[0]


def stats(settings: HistorySettings, since: datetime) -> dict[str, list[dict[str, Any]]]:
    """Per day (UTC): each stream's runs and records, and each GHL location's pushes."""
    sync, push = _rows(settings, [("stats_sync", {"since": since}), ("stats_push", {"since": since})])
    return {"since": since.isoformat(), "streams": sync, "ghl": push}  # type: ignore[dict-item]
