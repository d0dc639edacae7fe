"""`stsync backfill`: fetch chosen records again through the list endpoints and merge them as sync does.

A backfill is a plan of units per stream, each one list query: a window of modified or created dates, or a
chunk of at most 50 ids. Its pages commit with a checkpoint of their own (``<stream>.backfill``: the plan's
digest, and the unit and page to go on from), never with the stream's cursors, so an incremental after it
starts where it would have started, and a killed backfill given the same plan resumes where it stopped.
"""

from __future__ import annotations

import functools
import hashlib

import orjson

from stsync.errors import DataError, UsageError
from stsync.sync.feeds import FeedRun, list_pages
from stsync.sync.model import Unit
from stsync.sync.streams import STREAMS_BY_NAME, Stream

MAX_IDS = 50  # what a list's `ids` parameter takes at once


def id_units(stream: Stream, ids: list[int]) -> tuple[Unit, ...]:
    """``ids`` in chunks the list accepts; a usage error when the stream's list takes no ids."""
    if not stream.list_ids:
        raise UsageError(f"{stream.name}: its list takes no ids; backfill it by dates (--from/--to)")
    unique = sorted(set(ids))
    return tuple(Unit.ids(unique[i : i + MAX_IDS]) for i in range(0, len(unique), MAX_IDS))


def check_listable(stream: Stream) -> None:
    if stream.list_path is None:
        raise UsageError(
            f"{stream.name}: it has no list endpoint of its own; `stsync sync full {stream.name}` reads it"
        )


def digest(units: tuple[Unit, ...], page_size: int, list_params: dict[str, str]) -> str:
    """What a backfill's pages are: its queries, the stream's own parameters, and the page size they are cut in."""
    plan = [[u.params for u in units], page_size, sorted(list_params.items())]
    return hashlib.sha256(orjson.dumps(plan)).hexdigest()[:16]


def _resume_point(state: dict[str, str], plan: str) -> tuple[int, int]:
    """(unit, page) to go on from: where a killed backfill of the same plan stopped, else the start. It goes on
    one page early: records that left a window since (modified again) shift the later ones forward, and merging
    a page twice changes nothing."""
    saved = (state.get("backfill") or "").split(":")
    if len(saved) == 3 and saved[0] == plan and saved[1].isdecimal() and saved[2].isdecimal():
        return int(saved[1]), max(1, int(saved[2]) - 1)
    return 0, 1


async def walk_backfill(run: FeedRun, state: dict[str, str], units: tuple[Unit, ...]) -> None:
    stream, options = run.stream, run.options
    check_listable(stream)
    assert stream.list_path is not None
    list_path = stream.list_path
    plan = digest(units, options.page_size, stream.list_params)
    first_unit, first_page = _resume_point(state, plan)

    for u in range(first_unit, len(units)):
        params = {**stream.list_params, **dict(units[u].params)}
        start = first_page if u == first_unit else 1

        number = start
        async with run.downloading(functools.partial(list_pages, run, list_path, params, start)) as walk:
            async for page in walk:
                final = not page.has_more and u == len(units) - 1
                after = (u, number + 1) if page.has_more else (u + 1, 1)
                checkpoint: dict[str, str | None] = {"backfill": None if final else f"{plan}:{after[0]}:{after[1]}"}
                # The stream's log row finishes with the plan's last page, not with each unit's.
                await run.write(page, checkpoint, walk.upcoming, last=final)
                del page
                number += 1


Plan = dict[str, tuple[Unit, ...]]


def window_plan(streams: list[Stream], by: str, start: str, end: str) -> Plan:
    """Every stream's records modified (or created) in [start, end) (RFC 3339 UTC, as ServiceTitan takes them)."""
    if start >= end:
        raise UsageError(f"--from {start} is not before --to {end}")
    for stream in streams:
        check_listable(stream)
    return {s.name: (Unit.window(by, start, end),) for s in streams}


def id_plan(streams: list[Stream], ids: list[int]) -> Plan:
    if not ids:
        raise UsageError("--ids names no id")
    for stream in streams:
        check_listable(stream)
    return {s.name: id_units(s, ids) for s in streams}


def _ids_at(doc: dict[str, object], key: str, where: str) -> list[int]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise DataError(f"{where}.{key}: not a list of ids")
    return value


def _read_report(doc: object, source: str) -> tuple[dict[str, set[int]], dict[str, list[tuple[str, str]]]]:
    """Each stream's missing ids (with the orphans' missing parents) and windows, checked field by field."""
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise DataError(f"{source}: not a gap report (no 'streams' list); write one with `stsync gap-analysis --out`")
    missing: dict[str, set[int]] = {}
    windows: dict[str, list[tuple[str, str]]] = {}
    for n, entry in enumerate(doc["streams"]):
        where = f"{source}: streams[{n}]"
        name = entry.get("stream") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in STREAMS_BY_NAME:
            raise DataError(f"{where}.stream: not a stream name")
        missing.setdefault(name, set()).update(_ids_at(entry, "missing", where))
        spans = entry.get("windows") or []
        if not isinstance(spans, list) or not all(
            isinstance(w, list) and len(w) == 2 and all(isinstance(t, str) for t in w) for w in spans
        ):
            raise DataError(f"{where}.windows: not a list of [start, end] dates")
        windows[name] = [(w[0], w[1]) for w in spans]
    orphans = doc.get("orphans") or []
    if not isinstance(orphans, list):
        raise DataError(f"{source}: orphans: not a list")
    for n, orphan in enumerate(orphans):
        parent = orphan.get("parent_stream") if isinstance(orphan, dict) else None
        if not isinstance(parent, str) or parent not in STREAMS_BY_NAME:
            raise DataError(f"{source}: orphans[{n}].parent_stream: not a stream name")
        parent_id = orphan.get("parent_id")
        if not isinstance(parent_id, int) or isinstance(parent_id, bool):
            raise DataError(f"{source}: orphans[{n}].parent_id: not an id")
        missing.setdefault(parent, set()).add(parent_id)
    return missing, windows


def report_plan(doc: object, source: str, wanted: set[str] | None = None) -> Plan:
    """What a gap report (`stsync gap-analysis --out`) found missing, as a plan: by id where the stream's list
    takes ids, else the creation windows that hold the missing records; an orphan's missing parent is a
    missing record of the parent's stream. ``wanted``: only these streams."""
    missing, windows = _read_report(doc, source)
    plan: Plan = {}
    for name, stream in STREAMS_BY_NAME.items():  # in the streams' order
        if wanted is not None and name not in wanted:
            continue
        if (missing.get(name) or windows.get(name)) and stream.list_path is None:
            raise DataError(f"{source}: {name} has no list endpoint of its own: a gap report cannot name it")
        if stream.list_ids and missing.get(name):
            plan[name] = id_units(stream, sorted(missing[name]))
        elif windows.get(name):
            plan[name] = tuple(Unit.window("created", start, end) for start, end in windows[name])
    return plan
