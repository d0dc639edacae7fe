"""A feed's pages while the next ones download: a short queue between a fetching task and the writer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from stsync.servicetitan.client import Page

READ_AHEAD = 2  # pages queued for a writing stream: the one written next and the one after it


@dataclass
class Downloads:
    """A walk's pages in order (``async for``), and a look at the next one."""

    pages: AsyncGenerator[Page, None]
    queue: collections.deque[Page | Exception | None]

    def __aiter__(self) -> AsyncGenerator[Page, None]:
        return self.pages

    def upcoming(self) -> Page | None:
        """The page that comes next, if it has already downloaded."""
        head = self.queue[0] if self.queue else None
        return head if isinstance(head, Page) else None


@contextlib.asynccontextmanager
async def pipelined(
    fetch_pages: Callable[[], AsyncIterator[Page]], release: Callable[[Page], None], writing: Callable[[], bool]
) -> AsyncIterator[Downloads]:
    """Pages while the next ones are already downloading.

    ``writing()`` says whether the stream's turn to write has come. Before it has, it downloads as far ahead
    as the ahead budget lets it (the budget, not this queue, bounds that memory); once writing, it keeps one
    page queued and one downloading besides the pages it fetched ahead: those are written while the next
    ones download, not before.
    The consumer releases each page it was given (see ``ServiceTitanClient.release``). Leaving the
    context, however the walk ended, stops the download and releases every page fetched but not handed
    over, within the stream's own task: a failed write must not leave page bytes held in the budget.
    """
    queue: collections.deque[Page | Exception | None] = collections.deque()
    arrived, taken = asyncio.Event(), asyncio.Event()
    fetched_ahead = 0  # pages in the queue that were fetched before the stream's turn (they are first in it)

    async def produce() -> None:
        nonlocal fetched_ahead
        try:
            async for page in fetch_pages():
                queue.append(page)
                arrived.set()
                if not writing():
                    fetched_ahead += 1
                del page  # do not keep the body alive while the next page downloads
                while writing() and len(queue) - fetched_ahead >= READ_AHEAD:
                    taken.clear()
                    await taken.wait()
            queue.append(None)
        except Exception as exc:  # handed to the consumer, which re-raises it
            queue.append(exc)
        arrived.set()
        # Cancellation (the consumer is gone) and Ctrl-C/SIGTERM (the run is stopping) propagate from here.

    def drain() -> None:
        while queue:
            left = queue.popleft()
            if isinstance(left, Page):
                release(left)

    async def pages() -> AsyncGenerator[Page, None]:
        nonlocal fetched_ahead
        while True:
            while not queue:
                arrived.clear()
                await arrived.wait()
            item = queue.popleft()
            fetched_ahead = max(0, fetched_ahead - 1)
            taken.set()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item
            del item  # the consumer is done with it; do not hold it while waiting for the next

    producer = asyncio.create_task(produce())
    handed = pages()
    try:
        yield Downloads(handed, queue)
    finally:
        await handed.aclose()  # drops the page it may still refer to
        producer.cancel()
        await asyncio.wait((producer,))  # its error, if any, was handed over through the queue
        drain()
