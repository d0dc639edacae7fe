"""The sync engine: schedule every selected stream of a run, walk its feed (``stsync.sync.feeds``) and hand
its pages to the repository.

- One run at a time per tenant (``RunLock``). Every stream starts downloading at once; it writes when
  the streams it depends on have finished (customers and locations, then jobs, then the rest), holding
  one of ``max_concurrency`` writer slots. Pages downloaded before a stream's turn come out of a smaller
  part of the page budget, so they never hold the memory the streams ahead of it need.
- Each page commits together with its checkpoint. The next page downloads while the current one
  is written (``stsync.sync.pipeline``); if it has downloaded already, it is
  loaded (COPYed) on a spare connection meanwhile and merged there once the current page has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from stsync.budget import Lane
from stsync.errors import AccessDenied, ExitCode, Outage, StsyncError, exit_code_for
from stsync.servicetitan.client import Page, ServiceTitanClient
from stsync.sync.backfill import walk_backfill
from stsync.sync.feeds import walk_export, walk_list
from stsync.sync.merge import Capture
from stsync.sync.model import Observer, RunResult, Silent, StreamResult, SyncOptions
from stsync.sync.pipeline import Downloads, pipelined
from stsync.sync.repository import ConnectionPool, PageCounts, RunLock, StreamRepository, SyncLog
from stsync.sync.streams import FeedKind, Stream

log = logging.getLogger("stsync.sync")


async def run_sync(
    client: ServiceTitanClient,
    streams: list[Stream],
    options: SyncOptions,
    observer: Observer | None = None,
) -> RunResult:
    """Run one sync over ``streams``; never raises for a single stream's failure (see the result)."""
    observer = observer or Silent()
    result = RunResult(uuid.uuid4(), options.sync_type, options.dry_run)
    started = time.monotonic()
    # The token is asked for while the run lock is taken: one round trip less before the first page.
    authenticating = asyncio.ensure_future(client.authenticate())
    try:
        async with RunLock(options.dsn, options.tenant_id, options.connect_timeout) as lock:
            await authenticating
            result.streams = await _run_streams(lock, client, streams, options, observer, result.run_id)
            if not options.dry_run:
                analyzing = time.monotonic()
                result.analyzed = await _refresh_statistics(lock, streams, result.streams)
                result.analyze_ms = int((time.monotonic() - analyzing) * 1000)
    finally:
        if not authenticating.done():
            authenticating.cancel()
        elif not authenticating.cancelled():
            authenticating.exception()  # when the lock failed first, its error is the one reported
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.requests = client.requests_sent
    return result


async def _run_streams(
    lock: RunLock,
    client: ServiceTitanClient,
    streams: list[Stream],
    options: SyncOptions,
    observer: Observer,
    run_id: uuid.UUID,
) -> list[StreamResult]:
    generation = await _full_generation(lock, options, run_id)
    checkpoints = await lock.read_state("")
    writers = asyncio.Semaphore(options.max_concurrency)
    pool = ConnectionPool(options.dsn, options.connect_timeout, spares_below=options.max_concurrency)
    tasks: dict[str, asyncio.Task[StreamResult]] = {}
    try:
        runs = []
        for stream in streams:
            turn = _Turn(writers, client.budget.lane(writing=False, priority=stream.volume))
            runs.append(_StreamRun(lock, pool, client, stream, options, observer, run_id, generation, turn))
        # Tasks take their first steps in the order they are created: the streams send their first requests
        # in _start_order, and take their writer slots in the streams' order (reference data, small and written
        # at once, first), so the memory kept for the streams that wait is not spent on reference pages.
        for run in _start_order(runs):
            tasks[run.stream.name] = asyncio.create_task(run.run(_stream_state(checkpoints, run.stream.name)))
        for run in runs:  # before any task has started
            run.turn.deps = [tasks[name] for name in run.stream.depends_on if name in tasks]
            run.turn.start()
        results = list(await asyncio.gather(*(tasks[stream.name] for stream in streams)))
    finally:
        await pool.close()
    _judge_denied(results, {s.name: s.module for s in streams})
    jobs = next((s for s in results if s.name == "jobs"), None)
    moved = options.sync_type != "backfill" and not options.dry_run  # a backfill moves no cursor
    if jobs is not None and jobs.status in ("completed", "partial") and moved:
        # The seed's job sync kept its cursor under this key; tools that read it keep working.
        await lock.write_state("", {"lastJobPull": datetime.now(UTC).isoformat()})
    # A stream refused for want of a scope does not hold the full walk open: the next `sync full` would
    # otherwise resume it, skipping every other stream, night after night.
    if generation and all(s.status in ("completed", "partial", "skipped") or s.denied for s in results):
        await lock.write_state("full_run.", {"status": "done"})
    return results


