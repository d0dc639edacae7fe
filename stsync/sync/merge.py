"""Compose each stream's page-merge statement from its declaration (``streams.py``).

A page arrives as one raw JSON body, bulk-loaded with binary COPY into ``stsync_stage`` as a single
jsonb value. One statement then expands ``body->'data'``, checks every typed field of every record,
sends records that fail to quarantine, keeps the last occurrence of each id (export feeds repeat
rows), and merges the rest with ``INSERT … ON CONFLICT … DO UPDATE … WHERE`` the record changed.
It returns its own counts, so created/updated/unchanged come from the statement, not from lookups.

Only identifiers and constants from the declarations are composed here (``sql.Identifier`` /
``sql.Literal``); no record data is ever formatted into SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from stsync.sync.streams import ChildTable, ColType, Column, EventRule, Fires, Stream

_INT_RE = r"^-?[0-9]{1,18}$"
_INT4_RE = r"^-?[0-9]{1,9}$"
_NUM_RE = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
_TS_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)


# What PostgreSQL's boolean input accepts: a record the casts would take is never quarantined.
_BOOL_WORDS = ("t", "true", "f", "false", "y", "yes", "n", "no", "on", "off", "1", "0")


def _path(col_path: tuple[str, ...]) -> sql.Composable:
    return sql.Literal("{" + ",".join(col_path) + "}")


def _value(alias: str, column: Column) -> sql.Composable:
    """Expression taking one typed column out of record ``alias``."""
    text = sql.SQL("({} #>> {})").format(sql.Identifier(alias), _path(column.path))
    if column.type is ColType.TEXT:
        return text
    if column.type is ColType.NUMERIC:
        return sql.SQL("NULLIF(btrim({}), '')::numeric").format(text)
    return sql.SQL("{}::{}").format(text, sql.SQL(column.type.value))


def _bad(alias: str, column: Column) -> sql.Composable:
    """Condition that is true when the record's field cannot become the column's type."""
    node = sql.SQL("({} #> {})").format(sql.Identifier(alias), _path(column.path))
    text = sql.SQL("({} #>> {})").format(sql.Identifier(alias), _path(column.path))
    kind = sql.SQL("jsonb_typeof({})").format(node)
    present = sql.SQL("{} IS NOT NULL AND {} <> 'null'").format(node, kind)
    ok: sql.Composable
    match column.type:
        case ColType.TEXT:
            return sql.SQL("false")
        case ColType.BIGINT:
            ok = sql.SQL("{} IN ('number', 'string') AND {} ~ {}").format(kind, text, sql.Literal(_INT_RE))
        case ColType.INTEGER:
            ok = sql.SQL("{} IN ('number', 'string') AND {} ~ {}").format(kind, text, sql.Literal(_INT4_RE))
        case ColType.NUMERIC:
            ok = sql.SQL("{} = 'number' OR ({} = 'string' AND (btrim({}) = '' OR {} ~ {}))").format(
                kind, kind, text, text, sql.Literal(_NUM_RE)
            )
        case ColType.TIMESTAMPTZ:
            ok = sql.SQL("{} = 'string' AND {} ~ {}").format(kind, text, sql.Literal(_TS_RE))
        case ColType.BOOLEAN:
            ok = sql.SQL("{} = 'boolean' OR ({} IN ('string', 'number') AND lower(btrim({})) = ANY({}))").format(
                kind, kind, text, sql.Literal(list(_BOOL_WORDS))
            )
    return sql.SQL("({} AND NOT ({}))").format(present, ok)


_STANDARD = (
    Column("active", ("active",), ColType.BOOLEAN),
    Column("st_created_on", ("createdOn",), ColType.TIMESTAMPTZ),
    Column("st_modified_on", ("modifiedOn",), ColType.TIMESTAMPTZ),
)


def _reason(alias: str, columns: tuple[Column, ...], validate: bool = True) -> sql.Composable:
    """CASE expression naming the first field of the record that fails its type, else NULL.

    Without ``validate`` it is a plain NULL: the fast path, which lets a bad value fail the whole
    statement so the caller can run the validating statement instead (a page rarely has one).
    """
    if not validate:
        return sql.SQL("NULL::text")
    ident = sql.Identifier(alias)
    whens = [
        sql.SQL(
            "WHEN jsonb_typeof({} -> 'id') IS DISTINCT FROM 'number' OR NOT (({} ->> 'id') ~ {}) "
            "THEN 'id: missing or not an integer'"
        ).format(ident, ident, sql.Literal(_INT_RE))
    ]
    for column in (*_STANDARD, *columns):
        field = ".".join(column.path)
        whens.append(
            sql.SQL("WHEN {} THEN {} || coalesce(jsonb_typeof({} #> {}), 'missing')").format(
                _bad(alias, column),
                sql.Literal(f"{field}: expected {column.type.value}, got "),
                ident,
                _path(column.path),
            )
        )
    return sql.SQL("CASE {} END").format(sql.SQL(" ").join(whens))


def _upsert(
    table: str,
    key_columns: tuple[str, ...],
    extra: list[tuple[str, sql.Composable]],
    columns: tuple[Column, ...],
    alias: str,
    source: str,
    active: sql.Composable,
    returning: tuple[str, ...] = (),
) -> sql.Composable:
    """INSERT … SELECT … ON CONFLICT DO UPDATE WHERE changed, RETURNING whether each row was new (and the
    ``returning`` columns of the new row)."""
    names = [
        *(name for name, _ in extra),
        *(c.name for c in columns),
        "active",
        "st_created_on",
        "st_modified_on",
        "full_data",
    ]
    values = [
        *(expr for _, expr in extra),
        *(_value(alias, c) for c in columns),
        active,
        _value(alias, _STANDARD[1]),
        _value(alias, _STANDARD[2]),
        sql.Identifier(alias),
    ]
    updates = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in names if n not in key_columns
    ]
    return sql.SQL(
        "INSERT INTO servicetitan.{table} AS t ({names}) SELECT {values} FROM {source} "
        # A record gap-analysis marked deleted that ServiceTitan serves again is back, changed or not.
        "ON CONFLICT ({keys}) DO UPDATE SET {updates}, last_synced_at = now(), deleted_at = NULL "
        "WHERE t.full_data IS DISTINCT FROM EXCLUDED.full_data OR t.deleted_at IS NOT NULL "
        "RETURNING (xmax = 0) AS inserted{returning}"
    ).format(
        returning=sql.SQL("").join(sql.SQL(", t.{}").format(sql.Identifier(n)) for n in returning),
        table=sql.Identifier(table),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=sql.SQL(", ").join(values),
        source=sql.Identifier(source),
        keys=sql.SQL(", ").join(map(sql.Identifier, key_columns)),
        updates=sql.SQL(", ").join(updates),
    )


@dataclass(frozen=True)
class Capture:
    """Write the stream's events (``Stream.events``) with its pages: the settings the statement needs."""

    install_units: tuple[str, ...] = ("install",)  # a business unit whose name contains one (any case)
    install_unit_ids: tuple[int, ...] = ()  # or whose id is one
    overdue_grace_days: int = 0  # invoice_overdue: this many days past the due date


