"""The sync engine: walk every selected stream's feed and hand its pages to the repository.

- One run at a time per tenant (``RunLock``); streams start when the streams they depend on have
  finished, and run concurrently under one shared rate limiter and a concurrency cap.
- Export feeds: ``full`` walks from the beginning (or resumes an interrupted full walk);
  ``incremental`` resumes from the stored continuation token, falling back to the stored
  high-water ``modifiedOn`` when the token is missing or rejected.
- List-only streams (small reference data) are refreshed each run; incremental runs ask only for
  records modified since the stored high-water mark.
- Each page commits together with its checkpoint. The next page downloads while the current one
  is written (a one-slot queue between a fetcher task and the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import orjson

from stsync.db.repository import ConnectionPool, PageCounts, RunLock, StreamRepository, later
from stsync.errors import ExitCode, StsyncError, exit_code_for
from stsync.servicetitan.client import ContinuationRejected, Page, ServiceTitanClient
from stsync.sync.streams import FeedKind, Stream

log = logging.getLogger("stsync.sync")

SyncType = Literal["full", "incremental"]


@dataclass
class StreamResult:
    name: str
    status: str = "started"  # completed | partial | failed | skipped
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    pages: int = 0
    requests: int = 0
    duration_ms: int = 0
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK

    def add(self, counts: PageCounts) -> None:
        self.pages += 1
        self.fetched += counts.fetched
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.quarantined += counts.quarantined


@dataclass
class RunResult:
    run_id: uuid.UUID
    sync_type: SyncType
    dry_run: bool
    streams: list[StreamResult] = field(default_factory=list)
    duration_ms: int = 0
    requests: int = 0

    @property
    def exit_code(self) -> ExitCode:
        codes = [s.exit_code for s in self.streams if s.exit_code != ExitCode.OK]
        if not codes:
            return ExitCode.OK
        # A failure outranks "partial"; among failures, the first stream's error decides.
        failures = [c for c in codes if c != ExitCode.PARTIAL]
        return failures[0] if failures else ExitCode.PARTIAL

    def totals(self) -> dict[str, int]:
        keys = ("fetched", "created", "updated", "unchanged", "quarantined", "pages")
        return {k: sum(getattr(s, k) for s in self.streams) for k in keys}


class Observer(Protocol):
    """What the CLI hears while a run goes on (progress bars or plain lines)."""

    def stream_started(self, name: str) -> None: ...
    def page_written(self, name: str, result: StreamResult) -> None: ...
    def stream_finished(self, result: StreamResult) -> None: ...


class _Silent:
    def stream_started(self, name: str) -> None:
        pass

    def page_written(self, name: str, result: StreamResult) -> None:
        pass

    def stream_finished(self, result: StreamResult) -> None:
        pass


@dataclass(frozen=True)
class SyncOptions:
    sync_type: SyncType
    dsn: str
    tenant_id: int
    page_size: int = 5000
    include_recent_changes: bool = False
    since: str | None = None
    dry_run: bool = False
    max_concurrency: int = 8
    connect_timeout: float = 10


async def run_sync(
    client: ServiceTitanClient,
    streams: list[Stream],
    options: SyncOptions,
    observer: Observer | None = None,
) -> RunResult:
    """Run one sync over ``streams``; never raises for a single stream's failure (see the result)."""
    observer = observer or _Silent()
    result = RunResult(uuid.uuid4(), options.sync_type, options.dry_run)
    started = time.monotonic()
    async with RunLock(options.dsn, options.tenant_id, options.connect_timeout) as lock:
        await client.authenticate()
        generation = await _full_generation(lock, options, result.run_id)
        gate = asyncio.Semaphore(options.max_concurrency)
        pool = ConnectionPool(options.dsn, options.connect_timeout)
        tasks: dict[str, asyncio.Task[StreamResult]] = {}
        selected = {s.name for s in streams}
        try:
            for stream in streams:
                deps = [tasks[d] for d in stream.depends_on if d in selected and d in tasks]
                tasks[stream.name] = asyncio.create_task(
                    _run_after(deps, gate, pool, client, stream, options, observer, result.run_id, generation)
                )
            result.streams = list(await asyncio.gather(*tasks.values()))
        finally:
            await pool.close()
        jobs = next((s for s in result.streams if s.name == "jobs"), None)
        if jobs is not None and jobs.status in ("completed", "partial") and not options.dry_run:
            # The seed's job sync kept its cursor under this key; tools that read it keep working.
            await lock.write_state("", {"lastJobPull": datetime.now(UTC).isoformat()})
        if generation and all(s.status in ("completed", "partial", "skipped") for s in result.streams):
            await lock.write_state("full_run.", {"status": "done"})
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.requests = client.requests_sent
    return result