def _judge_denied(results: list[StreamResult], modules: dict[str, str]) -> None:
    """A stream refused with HTTP 403 (for a reason that does not name the app key or the tenant) while others
    were served, or skipped as already done, lacks its module's scope: the run is partial. When every stream
    was refused, nothing synced: a config error, naming the modules."""
    if results and all(r.denied for r in results):
        refused = ", ".join(sorted({modules[r.name] for r in results}))
        for r in results:
            r.exit_code, r.outage = ExitCode.CONFIG, True  # one error for the run, as an outage is
            r.error = (
                f"ServiceTitan refused every stream of the run (HTTP 403 from its {refused} API): the app lacks "
                "that scope, or servicetitan.app_key or servicetitan.tenant_id is wrong"
            )


async def _refresh_statistics(lock: RunLock, streams: list[Stream], results: list[StreamResult]) -> list[str]:
    """ANALYZE the tables the run changed much, so that no reader after a bulk load meets a planner without
    statistics. Best effort: a failure is logged, and the next run's check still finds the tables due. Not
    tried when the run met an outage: the run reports that once."""
    if any(r.outage for r in results):
        return []
    changed: dict[str, int] = {}
    for stream, res in zip(streams, results, strict=True):
        for table in (stream.table, *(child.table for child in stream.children)):  # a child counts as its parent
            key = f"servicetitan.{table}"
            changed[key] = changed.get(key, 0) + res.created + res.updated
    try:
        return await lock.refresh_statistics(changed)
    except Outage:
        return []  # the database went away just now; the run's own error, if any, says so
    except StsyncError as exc:
        log.warning("planner statistics not refreshed: %s", exc.message)
        return []


def _start_order(runs: list[_StreamRun]) -> list[_StreamRun]:
    """The order the streams start in, so that of their first requests: the longest chain of work first.

    A stream's chain is its own volume plus the longest chain among the streams that wait for it, as in list
    scheduling's upward rank: locations, customers and jobs (which the rest wait for), then invoice items,
    the largest feed. So jobs' first page takes the memory kept for waiting streams before the pages of the
    streams that wait for jobs do, and when latency rather than writing decides, invoice items' chain of
    pages starts with the run's fourth request, not its twentieth.
    """
    streams = {run.stream.name: run.stream for run in runs}

    @functools.cache
    def chain(name: str) -> int:
        waiting = [s.name for s in streams.values() if name in s.depends_on]
        return streams[name].volume + max(map(chain, waiting), default=0)

    return sorted(runs, key=lambda run: -chain(run.stream.name))


def _stream_state(checkpoints: dict[str, str], name: str) -> dict[str, str]:
    """One stream's checkpoints ('continue_from', 'high_water', 'walk', 'generation', 'seeded') out of all."""
    prefix = f"{name}."
    return {key[len(prefix) :]: value for key, value in checkpoints.items() if key.startswith(prefix)}


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


@dataclass
class _Turn:
    """When a stream may write: after the streams it depends on have finished, holding one of the run's
    ``max_concurrency`` writer slots. Its downloads start at once and take their memory from the ahead
    budget until then (see ``stsync.budget.PageBudget``).

    The turn is taken by its own task as soon as it is due, not when the stream's first page arrives: a
    stream that others wait for must never need the ahead budget that those others fill.
    """

    writers: asyncio.Semaphore
    lane: Lane
    deps: list[asyncio.Task[StreamResult]] = field(default_factory=list)
    holding: bool = False
    _taking: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._taking = asyncio.ensure_future(self._take())

    async def _take(self) -> None:
        if self.deps:
            await asyncio.wait(self.deps)
        await self.writers.acquire()
        self.holding = True  # no await between taking the slot and this line: done() always sees it
        self.lane.start_writing()

    async def wait(self) -> None:
        assert self._taking is not None
        if not self.holding:
            await asyncio.shield(self._taking)

    async def settle(self) -> None:
        """Stop waiting for the turn (the stream has ended); afterwards ``holding`` says whether it came."""
        if self._taking is not None and not self._taking.done():
            self._taking.cancel()
            await asyncio.wait((self._taking,))

    def done(self) -> None:
        if self._taking is not None and not self._taking.done():
            self._taking.cancel()
        if self.holding:
            self.holding = False
            self.writers.release()


