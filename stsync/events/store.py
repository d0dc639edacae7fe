"""The events side's repository: the only events code that talks psycopg. Driver errors become stsync errors.

Each unit of work is one transaction (``transaction``): a claim, a batch of verdicts, one step's end. A poll
killed anywhere loses at most the unit in flight, and that unit's claims run out and are taken again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stsync.db.connect import connect, error_for
from stsync.events.conditions import STANDARD_FIELDS
from stsync.sqlfile import load
from stsync.sync.streams import STREAMS_BY_NAME

Q = load("events")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class EventStore:
    """One connection, used one statement at a time (the poll does one thing at a time)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def transaction(self, what: str) -> AsyncIterator[None]:
        try:
            async with self.conn.transaction():
                yield
        except psycopg.Error as exc:
            raise error_for(exc, what) from None

    async def rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one named query (inside the caller's ``transaction``, or on its own) and return its rows."""
        params = {k: _dumps(v) if isinstance(v, list) and name in _JSON_ROWS and k == "rows" else v
                  for k, v in (params or {}).items()}  # fmt: skip
        try:
            async with self.conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(Q[name], params)
                return list(await cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise error_for(exc, f"running {name}") from None

    async def count(self, name: str, params: dict[str, Any] | None = None) -> int:
        """Run one named statement; the rows it wrote."""
        try:
            cur = await self.conn.execute(Q[name], params or {})
        except psycopg.Error as exc:
            raise error_for(exc, f"running {name}") from None
        return max(cur.rowcount, 0)

    async def one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        found = await self.rows(name, params)
        return found[0] if found else None

    async def records_of(self, rows: Iterable[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
        """The mirror's records that ``rows`` (events or instances: ``entity`` and ``st_id``) are about, by
        (entity, st_id): one query per entity. An entity this version does not mirror has none."""
        by_entity: dict[str, set[int]] = {}
        for r in rows:
            by_entity.setdefault(r["entity"], set()).add(int(r["st_id"]))
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for entity, ids in by_entity.items():
            if entity in STREAMS_BY_NAME:
                for st_id, row in (await self.entities(entity, ids)).items():
                    out[(entity, st_id)] = row
        return out

    async def entities(self, entity: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The mirror's rows of ``entity`` (a stream name) by ServiceTitan id, as conditions see them: the
        typed columns, plus id, active, created_on and modified_on."""
        stream = STREAMS_BY_NAME[entity]
        names = [c.name for c in stream.columns]
        query = sql.SQL(
            "SELECT st_id AS id, active, st_created_on AS created_on, st_modified_on AS modified_on, {} "
            "FROM servicetitan.{} WHERE st_id = ANY(%(ids)s)"
        ).format(sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(stream.table))
        try:
            async with self.conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, {"ids": list(ids)})
                return {int(r["id"]): dict(r) for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise error_for(exc, f"reading {stream.table}") from None


# Queries whose %(rows)s is a list of records passed as one JSON array (jsonb_to_recordset).
_JSON_ROWS = frozenset({"enroll", "instances_of", "record_verdicts", "add_steps"})

assert set(STANDARD_FIELDS) == {"id", "active", "created_on", "modified_on"}  # what ``entities`` selects


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=_dumps)


@contextlib.asynccontextmanager
async def open_events(dsn: str, connect_timeout: float = 10) -> AsyncIterator[EventStore]:
    conn = await connect(dsn, connect_timeout, autocommit=True)
    try:
        yield EventStore(conn)
    finally:
        await conn.close()