def _like_any(words: tuple[str, ...]) -> list[str]:
    return ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for w in words]


def _fires(stream: Stream, rule: EventRule, capture: Capture) -> tuple[sql.Composable, sql.Composable]:
    """(condition, version) of one rule over the merged row ``m`` and the row before it, ``o`` (a row of
    NULLs for a new record). The version makes the event's key: the record's modifiedOn, or for an overdue
    invoice its due date, so that the poll's own search for overdue invoices finds the same key."""
    # A record without a modifiedOn is told apart by its watched values instead.
    modified = sql.SQL("coalesce(m.st_modified_on::text, md5(jsonb_build_object({})::text))").format(
        _watch(stream, "m")
    )
    match rule.fires:
        case Fires.CREATED:
            condition: sql.Composable = sql.SQL("m.inserted")
            if rule.install_unit:
                condition = sql.SQL(
                    "m.inserted AND EXISTS (SELECT 1 FROM servicetitan.st_business_units b "
                    "WHERE b.st_id = m.business_unit_id "
                    "AND (b.name ILIKE ANY({}::text[]) OR b.st_id = ANY({}::bigint[])))"
                ).format(sql.Literal(_like_any(capture.install_units)), sql.Literal(list(capture.install_unit_ids)))
            return condition, modified
        case Fires.BECOMES:
            column = sql.Identifier(rule.column or "")
            return sql.SQL("m.{c} = {v} AND o.{c} IS DISTINCT FROM {v}").format(
                c=column, v=sql.Literal(rule.value)
            ), modified
        case Fires.OVERDUE:  # as `events poll` finds it (stsync/events/queries.sql, detect_overdue)
            grace = sql.Literal(f"{capture.overdue_grace_days} days")
            return sql.SQL(
                "m.active AND m.balance > 0 AND m.due_date + {g}::interval <= now() "
                "AND NOT coalesce(o.active AND o.balance > 0 AND o.due_date + {g}::interval <= now(), false)"
            ).format(g=grace), sql.SQL("m.due_date::text")


