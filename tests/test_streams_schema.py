"""The declarative stream list and the SQL migrations describe the same tables."""

from __future__ import annotations

from typing import Any

from stsync.sync.streams import STREAMS


def _columns(conn: Any, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'servicetitan' AND table_name = %s",
        (table,),
    ).fetchall()
    return dict(rows)


ALIASES = {"timestamp with time zone": "timestamptz"}


def test_every_declared_column_exists_with_its_type(postgresql: Any) -> None:
    """A column declared in streams.py but missing or differently typed in sql/ fails here."""
    for stream in STREAMS:
        tables = [(stream.table, stream.columns)] + [(c.table, c.columns) for c in stream.children]
        for table, columns in tables:
            actual = _columns(postgresql, table)
            assert actual, f"table servicetitan.{table} is missing"
            for standard in (
                "st_id",
                "full_data",
                "active",
                "st_created_on",
                "st_modified_on",
                "first_synced_at",
                "last_synced_at",
            ):
                assert standard in actual, f"{table}.{standard} is missing"
            for column in columns:
                assert column.name in actual, f"{table}.{column.name} is missing"
                assert ALIASES.get(actual[column.name], actual[column.name]) == column.type.value, (
                    f"{table}.{column.name} is {actual[column.name]}, declared {column.type.value}"
                )


def test_jsonb_columns_are_compressed_with_lz4(postgresql: Any) -> None:
    """Records over about 2 kB are compressed as they are written; pglz made that a tenth of a large full
    sync's database time (sql/0005_jsonb_lz4.sql)."""
    rows = postgresql.execute(
        "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'servicetitan' AND c.relkind = 'r' AND a.attname IN ('full_data', 'payload') "
        "AND NOT a.attisdropped"
    ).fetchall()
    tables = {s.table for s in STREAMS} | {c.table for s in STREAMS for c in s.children}
    assert tables <= {r[0] for r in rows}
    assert [r for r in rows if r[2] != "l"] == []
    postgresql.execute(
        "INSERT INTO servicetitan.st_customers (st_id, full_data) VALUES (1, %s::jsonb)",
        ['{"notes": "' + "lz4 " * 2000 + '"}'],
    )
    value = postgresql.execute("SELECT pg_column_compression(full_data) FROM servicetitan.st_customers").fetchone()
    assert value == ("lz4",)


def test_each_feeds_volume_is_the_sandbox_worlds_ratio() -> None:
    """``Stream.volume`` (records per ten customers, the rate limiter's priority) says it keeps the sandbox's
    ratios, which model a typical tenant: the two lists must not drift apart."""
    from stsync.sandbox.world import RATIOS

    volumes = {s.name: s.volume for s in STREAMS if s.volume}
    assert volumes == {name: round(ratio * 10) for name, ratio in RATIOS.items()}
