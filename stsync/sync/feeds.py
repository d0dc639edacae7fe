"""Walking one stream's feed: which page to start from, the pages in order, and the checkpoint each page
commits with.

- Export feeds: ``full`` walks from the beginning (or resumes an interrupted full walk); ``incremental``
  resumes from the stored continuation token, falling back to the stored high-water ``modifiedOn`` when the
  token is missing or rejected.
- List-only streams (small reference data) are refreshed each run; incremental runs ask only for records
  modified since the stored high-water mark.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Protocol

from stsync.budget import Lane
from stsync.servicetitan.client import ContinuationRejected, Page, ServiceTitanClient
from stsync.sync.model import SyncOptions
from stsync.sync.pipeline import Downloads
from stsync.sync.repository import PageCounts, later
from stsync.sync.streams import Stream

log = logging.getLogger("stsync.sync")


class FeedRun(Protocol):
    """What a walk needs of the stream's run (``stsync.sync.engine``): where to fetch, and how to write."""

    client: ServiceTitanClient
    stream: Stream
    options: SyncOptions
    generation: str | None  # the full walk this run belongs to, if any

    @property
    def lane(self) -> Lane: ...

    def downloading(
        self, fetch_pages: Callable[[], AsyncIterator[Page]]
    ) -> contextlib.AbstractAsyncContextManager[Downloads]: ...

    async def write(
        self,
        page: Page,
        checkpoint: dict[str, str | None],
        upcoming: Callable[[], Page | None] = ...,
        last: bool | None = ...,
    ) -> PageCounts: ...


async def walk_export(run: FeedRun, state: dict[str, str]) -> None:
    client, stream, options, generation = run.client, run.stream, run.options, run.generation
    assert stream.export_path is not None
    high_water = state.get("high_water")
    start: str | None
    if options.since:
        start, walk = options.since, "since"
    elif options.sync_type == "full":
        # Resume this generation's full walk where a killed run left it; otherwise start over.
        resuming = (
            state.get("walk") == "full"
            and state.get("continue_from")
            and (generation is None or state.get("generation") == generation)
        )
        start, walk = (state["continue_from"], "full") if resuming else (None, "full")
    elif state.get("continue_from"):
        start, walk = state["continue_from"], state.get("walk", "done")
    elif high_water:
        start, walk = high_water, "done"
    else:
        start, walk = None, "full"  # first run ever: an incremental run is a full walk

    async def pages_from(first: str | None) -> AsyncIterator[Page]:
        cursor = first
        while True:
            page = await client.export_page(
                stream.module,
                stream.export_path or "",
                cursor,
                options.include_recent_changes,
                stream.export_params,
                run.lane,
            )
            more, cursor = page.has_more, page.continue_from
            yield page
            del page  # keep no page body alive across the next download
            if not more:
                return

    async def walk_from(first: str | None) -> None:
        nonlocal high_water
        async with run.downloading(lambda: pages_from(first)) as pages:
            async for page in pages:  # they download while the streams this one depends on write
                checkpoint: dict[str, str | None] = {
                    "continue_from": page.continue_from,
                    "walk": walk if page.has_more else "done",
                    "high_water": high_water,  # the repository raises it to the page's newest modifiedOn
                }
                if generation is not None:
                    checkpoint["generation"] = generation
                if not page.has_more:
                    checkpoint["seeded"] = "yes"  # its history is in: from now on its changes are events
                counts = await run.write(page, checkpoint, pages.upcoming)
                del page  # the loop variable would hold the body until the next page arrives
                high_water = later(high_water, counts.max_modified_on)

    try:
        await walk_from(start)
    except ContinuationRejected:
        # Tokens are opaque and their lifetime is undocumented: fall back to the date we know.
        log.warning("%s: continuation token rejected; resuming from %s", stream.name, high_water or "the start")
        await walk_from(high_water)


async def list_pages(
    run: FeedRun, list_path: str, params: dict[str, str], first: int = 1
) -> AsyncGenerator[Page, None]:
    """A list endpoint's pages from page ``first`` on, until one says there is no more."""
    number = first
    while True:
        page = await run.client.list_page(run.stream.module, list_path, number, run.options.page_size, params, run.lane)
        more = page.has_more
        yield page
        del page  # keep no page body alive across the next download
        if not more:
            return
        number += 1


async def walk_list(run: FeedRun, state: dict[str, str]) -> None:
    stream, options, generation = run.stream, run.options, run.generation
    assert stream.list_path is not None
    list_path = stream.list_path
    params = dict(stream.list_params)
    since = options.since or (state.get("high_water") if options.sync_type == "incremental" else None)
    if since:
        params["modifiedOnOrAfter"] = since
    high_water = state.get("high_water")
    async with run.downloading(lambda: list_pages(run, list_path, params)) as walk:
        async for page in walk:
            # Pages come in id order, so the high-water mark may only move with the last page;
            # until then the newest modifiedOn seen is carried in memory.
            checkpoint: dict[str, str | None] = (
                {} if page.has_more else {"high_water": high_water, "walk": "done", "seeded": "yes"}
            )
            if generation is not None and not page.has_more:
                checkpoint["generation"] = generation
            counts = await run.write(page, checkpoint, walk.upcoming)
            del page  # the loop variable would hold the body until the next page arrives
            high_water = later(high_water, counts.max_modified_on)
