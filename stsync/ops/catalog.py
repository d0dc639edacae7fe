"""`stsync streams list`: every declared stream, whether it is enabled, what the mirror holds of it, and when it
last synced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from stsync.db.connect import connect_sync, error_for
from stsync.ops.gaps import scope
from stsync.ops.health import Q
from stsync.sync.streams import STREAMS, FeedKind


@dataclass(frozen=True)
class CatalogSettings:
    dsn: str
    excluded: frozenset[str]
    connect_timeout: float = 10


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def streams(settings: CatalogSettings) -> list[dict[str, Any]]:
    """One row per stream: name, module, feed, path, enabled, rows (all, and live: active and not deleted), and
    its last success and last finished run."""
    try:
        with connect_sync(settings.dsn, settings.connect_timeout) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(Q["health_streams"], {"streams": [s.name for s in STREAMS]})
            runs = {r["stream"]: r for r in cur.fetchall()}
            found = []
            for stream in STREAMS:
                statement = sql.SQL(Q["stream_rows"]).format(  # type: ignore[arg-type]
                    table=sql.Identifier(stream.table), scope=scope(stream, visible=False)
                )
                counts = cur.execute(statement).fetchone() or {"rows": 0, "live": 0}
                run = runs.get(stream.name, {})
                found.append(
                    {
                        "stream": stream.name,
                        "module": stream.module,
                        "feed": stream.feed.value,
                        "path": stream.export_path if stream.feed is FeedKind.EXPORT else stream.list_path,
                        "enabled": stream.name not in settings.excluded,
                        "rows": counts["rows"],
                        "live": counts["live"],
                        "last_success": _iso(run.get("last_success")),
                        "last_status": run.get("last_status"),
                    }
                )
            return found
    except psycopg.Error as exc:
        raise error_for(exc, "reading the mirror's streams") from None
