"""The floor: how long PostgreSQL takes to COPY the sandbox world's export records into stsync's mirror tables
with nothing else going on. Prints figures, not pass/fail.

    .venv/bin/python bench/floor_bench.py [--scale medium|large]

The whole world is taken from the sandbox's ground truth (`sb.world.dump()`, the records exactly as the
export feeds serve them) and turned, before any timing starts, into per-table COPY text in memory: st_id,
the typed columns as stsync fills them (same JSON paths, NULL for absent or empty-money values), active,
st_created_on, st_modified_on and full_data — for every export stream's table plus the estimate items
stsync takes out of estimates. Then, on one connection to a fresh migrated database each:

- copy:  COPY straight into the mirror tables, one transaction, one commit;
- merge: per table, COPY into a temporary staging table and `INSERT … SELECT … ON CONFLICT (st_id) DO UPDATE
  … WHERE full_data IS DISTINCT FROM …` into the mirror table (stsync's merge without the JSON
  expansion and type checks), one transaction, one commit.

Only the database work is timed (from the first statement to the end of the commit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EXPORT_STREAMS, git_commit, print_table, start_sandbox

from stsync.db.migrations import migrate
from stsync.sandbox.postgres import EmbeddedPostgres
from stsync.sync.streams import ColType, Column

_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
CHUNK = 8 << 20


def _text(value: Any, type_: ColType) -> str:
    """A JSON value as COPY text, the way `record #>> path` and stsync's casts turn it into the column."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode().translate(_ESC)
    text = str(value)
    if type_ is ColType.NUMERIC and not text.strip():
        return NULL
    return text.translate(_ESC)


def _get(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = record
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


_CREATED = ("createdOn",)
_MODIFIED = ("modifiedOn",)


def _row(st_id: int, extra: list[str], columns: tuple[Column, ...], rec: dict[str, Any], active: bool) -> str:
    cells = [str(st_id), *extra]
    cells += [_text(_get(rec, c.path), c.type) for c in columns]
    cells += [
        "true" if active else "false",
        _text(rec.get("createdOn"), ColType.TIMESTAMPTZ),
        _text(rec.get("modifiedOn"), ColType.TIMESTAMPTZ),
        orjson.dumps(rec).decode().translate(_ESC),
    ]
    return "\t".join(cells) + "\n"


def _active(rec: dict[str, Any], default: bool = True) -> bool:
    value = rec.get("active")
    return default if value is None else bool(value)


def prepare(world: dict[str, dict[Any, dict[str, Any]]]) -> tuple[list[tuple[str, list[str], bytes, int]], int]:
    """[(table, column names, COPY text, rows)] for every export stream's table (and estimate items), and the
    number of export records."""
    out: list[tuple[str, list[str], bytes, int]] = []
    records = 0
    for stream in EXPORT_STREAMS:
        recs = world.get(stream.name, {})
        records += len(recs)
        names = ["st_id", *(c.name for c in stream.columns), "active", "st_created_on", "st_modified_on", "full_data"]
        body = "".join(_row(int(r["id"]), [], stream.columns, r, _active(r)) for r in recs.values())
        out.append((stream.table, names, body.encode(), len(recs)))
        for child in stream.children:
            rows: dict[int, str] = {}
            for parent in recs.values():
                for item in parent.get(child.array_key) or []:
                    rows[int(item["id"])] = _row(
                        int(item["id"]),
                        [str(int(parent["id"]))],
                        child.columns,
                        item,
                        _active(item, _active(parent)),
                    )
            names = [
                "st_id",
                child.parent_column,
                *(c.name for c in child.columns),
                "active",
                "st_created_on",
                "st_modified_on",
                "full_data",
            ]
            out.append((child.table, names, "".join(rows.values()).encode(), len(rows)))
    return out, records


def _copy(cur: psycopg.Cursor[Any], target: sql.Composable, names: list[str], data: bytes) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, names)))
    with cur.copy(stmt) as cp:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            cp.write(view[start : start + CHUNK])


def run_copy(dsn: str, tables: list[tuple[str, list[str], bytes, int]]) -> float:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        started = time.monotonic()
        for table, names, data, _n in tables:
            _copy(cur, sql.Identifier("servicetitan", table), names, data)
        conn.commit()
        return time.monotonic() - started


def run_merge(dsn: str, tables: list[tuple[str, list[str], bytes, int]]) -> float:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        started = time.monotonic()
        for table, names, data, _n in tables:
            stage = sql.Identifier(f"stage_{table}")
            cur.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE servicetitan.{} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                    stage, sql.Identifier(table)
                )
            )
            _copy(cur, stage, names, data)
            cols = sql.SQL(", ").join(map(sql.Identifier, names))
            updates = sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in names if n != "st_id"
            )
            cur.execute(
                sql.SQL(
                    "INSERT INTO servicetitan.{} AS t ({}) SELECT {} FROM {} "
                    "ON CONFLICT (st_id) DO UPDATE SET {}, last_synced_at = now() "
                    "WHERE t.full_data IS DISTINCT FROM EXCLUDED.full_data"
                ).format(sql.Identifier(table), cols, cols, stage, updates)
            )
        conn.commit()
        return time.monotonic() - started


def count(dsn: str, tables: list[str]) -> int:
    with psycopg.connect(dsn) as conn:
        return sum(
            conn.execute(sql.SQL("SELECT count(*) FROM servicetitan.{}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
            for t in tables
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=["small", "medium", "large"])
    args = parser.parse_args()
    with EmbeddedPostgres() as pg:
        with start_sandbox(args.scale) as sb:
            world = sb.world.dump()
        started = time.monotonic()
        tables, records = prepare(world)
        del world
        print(f"prepared COPY data in {time.monotonic() - started:.1f} s (not timed)", file=sys.stderr, flush=True)
        rows = sum(t[3] for t in tables)
        mb = sum(len(t[2]) for t in tables) / 1e6
        results = {}
        for variant, fn in (("copy", run_copy), ("merge", run_merge)):
            dsn = pg.create_database(f"floor_{variant}")
            migrate(dsn)
            results[variant] = fn(dsn, tables)
            loaded = count(dsn, [t[0] for t in tables])
            if loaded != rows:
                raise SystemExit(f"{variant}: {loaded} rows in the tables, expected {rows}")
    print(f"\nscale {args.scale}, commit {git_commit()}, {os.cpu_count()} CPUs")
    print_table(
        ["metric", "value"],
        [
            ["records (export feeds)", f"{records:,}"],
            ["rows written (incl. estimate items)", f"{rows:,}"],
            ["COPY text", f"{mb:,.0f} MB"],
            ["copy: seconds", f"{results['copy']:.2f}"],
            ["copy: records/s", f"{records / results['copy']:,.0f}"],
            ["stage + merge: seconds", f"{results['merge']:.2f}"],
            ["stage + merge: records/s", f"{records / results['merge']:,.0f}"],
        ],
    )


if __name__ == "__main__":
    main()