class _StreamRun:
    """One stream of one run: its downloads, and once its turn comes, its writes and its sync log."""

    def __init__(
        self,
        lock: RunLock,
        pool: ConnectionPool,
        client: ServiceTitanClient,
        stream: Stream,
        options: SyncOptions,
        observer: Observer,
        run_id: uuid.UUID,
        generation: str | None,
        turn: _Turn,
    ) -> None:
        self.lock, self.pool, self.client, self.stream, self.options = lock, pool, client, stream, options
        self.observer, self.run_id, self.generation, self.turn = observer, run_id, generation, turn
        self.result = StreamResult(stream.name)
        self.repo: StreamRepository | None = None  # the connection the stream's next page is merged on
        self.spare: StreamRepository | None = None  # a second one, which meanwhile loads the page after it
        self.loading: asyncio.Task[bool] | None = None  # the load of the next page handed over, if any
        self.log: SyncLog | None = None  # None in a dry run
        self.capture: Capture | None = None  # set by ``run`` from the stream's checkpoints

    @property
    def lane(self) -> Lane:
        """The part of the page budget the stream's downloads take their memory from."""
        return self.turn.lane

    async def run(self, state: dict[str, str]) -> StreamResult:
        result, stream = self.result, self.stream
        # A stream is seeded once a walk of it has finished: before that, its pages are its history.
        seeded = state.get("seeded") == "yes" or state.get("walk") == "done"
        if seeded or self.options.capture_first_sync:
            self.capture = self.options.capture
        started = time.monotonic()
        if not self.options.dry_run:
            self.log = SyncLog(self.run_id, stream.name, self.options.sync_type, datetime.now(UTC))
        self.observer.stream_started(stream.name)
        if self.generation is not None and state.get("generation") == self.generation and state.get("walk") == "done":
            result.status = "skipped"  # finished by an earlier, interrupted run of this full walk
            self.turn.done()
            self.observer.stream_finished(result)
            return result
        try:
            if self.options.backfill is not None:
                await walk_backfill(self, state, self.options.backfill[stream.name])
            elif stream.feed is FeedKind.EXPORT:
                await walk_export(self, state)
            else:
                await walk_list(self, state)
            result.status = "partial" if result.quarantined else "completed"
            result.exit_code = ExitCode.PARTIAL if result.quarantined else ExitCode.OK
        except Outage as exc:  # every stream stops with it: reported once, for the run
            result.status, result.error, result.exit_code = "failed", exc.message, exc.exit_code
            result.outage = True
        except AccessDenied as exc:  # the others go on; _judge_denied decides what it means for the run
            result.status, result.exit_code, result.denied = "failed", ExitCode.PARTIAL, True
            result.error = (
                f"no access to ServiceTitan's {exc.module} API (HTTP 403): the app lacks its scope; add it to the "
                f"app, or list {stream.name} in sync.streams_exclude"
            )
            log.warning("%s: %s", stream.name, result.error)
        except StsyncError as exc:
            result.status, result.error, result.exit_code = "failed", exc.message, exc.exit_code
            log.error("%s: %s", stream.name, exc.message)
        except Exception as exc:  # a bug in one stream must not hide the others' results
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
            result.exit_code = exit_code_for(exc)
            log.exception("%s: unexpected error", stream.name)
        except BaseException:  # Ctrl-C or SIGTERM: the run is being stopped
            result.status, result.error = "failed", "interrupted: the run was stopped"
            raise
        finally:
            result.duration_ms = int((time.monotonic() - started) * 1000)
            await self._close()
        self.observer.stream_finished(result)
        return result

    async def write(
        self,
        page: Page,
        checkpoint: dict[str, str | None],
        upcoming: Callable[[], Page | None] = lambda: None,
        last: bool | None = None,
    ) -> PageCounts:
        """Write one page (or only count it, in a dry run) and give its bytes back to the budget, whatever
        happens. The first page waits for the stream's turn (see ``_Turn``). The next page, if ``upcoming``
        says it has downloaded by then, is loaded on a spare connection while this one merges. ``last``: the
        walk's last page, which finishes the stream's log row (default: the feed's last page)."""
        last = not page.has_more if last is None else last
        try:
            await self.turn.wait()
            if self.log is None:  # dry run: count, write nothing
                count = page.count if page.count >= 0 else len(orjson.loads(page.body)["data"])
                counts = PageCounts(count, 0, 0, 0, 0, None)
            elif page.count == 0 and self.repo is None:  # nothing to merge, and no connection taken yet
                counts = await self.lock.record_empty_page(self.stream.name, self.log, checkpoint, last)
            else:
                loaded = await self._loaded()
                if self.repo is None:
                    self.repo = await self.pool.stream(self.stream, self.capture)
                following = upcoming()
                if following is not None and following.count != 0:
                    self._load(following)
                elif self.spare is not None:  # nothing to load ahead: let another stream have it
                    self.pool.release(self.spare)
                    self.spare = None
                counts = await self.repo.write_page(
                    page.body, self.log, checkpoint, empty=page.count == 0, last=last, loaded=loaded
                )
        finally:
            self.client.release(page)
        self.result.add(counts)
        self.observer.page_written(self.stream.name, self.result)
        return counts

    @contextlib.asynccontextmanager
    async def downloading(self, fetch_pages: Callable[[], AsyncIterator[Page]]) -> AsyncIterator[Downloads]:
        """The stream's pages as they download (``stsync.sync.pipeline.pipelined``). However the walk ends, a
        page still loading ahead is dropped before the pages left unwritten go back to the budget."""
        async with pipelined(fetch_pages, self.client.release, lambda: self.turn.holding) as pages:
            try:
                yield pages
            finally:
                await self._stop_loading()

    def _load(self, page: Page) -> None:
        """COPY ``page`` on the spare connection (taking one if the pool has one to spare) while the current
        page merges. It is merged only once the current page has committed, so pages still commit in order
        and never wait for each other's row locks."""

        async def load() -> bool:
            if self.spare is None:
                self.spare = await self.pool.spare(self.stream, self.capture)
                if self.spare is None:
                    return False
            await self.spare.load(page.body)
            return True

        self.loading = asyncio.ensure_future(load())

    async def _loaded(self) -> bool:
        """Whether the page being written (the one ``_load`` was given before) was loaded ahead; its connection
        then becomes the one it merges on. A load that failed fails the page, as its own COPY would have."""
        if self.loading is None:
            return False
        try:
            if not await self.loading:
                return False
        finally:
            self.loading = None
        self.repo, self.spare = self.spare, self.repo
        return True

    async def _stop_loading(self) -> None:
        """Drop a page being loaded ahead (the walk ended first): its COPY is cancelled and rolled back."""
        if self.loading is None:
            return
        task, self.loading = self.loading, None
        task.cancel()
        await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # a failed load of a page that will not be written is not this page's error
        if self.spare is not None:
            await self.spare.close()

    async def _close(self) -> None:
        """Record how the stream ended unless its last page did, and hand its connections back."""
        repo, self.repo = self.repo, None
        spare, self.spare = self.spare, None
        if spare is not None:
            await spare.close()
            self.pool.release(spare)
        try:
            if self.log is not None and not self.log.finished:
                # Failed (or a walk that ended without a last page). A stream that failed before writing has no
                # connection yet: it takes one within the writer slots (its own, if its turn had come).
                if repo is None:
                    await self.turn.settle()  # else a turn still queued for a slot could take the one asked for here
                    async with contextlib.nullcontext() if self.turn.holding else self.turn.writers:
                        repo = await self.pool.stream(self.stream)
                await repo.finish_log(self.log, self.result.status, self.result.error)
        except Outage:
            pass  # the database is down: the run reports that once
        except StsyncError as exc:
            log.error("%s: %s", self.stream.name, exc.message)
        finally:
            self.turn.done()
            if repo is not None:
                await repo.close()
                self.pool.release(repo)
