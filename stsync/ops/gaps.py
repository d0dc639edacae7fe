"""`stsync gap-analysis`: does the mirror hold what ServiceTitan holds?

Per stream, one list request with ``includeTotal=true&pageSize=1`` counts ServiceTitan's records created
before the stream's high-water mark (the newest ``modifiedOn`` the mirror has committed: anything created
before it should be in the mirror), against the mirror's own count of them. The mark is ServiceTitan's own
clock, so a mirror that is merely behind is not reported as a gap.

``deep`` locates the differences without reading everything: the window of creation dates is split, at the
mirror's median creation date, and only the part ServiceTitan counts differently from the mirror is split
again, one counting request per split, until a window fits one list page; that page's ids are compared with
the mirror's. Records the mirror has and ServiceTitan no longer serves are marked deleted (``deleted_at``, the
time they were found missing), never dropped. Counts that agree can hide a missing record and an extra one in
the same window; the deep walk finds those only where another difference leads it there. An extra id is asked
for by id before it is marked (one that ServiceTitan still serves is not extra); a stream whose list takes no
ids reports its extra ids without marking them.

Orphans are the mirror's own: a job whose customer or location is missing, an assignment without its
appointment, an invoice without its job.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from stsync.db.connect import connect, error_for
from stsync.errors import AccessDenied, AuthError, ConfigError, Outage, StsyncError
from stsync.servicetitan.client import ServiceTitanClient
from stsync.sqlfile import load
from stsync.sync.backfill import MAX_IDS
from stsync.sync.streams import STREAMS_BY_NAME, Stream

Q = load("ops")

FLOOR = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())  # before any ServiceTitan record (seconds, as all bounds)


@dataclass(frozen=True)
class GapSettings:
    dsn: str
    streams: tuple[str, ...]
    deep: bool = False
    page_size: int = 5000  # a window this small (by ServiceTitan's count) is compared id by id, in one page
    mark_deleted: bool = True  # a deep walk marks what ServiceTitan no longer serves as deleted
    connect_timeout: float = 10


@dataclass
class StreamGap:
    stream: str
    status: str = "ok"  # ok | gap | unchecked | failed
    servicetitan: int | None = None
    mirror: int | None = None
    created_before: str | None = None  # the stream's high-water mark (whole seconds): what was compared
    note: str = ""
    missing: list[int] | None = None  # deep only: in ServiceTitan, not in the mirror
    extra: list[int] | None = None  # deep only: in the mirror, not served by ServiceTitan (marked deleted)
    windows: list[tuple[str, str]] = field(default_factory=list)  # created windows that hold the missing ones
    requests: int = 0
    read: int = 0  # records received (a count's page carries one)

    @property
    def difference(self) -> int | None:
        if self.servicetitan is None or self.mirror is None:
            return None
        return self.servicetitan - self.mirror

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stream": self.stream,
            "status": self.status,
            "servicetitan": self.servicetitan,
            "mirror": self.mirror,
            "difference": self.difference,
            "created_before": self.created_before,
            "note": self.note or None,
            "requests": self.requests,
            "read": self.read,
        }
        if self.missing is not None:
            out |= {"missing": self.missing, "extra": self.extra, "windows": [list(w) for w in self.windows]}
        return out


@dataclass(frozen=True)
class Orphan:
    kind: str
    stream: str
    id: int
    parent_stream: str
    parent_id: int


@dataclass
class GapReport:
    deep: bool
    streams: list[StreamGap]
    orphans: list[Orphan]
    requests: int
    marked_deleted: int
    analyzed_at: datetime

    @property
    def has_gaps(self) -> bool:
        return bool(self.orphans) or any(s.status == "gap" for s in self.streams)

    def as_json(self) -> dict[str, Any]:
        return {
            "analyzed_at": self.analyzed_at.isoformat(),
            "deep": self.deep,
            "gaps": self.has_gaps,
            "requests": self.requests,
            "marked_deleted": self.marked_deleted,
            "streams": [s.as_json() for s in self.streams],
            "orphans": [o.__dict__ for o in self.orphans],
        }


# A child whose parent the mirror lacks: (kind, child stream, its column, parent stream).
ORPHANS: tuple[tuple[str, str, str, str], ...] = (
    ("job without its customer", "jobs", "customer_id", "customers"),
    ("job without its location", "jobs", "location_id", "locations"),
    ("assignment without its appointment", "appointment_assignments", "appointment_id", "appointments"),
    ("invoice without its job", "invoices", "job_id", "jobs"),
)


def lists_inactive(stream: Stream) -> bool:
    """Whether the stream's list serves inactive records too (else the mirror's active ones are compared)."""
    return "active" in stream.list_params or "activeState" in stream.list_params


def scope(stream: Stream, visible: bool) -> sql.Composable:
    """The mirror rows that are the stream's (custom field types share a table), and with ``visible``, only
    those its list serves."""
    parts: list[sql.Composable] = [
        sql.SQL("AND {} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in stream.key_constants.items()
    ]
    if visible and not lists_inactive(stream):
        parts.append(sql.SQL("AND active"))
    return sql.SQL(" ").join(parts)


def _query(name: str, stream: Stream, visible: bool = True) -> sql.Composed:
    return sql.SQL(Q[name]).format(table=sql.Identifier(stream.table), scope=scope(stream, visible))  # type: ignore[arg-type]


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Walk:
    """One stream's comparison against ServiceTitan: its counts, and with ``deep`` its windows.

    Every bound is a whole second, and the mirror's side of it is the second its raw ``createdOn`` falls in
    (``servicetitan.created_second``): ServiceTitan prints seven fractional digits and PostgreSQL keeps six,
    rounding, so ``st_created_on`` can lie in the next second, across a bound."""

    def __init__(self, client: ServiceTitanClient, stream: Stream, gap: StreamGap, page_size: int, cutoff: int) -> None:
        assert stream.list_path is not None
        self.client, self.stream, self.gap, self.page_size = client, stream, gap, page_size
        self.list_path = stream.list_path
        self.cutoff = cutoff  # the high-water mark, rounded down to a whole second: the end of every comparison
        self.created: list[int] = []  # the mirror's creation seconds, ascending
        self.ids: list[int] = []  # and its ids in the same order
        self.missing: set[int] = set()
        self.extra: set[int] = set()

    async def _page(self, page: int, size: int, params: dict[str, str]) -> dict[str, Any]:
        self.gap.requests += 1
        got = await self.client.list_page(self.stream.module, self.list_path, page, size, params)
        try:
            doc: dict[str, Any] = orjson.loads(got.body)
        finally:
            self.client.release(got)
        self.gap.read += len(doc.get("data") or ())
        return doc

    def _window(self, lo: int | None, hi: int) -> dict[str, str]:
        params = {**self.stream.list_params, "createdBefore": _iso(hi)}
        if lo is not None:
            params["createdOnOrAfter"] = _iso(lo)
        return params

    async def count(self, lo: int | None = None, hi: int | None = None) -> int:
        """ServiceTitan's records created in [lo, hi) (None: from the start, or up to the high-water mark)."""
        params = {**self._window(lo, self.cutoff if hi is None else hi), "includeTotal": "true"}
        total = (await self._page(1, 1, params)).get("totalCount")
        if not isinstance(total, int):
            raise StsyncError(f"{self.stream.name}: ServiceTitan's list gave no totalCount")
        return total

    async def locate(self, lo: int, hi: int, served: int) -> None:
        """Find the differences in [lo, hi), where ServiceTitan counts ``served`` records."""
        i, j = bisect.bisect_left(self.created, lo), bisect.bisect_left(self.created, hi)
        if served == j - i:
            return
        mid = self.created[(i + j) // 2] if j - i >= 2 else lo  # the mirror's median: each half gets half its rows
        if not lo < mid < hi:
            mid = lo + (hi - lo) // 2
        if served <= self.page_size or not lo < mid < hi:
            await self._compare(lo, hi, set(self.ids[i:j]))
            return
        left = await self.count(lo, mid)
        await asyncio.gather(self.locate(lo, mid, left), self.locate(mid, hi, served - left))

    async def _compare(self, lo: int, hi: int, mirror: set[int]) -> None:
        served: set[int] = set()
        page = 1
        while True:
            doc = await self._page(page, self.page_size, self._window(lo, hi))
            served.update(int(r["id"]) for r in doc.get("data") or ())
            if not doc.get("hasMore"):
                break
            page += 1
        if served - mirror:
            self.gap.windows.append((_iso(lo), _iso(hi)))
        self.missing |= served - mirror
        self.extra |= mirror - served

    async def confirm_extra(self) -> None:
        """Ask ServiceTitan for the extra ids themselves, whatever their creation date: one it still serves is
        not extra (its mirror row holds another creation date). A list that takes no ids cannot be asked."""
        if not self.stream.list_ids:
            return
        served: set[int] = set()
        extra = sorted(self.extra)
        for k in range(0, len(extra), MAX_IDS):
            params = {**self.stream.list_params, "ids": ",".join(map(str, extra[k : k + MAX_IDS]))}
            served.update(int(r["id"]) for r in (await self._page(1, MAX_IDS, params)).get("data") or ())
        self.extra -= served

    def settle(self) -> None:
        self.gap.missing = sorted(self.missing)
        self.gap.extra = sorted(self.extra)
        self.gap.windows.sort()
        if self.gap.extra and not self.stream.list_ids:
            self.gap.note = "extra ids not confirmed (its list takes no ids): not marked deleted"


async def _mirror_rows(conn: psycopg.AsyncConnection[Any], walk: _Walk) -> None:
    cur = await conn.execute(_query("gap_mirror_ids", walk.stream), {"cutoff": walk.cutoff})
    rows = await cur.fetchall()
    walk.created = [int(r[1]) for r in rows]
    walk.ids = [int(r[0]) for r in rows]


async def _total(walk: _Walk) -> None:
    gap = walk.gap
    try:
        gap.servicetitan = await walk.count()
    except (Outage, ConfigError):
        raise
    except AuthError as exc:
        if not isinstance(exc, AccessDenied):
            raise  # the credentials: nothing can be compared, a config error for the run
        gap.status, gap.note = "failed", exc.message
        return
    except StsyncError as exc:
        gap.status, gap.note = "failed", exc.message
        return
    if gap.servicetitan != gap.mirror:
        gap.status = "gap"


async def analyze(client: ServiceTitanClient, settings: GapSettings, now: datetime) -> GapReport:
    """Compare ``settings.streams`` with ServiceTitan; with ``deep``, locate and mark the differences."""
    streams = [STREAMS_BY_NAME[name] for name in settings.streams]
    gaps = {s.name: StreamGap(s.name) for s in streams}
    await client.authenticate()  # a refused client id or secret is one config error, before any comparison
    conn = await connect(settings.dsn, settings.connect_timeout, autocommit=True)
    try:
        async with conn:
            marks = await _high_water_marks(conn)
            walks = await _mirror_counts(conn, marks, streams, gaps, settings.page_size, client)
            await asyncio.gather(*(_total(w) for w in walks))
            if settings.deep:
                for walk in (w for w in walks if w.gap.status == "gap"):
                    await _mirror_rows(conn, walk)
                await asyncio.gather(*(_deep(w) for w in walks if w.gap.status == "gap"))
            marked = await _mark_deleted(conn, walks, now) if settings.deep and settings.mark_deleted else 0
            orphans = await _orphans(conn, {w.stream.name for w in walks}, set(marks))
    except psycopg.Error as exc:
        raise error_for(exc, "comparing the mirror with ServiceTitan") from None
    return GapReport(settings.deep, list(gaps.values()), orphans, sum(g.requests for g in gaps.values()), marked, now)


async def _deep(walk: _Walk) -> None:
    gap = walk.gap
    assert gap.servicetitan is not None
    try:
        await walk.locate(FLOOR, walk.cutoff, gap.servicetitan)
        await walk.confirm_extra()
    except Outage:
        raise
    except StsyncError as exc:
        gap.note = f"not located: {exc.message}"
        return
    walk.settle()


async def _high_water_marks(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    """Every synced stream's high-water mark."""
    cur = await conn.execute(Q["gap_cutoffs"], {"keys": [f"{name}.high_water" for name in STREAMS_BY_NAME]})
    return {str(k).removesuffix(".high_water"): v for k, v in await cur.fetchall() if v}


async def _mirror_counts(
    conn: psycopg.AsyncConnection[Any],
    marks: dict[str, str],
    streams: list[Stream],
    gaps: dict[str, StreamGap],
    page_size: int,
    client: ServiceTitanClient,
) -> list[_Walk]:
    """Each stream's high-water mark and the mirror's count below it; the walks of the streams it can compare."""
    walks = []
    for stream in streams:
        gap = gaps[stream.name]
        if stream.list_path is None:
            gap.status, gap.note = "unchecked", "no list endpoint of its own: ServiceTitan cannot count it"
            continue
        if not marks.get(stream.name):
            gap.status, gap.note = "unchecked", "never synced: nothing to compare yet"
            continue
        cur = await conn.execute(_query("gap_mirror_count", stream), {"mark": marks[stream.name]})
        row = await cur.fetchone()
        assert row is not None
        gap.mirror, cutoff = int(row[0]), int(row[1])
        gap.created_before = _iso(cutoff)
        walk = _Walk(client, stream, gap, page_size, cutoff)
        if not lists_inactive(stream):
            gap.note = "active records (its list serves no inactive ones)"
        walks.append(walk)
    return walks


async def _mark_deleted(conn: psycopg.AsyncConnection[Any], walks: list[_Walk], now: datetime) -> int:
    marked = 0
    for walk in walks:
        if walk.gap.extra and walk.stream.list_ids:  # confirmed by id (see _Walk.confirm_extra)
            cur = await conn.execute(
                _query("gap_mark_deleted", walk.stream, visible=False), {"ids": walk.gap.extra, "now": now}
            )
            marked += cur.rowcount
    return marked


async def _orphans(conn: psycopg.AsyncConnection[Any], compared: set[str], synced: set[str]) -> list[Orphan]:
    """The orphans among the compared streams' records, where their parents' stream has been synced."""
    found: list[Orphan] = []
    for kind, child, column, parent in ORPHANS:
        if child not in compared or parent not in synced:
            continue
        statement = sql.SQL(Q["gap_orphans"]).format(  # type: ignore[arg-type]
            child=sql.Identifier(STREAMS_BY_NAME[child].table),
            parent=sql.Identifier(STREAMS_BY_NAME[parent].table),
            column=sql.Identifier(column),
        )
        cur = await conn.execute(statement)
        found += [Orphan(kind, child, int(i), parent, int(p)) for i, p in await cur.fetchall()]
    return found