def _events(stream: Stream, capture: Capture) -> sql.Composable:
    """The CTE that writes the page's events. ``o`` reads the table the statement is merging into: every part
    of one statement sees the same snapshot, taken before it, so ``o`` is the record as it was. Only records
    the merge changed are looked up (by primary key): the cost is the changes', whatever the page's size."""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(sql.Literal(rule.name), *_fires(stream, rule, capture)) for rule in stream.events
    )
    return sql.SQL(
        """,
events AS (
    INSERT INTO automation.events (entity, st_id, event_type, version, occurred_at, old_values, new_values)
    SELECT {entity}, m.st_id, r.event_type, r.version, m.st_modified_on,
           CASE WHEN o.st_id IS NOT NULL THEN jsonb_build_object({old}) END, jsonb_build_object({new})
      FROM merged m
      LEFT JOIN servicetitan.{table} o ON o.st_id = m.st_id
     CROSS JOIN LATERAL (VALUES {values}) AS r(event_type, fires, version)
     WHERE r.fires
    ON CONFLICT (entity, st_id, event_type, version) DO NOTHING
    RETURNING 1
)"""
    ).format(
        entity=sql.Literal(stream.name),
        old=_watch(stream, "o"),
        new=_watch(stream, "m"),
        table=sql.Identifier(stream.table),
        values=values,
    )


def _watch(stream: Stream, alias: str) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c)) for c in stream.watch
    )


def page_merge(stream: Stream, validate: bool = True, capture: Capture | None = None) -> sql.Composed:
    """The one statement that merges the staged page of ``stream`` (and, with ``capture``, writes its events).

    Returns one row: (fetched, created, updated, unchanged, quarantined, resolved, max_modified_on, events).
    """
    capturing = capture is not None and bool(stream.events)
    returning = ("st_id", "active", "st_modified_on", *stream.watch) if capturing else ()
    extra: list[tuple[str, sql.Composable]] = [(k, sql.Literal(v)) for k, v in stream.key_constants.items()]
    extra.append(("st_id", sql.SQL("st_id")))
    active = sql.SQL("coalesce((d ->> 'active')::boolean, true)")
    stream_name = sql.Literal(stream.name)
    return sql.SQL(
        """
WITH elems AS MATERIALIZED (
    SELECT e.d, e.ord, {reason} AS reason
      FROM stsync_stage s,
           jsonb_array_elements(CASE jsonb_typeof(s.body -> 'data') WHEN 'array' THEN s.body -> 'data'
                                ELSE '[]'::jsonb END) WITH ORDINALITY AS e(d, ord)
),
good AS (
    SELECT DISTINCT ON ((d ->> 'id')::bigint) (d ->> 'id')::bigint AS st_id, d
      FROM elems WHERE reason IS NULL
     ORDER BY (d ->> 'id')::bigint, ord DESC
),
bad AS (
    SELECT DISTINCT ON (qid, CASE WHEN qid IS NULL THEN ord END) qid, d, reason
      FROM (SELECT CASE WHEN (d ->> 'id') ~ {int_re} THEN (d ->> 'id')::bigint END AS qid, d, ord, reason
              FROM elems WHERE reason IS NOT NULL) b
     ORDER BY qid, CASE WHEN qid IS NULL THEN ord END, ord DESC
),
quarantined AS (
    INSERT INTO servicetitan.st_sync_quarantine AS q (stream, st_id, payload, reason)
    SELECT {stream_name}, qid, d, reason FROM bad
    ON CONFLICT (stream, st_id) WHERE resolved_at IS NULL AND st_id IS NOT NULL
    DO UPDATE SET payload = EXCLUDED.payload, reason = EXCLUDED.reason, last_seen = now(),
                  seen_count = q.seen_count + 1
    RETURNING 1
),
resolved AS (
    UPDATE servicetitan.st_sync_quarantine q SET resolved_at = now()
      FROM good WHERE q.stream = {stream_name} AND q.st_id = good.st_id AND q.resolved_at IS NULL
    RETURNING 1
),
merged AS ({upsert}){events}
SELECT (SELECT count(*) FROM elems) AS fetched,
       (SELECT count(*) FROM merged WHERE inserted) AS created,
       (SELECT count(*) FROM merged WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM good) - (SELECT count(*) FROM merged) AS unchanged,
       (SELECT count(*) FROM quarantined) AS quarantined,
       (SELECT count(*) FROM resolved) AS resolved,
       (SELECT max((d ->> 'modifiedOn')::timestamptz) FROM good) AS max_modified_on,
       {count_events} AS events
"""
    ).format(
        reason=_reason("d", stream.columns, validate),
        int_re=sql.Literal(_INT_RE),
        stream_name=stream_name,
        upsert=_upsert(stream.table, stream.key_columns, extra, stream.columns, "d", "good", active, returning),
        events=_events(stream, capture) if capturing and capture is not None else sql.SQL(""),
        count_events=sql.SQL("(SELECT count(*) FROM events)" if capturing else "0"),
    )