async def _full_generation(lock: RunLock, options: SyncOptions, run_id: uuid.UUID) -> str | None:
    """The id of the full walk this run belongs to; a killed full run is resumed, not restarted.

    Every stream of a full run records the generation it walked for. When `sync full` runs again
    before the last full run finished, streams already done for that generation are skipped and
    half-walked ones resume from their checkpoint, so no committed page is fetched twice.
    """
    if options.sync_type != "full" or options.dry_run or options.since:
        return None
    state = await lock.read_state("full_run.")
    if state.get("status") == "in_progress" and state.get("generation"):
        return state["generation"]
    generation = str(run_id)
    await lock.write_state("full_run.", {"generation": generation, "status": "in_progress"})
    return generation


async def _run_after(
    deps: list[asyncio.Task[StreamResult]],
    gate: asyncio.Semaphore,
    pool: ConnectionPool,
    client: ServiceTitanClient,
    stream: Stream,
    options: SyncOptions,
    observer: Observer,
    run_id: uuid.UUID,
    generation: str | None,
) -> StreamResult:
    if deps:
        await asyncio.wait(deps)
    async with gate:
        return await _run_stream(pool, client, stream, options, observer, run_id, generation)


async def _run_stream(
    pool: ConnectionPool,
    client: ServiceTitanClient,
    stream: Stream,
    options: SyncOptions,
    observer: Observer,
    run_id: uuid.UUID,
    generation: str | None,
) -> StreamResult:
    result = StreamResult(stream.name)
    started = time.monotonic()
    observer.stream_started(stream.name)
    repo: StreamRepository | None = None
    log_id: int | None = None
    try:
        repo = await pool.stream(stream)
        state = await repo.read_state()
        if generation is not None and state.get("generation") == generation and state.get("walk") == "done":
            result.status = "skipped"  # finished by an earlier, interrupted run of this full walk
            return result
        if not options.dry_run:
            log_id = await repo.start_log(run_id, options.sync_type)
        walker = _walk_export if stream.feed is FeedKind.EXPORT else _walk_list
        await walker(client, repo, stream, options, state, log_id, result, observer, generation)
        result.status = "partial" if result.quarantined else "completed"
        result.exit_code = ExitCode.PARTIAL if result.quarantined else ExitCode.OK
    except StsyncError as exc:
        result.status, result.error, result.exit_code = "failed", exc.message, exc.exit_code
        log.error("%s: %s", stream.name, exc.message)
    except Exception as exc:  # a bug in one stream must not hide the others' results
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        result.exit_code = exit_code_for(exc)
        log.exception("%s: unexpected error", stream.name)
    finally:
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if repo is not None:
            if log_id is not None:
                try:
                    await repo.finish_log(log_id, result.status, result.error)
                except StsyncError as exc:
                    log.error("%s: %s", stream.name, exc.message)
            await repo.close()
            pool.release(repo)
    observer.stream_finished(result)
    return result


@contextlib.asynccontextmanager
async def _pipelined(
    fetch_pages: Callable[[], AsyncIterator[Page]], release: Callable[[Page], None]
) -> AsyncIterator[AsyncIterator[Page]]:
    """Pages while the next one is already downloading (one page of read-ahead).

    The consumer releases each page it was given (see ``ServiceTitanClient.release``). Leaving the
    context, however the walk ended, stops the download and releases every page fetched but not handed
    over, within the stream's own task: a failed write must not leave page bytes held in the budget.
    """
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        try:
            async for page in fetch_pages():
                try:
                    await queue.put(page)
                except BaseException:
                    release(page)
                    raise
                del page  # do not keep the body alive while the next page downloads
            await queue.put(None)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nobody reads the queue any more
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)

    def drain() -> None:
        while not queue.empty():
            left = queue.get_nowait()
            if isinstance(left, Page):
                release(left)

    async def pages() -> AsyncGenerator[Page, None]:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item  # the consumer is done with it; do not hold it while waiting for the next

    producer = asyncio.create_task(produce())
    handed = pages()
    try:
        yield handed
    finally:
        await handed.aclose()  # drops the page it may still refer to
        producer.cancel()
        drain()  # frees the queue's slot, so a producer blocked on put() can see its cancellation
        with contextlib.suppress(asyncio.CancelledError, Exception):  # already reported via the queue
            await producer
        drain()


