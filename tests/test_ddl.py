"""stsync.sync.ddl writes, from the declarations, the tables the migrations made (columns, types, defaults, keys and
compression; not their hand-picked indexes): adding a stream is its declaration and the migration this generates."""

from __future__ import annotations

from typing import Any

from stsync.sync.ddl import create_table, main
from stsync.sync.streams import STREAMS

COLUMNS = (
    "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
    " WHERE table_schema = %s AND table_name = %s"
)
KEY = (
    "SELECT array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum)) FROM pg_index i"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND i.indisprimary"
)
COMPRESSION = (
    "SELECT a.attcompression FROM pg_attribute a WHERE a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
    " AND a.attname = 'full_data'"
)


def _shape(conn: Any, schema: str, table: str) -> tuple[set[tuple[Any, ...]], Any, Any]:
    columns = set(conn.execute(COLUMNS, (schema, table)).fetchall())
    return columns, conn.execute(KEY, (schema, table)).fetchone(), conn.execute(COMPRESSION, (schema, table)).fetchone()


def test_generated_tables_equal_the_migrated_ones(postgresql: Any) -> None:
    postgresql.execute("CREATE SCHEMA gen")
    done: set[str] = set()
    for stream in STREAMS:
        if stream.table in done:  # the custom field types' three streams share one table
            continue
        done.add(stream.table)
        postgresql.execute(create_table(stream, "gen"))
        for table in (stream.table, *(c.table for c in stream.children)):
            assert _shape(postgresql, "gen", table) == _shape(postgresql, "servicetitan", table), table


def test_the_generator_names_unknown_streams(capsys: Any) -> None:
    assert main(["jobs"]) == 0
    assert capsys.readouterr().out.startswith("-- The mirror tables of jobs, written by stsync.sync.ddl")
    assert main(["jbos"]) == 2
    assert "unknown: jbos" in capsys.readouterr().err