def child_merge(stream: Stream, child: ChildTable, validate: bool = True) -> sql.Composed:
    """Merge the rows embedded in the staged page's records (estimate items) into their own table.

    Only parents that were accepted (their current version is in the mirror) contribute; an item
    that vanished from its parent is marked inactive, never deleted.
    Returns one row: (created, updated, deactivated, skipped).
    """
    parent_active = sql.SQL("coalesce((d ->> 'active')::boolean, (pd ->> 'active')::boolean, true)")
    extra: list[tuple[str, sql.Composable]] = [
        ("st_id", sql.SQL("st_id")),
        (child.parent_column, sql.SQL("pid")),
    ]
    return sql.SQL(
        """
WITH parents AS (
    SELECT DISTINCT ON ((e.d ->> 'id')::bigint) (e.d ->> 'id')::bigint AS pid, e.d
      FROM stsync_stage s,
           jsonb_array_elements(CASE jsonb_typeof(s.body -> 'data') WHEN 'array' THEN s.body -> 'data'
                                ELSE '[]'::jsonb END) WITH ORDINALITY AS e(d, ord)
     WHERE (e.d ->> 'id') ~ {int_re}
     ORDER BY (e.d ->> 'id')::bigint, e.ord DESC
),
accepted AS (
    SELECT p.pid, p.d AS pd FROM parents p
      JOIN servicetitan.{parent_table} t ON t.st_id = p.pid AND t.full_data = p.d
),
items AS MATERIALIZED (
    SELECT a.pid, a.pd, i.d, i.ord, {reason} AS reason
      FROM accepted a,
           jsonb_array_elements(CASE jsonb_typeof(a.pd -> {array_key}) WHEN 'array' THEN a.pd -> {array_key}
                                ELSE '[]'::jsonb END) WITH ORDINALITY AS i(d, ord)
),
good AS (
    SELECT DISTINCT ON ((d ->> 'id')::bigint) (d ->> 'id')::bigint AS st_id, pid, pd, d
      FROM items WHERE reason IS NULL
     ORDER BY (d ->> 'id')::bigint, ord DESC
),
merged AS ({upsert}),
gone AS (
    UPDATE servicetitan.{child_table} c SET active = false, last_synced_at = now()
     WHERE c.{parent_column} IN (SELECT pid FROM accepted) AND c.active
       AND NOT EXISTS (SELECT 1 FROM good g WHERE g.st_id = c.st_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM merged WHERE inserted) AS created,
       (SELECT count(*) FROM merged WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM gone) AS deactivated,
       (SELECT count(*) FROM items WHERE reason IS NOT NULL) AS skipped
"""
    ).format(
        int_re=sql.Literal(_INT_RE),
        parent_table=sql.Identifier(stream.table),
        reason=_reason("d", child.columns, validate),
        array_key=sql.Literal(child.array_key),
        upsert=_upsert(child.table, ("st_id",), extra, child.columns, "d", "good", parent_active),
        child_table=sql.Identifier(child.table),
        parent_column=sql.Identifier(child.parent_column),
    )
