"""Planner statistics after bulk writes.

A table that has just been loaded has no statistics until autovacuum comes by (a minute later at best,
much later on a busy server), and until then the planner guesses: it picks nested loops over hundreds of
thousands of rows and turns a 2-second read into minutes. So whatever writes many rows analyzes the tables
it changed before it ends, by the rule autovacuum itself uses, with a larger floor: a table is analyzed
when it has never been, or when the rows changed since its last ANALYZE reach ``ANALYZE_MIN_ROWS`` plus
``ANALYZE_FRACTION`` of its size. The check is one catalog query; below the threshold nothing else runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from stsync.db.connect import error_for
from stsync.sqlfile import load

Q = load("db")
ANALYZE_MIN_ROWS = 1000
ANALYZE_FRACTION = 0.1

log = logging.getLogger("stsync.db")


def needs_analyze(reltuples: float, changed: int) -> bool:
    """Whether a table the planner believes has ``reltuples`` rows (-1: never analyzed) is due, ``changed``
    rows after its last ANALYZE."""
    if changed <= 0:
        return False
    if reltuples < 0:
        return True
    return changed >= ANALYZE_MIN_ROWS + ANALYZE_FRACTION * reltuples


async def analyze_changed(conn: psycopg.AsyncConnection[Any], changed: Mapping[str, int]) -> list[str]:
    """ANALYZE each of the tables (schema-qualified names) that is due, given the rows the caller changed in
    it; returns the tables analyzed. The larger of the caller's count and the server's own is used: the
    server hears of other connections' writes only once they report (at the latest when they close), and it
    also counts earlier runs' changes that no ANALYZE has seen yet."""
    if not changed:
        return []
    analyzed = []
    try:
        cur = await conn.execute(Q["table_statistics"], {"tables": list(changed)})
        rows = await cur.fetchall()
        for table, reltuples, seen, may_analyze in rows:
            if not needs_analyze(reltuples, max(int(seen), changed.get(table, 0))):
                continue
            if not may_analyze:
                log.warning(
                    "planner statistics of %s not refreshed: this database role does not own it "
                    "(ANALYZE it as its owner, or run stsync as the role that owns the mirror)",
                    table,
                )
                continue
            started = time.monotonic()
            schema, _, name = table.partition(".")
            await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
            log.info("analyzed %s in %d ms", table, (time.monotonic() - started) * 1000)
            analyzed.append(table)
    except psycopg.Error as exc:
        raise error_for(exc, "analyzing the changed tables") from None
    return analyzed
