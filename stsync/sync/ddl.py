"""A stream's table, written from its declaration (``stsync.sync.streams``): the SQL of the migration that adds
a stream, generated once and committed, so that migrations stay plain SQL and reviewable.

    .venv/bin/python -m stsync.sync.ddl STREAM… > sql/NNNN_<what>.sql

Every table has the declared typed columns, then the standard ones every merge writes (``active``,
``st_created_on``, ``st_modified_on``, ``full_data``, ``first_synced_at``, ``last_synced_at``, ``deleted_at``), its
key (``key_constants`` then ``st_id``), and indexes on ``st_modified_on`` and on every typed ``*_id`` column (what
joins look rows up by). ``full_data`` is compressed with lz4 where the server has it, as migration 0005 made every
table so far. A test checks that this writes the columns, keys and compression the hand-written migrations made.
Their indexes differ: those were picked per table, and later ones serve particular readers (``last_synced_at``
for the GHL push); a migration that makes a reader of a new stream adds the indexes that reader needs.
"""

from __future__ import annotations

import sys

from stsync.sync.streams import STREAMS_BY_NAME, ChildTable, ColType, Column, Stream

STANDARD = (
    "active boolean NOT NULL DEFAULT true",
    "st_created_on timestamptz",
    "st_modified_on timestamptz",
    "full_data jsonb NOT NULL",
    "first_synced_at timestamptz NOT NULL DEFAULT now()",
    "last_synced_at timestamptz NOT NULL DEFAULT now()",
    "deleted_at timestamptz",
)


def _indexed(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns if c.type is ColType.BIGINT and c.name.endswith("_id")]


def _table(
    schema: str, table: str, leading: list[str], columns: tuple[Column, ...], key: list[str], looked_up: list[str]
) -> str:
    lines = [*leading, *(f"{c.name} {c.type.value}" for c in columns), *STANDARD, f"PRIMARY KEY ({', '.join(key)})"]
    body = ",\n".join(f"    {line}" for line in lines)
    indexes = [*looked_up, *_indexed(columns), "st_modified_on"]
    return "\n".join(
        [
            f"CREATE TABLE {schema}.{table} (\n{body}\n);",
            *(f"CREATE INDEX ON {schema}.{table} ({column});" for column in indexes),
            f"SELECT servicetitan.compress_jsonb('{schema}', '{table}');",
        ]
    )


def create_table(stream: Stream, schema: str = "servicetitan") -> str:
    """The stream's table, and each of its child tables."""
    leading = [f"{name} text NOT NULL" for name in stream.key_constants] + ["st_id bigint NOT NULL"]
    parts = [_table(schema, stream.table, leading, stream.columns, [*stream.key_constants, "st_id"], [])]
    parts += [_child(schema, child) for child in stream.children]
    return "\n\n".join(parts)


def _child(schema: str, child: ChildTable) -> str:
    leading = ["st_id bigint NOT NULL", f"{child.parent_column} bigint NOT NULL"]
    return _table(schema, child.table, leading, child.columns, ["st_id"], [child.parent_column])


def migration(streams: list[Stream]) -> str:
    names = ", ".join(s.name for s in streams)
    return f"-- The mirror tables of {names}, written by stsync.sync.ddl from their declarations.\n\n" + "\n\n".join(
        create_table(s) for s in streams
    )


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in STREAMS_BY_NAME]
    if not argv or unknown:
        sys.stderr.write(f"usage: python -m stsync.sync.ddl STREAM…  (unknown: {', '.join(unknown)})\n")
        return 2
    sys.stdout.write(migration([STREAMS_BY_NAME[name] for name in argv]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