async def _write(
    client: ServiceTitanClient,
    repo: StreamRepository,
    page: Page,
    log_id: int | None,
    checkpoint: dict[str, str | None],
    result: StreamResult,
    observer: Observer,
    stream: Stream,
) -> PageCounts:
    """Write one page (or only count it, in a dry run) and give its bytes back to the budget, whatever happens."""
    try:
        if log_id is None:  # dry run: count, write nothing
            count = page.count if page.count >= 0 else len(orjson.loads(page.body)["data"])
            counts = PageCounts(count, 0, 0, 0, 0, None)
        else:
            counts = await repo.write_page(page.body, log_id, checkpoint, empty=page.count == 0)
    finally:
        client.release(page)
    result.add(counts)
    observer.page_written(stream.name, result)
    return counts


async def _walk_export(
    client: ServiceTitanClient,
    repo: StreamRepository,
    stream: Stream,
    options: SyncOptions,
    state: dict[str, str],
    log_id: int | None,
    result: StreamResult,
    observer: Observer,
    generation: str | None,
) -> None:
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
            )
            more, cursor = page.has_more, page.continue_from
            yield page
            del page  # keep no page body alive across the next download
            if not more:
                return

    async def walk_from(first: str | None) -> None:
        nonlocal high_water
        async with _pipelined(lambda: pages_from(first), client.release) as pages:
            async for page in pages:
                checkpoint: dict[str, str | None] = {
                    "continue_from": page.continue_from,
                    "walk": walk if page.has_more else "done",
                    "high_water": high_water,  # the repository raises it to the page's newest modifiedOn
                }
                if generation is not None:
                    checkpoint["generation"] = generation
                counts = await _write(client, repo, page, log_id, checkpoint, result, observer, stream)
                del page  # the loop variable would hold the body until the next page arrives
                high_water = later(high_water, counts.max_modified_on)

    try:
        await walk_from(start)
    except ContinuationRejected:
        # Tokens are opaque and their lifetime is undocumented: fall back to the date we know.
        log.warning("%s: continuation token rejected; resuming from %s", stream.name, high_water or "the start")
        await walk_from(high_water)


async def _walk_list(
    client: ServiceTitanClient,
    repo: StreamRepository,
    stream: Stream,
    options: SyncOptions,
    state: dict[str, str],
    log_id: int | None,
    result: StreamResult,
    observer: Observer,
    generation: str | None,
) -> None:
    params = dict(stream.list_params)
    since = options.since or (state.get("high_water") if options.sync_type == "incremental" else None)
    if since:
        params["modifiedOnOrAfter"] = since
    page_size = options.page_size

    async def pages() -> AsyncGenerator[Page, None]:
        number = 1
        while True:
            page = await client.list_page(stream.module, stream.list_path, number, page_size, params)
            more = page.has_more
            yield page
            del page  # keep no page body alive across the next download
            if not more:
                return
            number += 1

    high_water = state.get("high_water")
    async with _pipelined(pages, client.release) as walk:
        async for page in walk:
            # Pages come in id order, so the high-water mark may only move with the last page;
            # until then the newest modifiedOn seen is carried in memory.
            checkpoint: dict[str, str | None] = {} if page.has_more else {"high_water": high_water, "walk": "done"}
            if generation is not None and not page.has_more:
                checkpoint["generation"] = generation
            counts = await _write(client, repo, page, log_id, checkpoint, result, observer, stream)
            del page  # the loop variable would hold the body until the next page arrives
            high_water = later(high_water, counts.max_modified_on)
