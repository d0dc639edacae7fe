"""The engine's schedule, against the sandbox and a real PostgreSQL: every stream downloads from the start,
writes wait for the streams they depend on, and each stream's sync-log row is written with its pages."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import psycopg
import pytest

from stsync.budget import PageBudget
from stsync.config import load_config
from stsync.errors import ExitCode
from stsync.retry import RetryPolicy, set_no_wait
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.servicetitan.client import ServiceTitanClient
from stsync.sync import repository
from stsync.sync.service import client_settings
from stsync.sync.streams import REFERENCE_STREAMS, STREAMS, STREAMS_BY_NAME
from tests.e2e.harness import cli_env, sync_in_process


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Any:
    """Requests that keep failing are retried without waiting (the retries themselves are tested elsewhere)."""
    set_no_wait(True)
    yield
    set_no_wait(False)


def _run(sb: Sandbox, dsn: str, sync_type: str = "full") -> Any:
    return sync_in_process(sb.url, dsn, sync_type=sync_type).result


def test_dependents_download_while_their_parents_write_and_write_after_them(db_dsn: str, monkeypatch: Any) -> None:
    """jobs may not write before customers and locations are done, nor invoice items before jobs. The jobs
    stream's first write is held until invoice items has downloaded every one of its pages: that finishes
    only if a stream downloads before its turn to write (an engine that fetched a stream only after its
    parents finished would time out here)."""
    items = STREAMS_BY_NAME["invoice_items"]
    written: list[str] = []
    asked = 0
    all_items_downloaded = asyncio.Event()
    real_write, real_export = repository.StreamRepository.write_page, ServiceTitanClient.export_page

    async def export_page(self: Any, module: str, path: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        page = await real_export(self, module, path, *args, **kwargs)
        if path == items.export_path:
            asked += 1
            if not page.has_more:
                all_items_downloaded.set()
        return page

    async def write_page(self: Any, body: Any, log: Any, checkpoint: Any, **kwargs: Any) -> Any:
        if self.stream.name == "jobs" and "jobs" not in written:
            await asyncio.wait_for(all_items_downloaded.wait(), timeout=60)
        written.append(self.stream.name)
        return await real_write(self, body, log, checkpoint, **kwargs)

    monkeypatch.setattr(ServiceTitanClient, "export_page", export_page)
    monkeypatch.setattr(repository.StreamRepository, "write_page", write_page)
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=100)) as sb:
        result = _run(sb, db_dsn)
    assert {s.name: s.status for s in result.streams if s.status != "completed"} == {}
    assert asked == 4  # 400 invoice items in pages of 100
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for n, name in enumerate(written):
        first.setdefault(name, n)
        last[name] = n
    for stream in STREAMS:
        for parent in stream.depends_on:
            assert last[parent] < first[stream.name], f"{stream.name} wrote before {parent} was done"


def test_streams_start_longest_chain_of_work_first(db_dsn: str, monkeypatch: Any) -> None:
    """A run lasts as long as its longest chain of work. locations, customers and jobs, which every other
    large stream waits for, ask for their first pages first, then invoice items, the largest feed (its
    place in STREAMS is last but one); the small reference streams come last."""
    asked: list[str] = []
    real_get = ServiceTitanClient.get

    async def get(self: Any, module: str, path: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(path)
        return await real_get(self, module, path, *args, **kwargs)

    monkeypatch.setattr(ServiceTitanClient, "get", get)
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        result = _run(sb, db_dsn)
    assert {s.name: s.status for s in result.streams if s.status != "completed"} == {}
    path = {s.export_path or s.list_path: s.name for s in STREAMS}
    started = [path[p] for p in dict.fromkeys(asked)]
    assert started[:4] == ["locations", "customers", "jobs", "invoice_items"]
    assert set(started[-len(REFERENCE_STREAMS) :]) == set(REFERENCE_STREAMS)
    assert [s.name for s in result.streams] == [s.name for s in STREAMS], "results keep the streams' order"


def test_writer_slots_go_in_the_streams_order_whatever_order_they_start_in(db_dsn: str, monkeypatch: Any) -> None:
    """Streams start longest chain first, but take their writer slots in STREAMS' order: the reference
    streams, whose small pages are written at once, first. (Were they queued last, their first pages would
    wait in the memory kept for waiting streams, which the large feeds' pages fill.)"""
    first_writes: list[str] = []
    real_write = repository.StreamRepository.write_page

    async def write_page(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.stream.name not in first_writes:
            first_writes.append(self.stream.name)
        return await real_write(self, *args, **kwargs)

    monkeypatch.setattr(repository.StreamRepository, "write_page", write_page)
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        result = sync_in_process(sb.url, db_dsn, max_concurrency=1).result
    assert result.exit_code == ExitCode.OK
    independent = [s.name for s in STREAMS if not s.depends_on]
    assert [name for name in first_writes if name in independent] == independent


def test_once_its_turn_comes_a_stream_downloads_on_while_its_pages_fetched_ahead_are_written(
    db_dsn: str, monkeypatch: Any
) -> None:
    """Invoice items has three pages downloaded ahead when its turn to write comes (after jobs). Writing them
    must not hold back the download of the next ones: each page of an export feed waits for the one before
    it, so a pause there lengthens the run by the time the backlog takes to write. Its writes are held here
    until two more pages have arrived (one queued and one downloaded, as for any writing stream): a stream
    that paused its downloads until the backlog was written would never finish."""
    items = STREAMS_BY_NAME["invoice_items"]
    asked = 0
    three_ahead, jobs_done, two_more = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_write, real_export = repository.StreamRepository.write_page, ServiceTitanClient.export_page

    async def export_page(self: Any, module: str, path: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        if path == items.export_path and asked == 3:
            await jobs_done.wait()  # the fourth page is asked for once the turn has come
        page = await real_export(self, module, path, *args, **kwargs)
        if path == items.export_path:
            asked += 1
            if asked == 3:
                three_ahead.set()
            if asked == 5:
                two_more.set()
        return page

    async def write_page(self: Any, body: Any, log: Any, checkpoint: Any, **kwargs: Any) -> Any:
        if self.stream.name == "jobs":
            await three_ahead.wait()
        if self.stream.name == "invoice_items":
            await two_more.wait()
        counts = await real_write(self, body, log, checkpoint, **kwargs)
        if self.stream.name == "jobs" and kwargs.get("last"):
            jobs_done.set()
        return counts

    monkeypatch.setattr(ServiceTitanClient, "export_page", export_page)
    monkeypatch.setattr(repository.StreamRepository, "write_page", write_page)
    names = ("customers", "locations", "jobs", "invoice_items")
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=50)) as sb:
        run = sync_in_process(sb.url, db_dsn, names, timeout=60)
    assert {s.name: s.status for s in run.result.streams} == dict.fromkeys(names, "completed")
    assert asked == 8  # 400 invoice items in pages of 50
    assert run.held == 0


class _InvoiceItemsPages:
    """Spies on invoice items' pages, written after customers, locations and jobs. Jobs' first page is merged
    only once invoice items has downloaded all its pages, so its next page is always there when it writes
    one; and each of its merges but the last is held until the next page's load has ended. ``done`` lists
    what was committed or loaded, in order: ('load' or 'write', the connection's backend pid, whether a
    written page had been loaded ahead). ``fail`` ends the connection of the n-th load or write (1-based,
    e.g. ('load', 2)) just before it, as a restarted server would."""

    def __init__(self, monkeypatch: Any, dsn: str, fail: tuple[str, int] | None = None) -> None:
        self.done: list[tuple[str, int, bool]] = []
        self.attempts = {"load": 0, "write": 0}
        self.loaded: dict[int, asyncio.Event] = {}
        downloaded = asyncio.Event()
        real_export = ServiceTitanClient.export_page
        real_load, real_write = repository.StreamRepository.load, repository.StreamRepository.write_page
        items = STREAMS_BY_NAME["invoice_items"]

        def attempt(repo: Any, what: str) -> int:
            self.attempts[what] += 1
            if fail == (what, self.attempts[what]):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(%s, 10000)", (repo.conn.info.backend_pid,))
            return self.attempts[what]

        async def export_page(client: Any, module: str, path: str, *args: Any, **kwargs: Any) -> Any:
            page = await real_export(client, module, path, *args, **kwargs)
            if path == items.export_path and not page.has_more:
                downloaded.set()
            return page

        async def load(repo: Any, body: Any) -> None:
            if repo.stream.name != "invoice_items":
                return await real_load(repo, body)
            n = attempt(repo, "load")
            try:
                await real_load(repo, body)
                self.done.append(("load", repo.conn.info.backend_pid, False))
            finally:
                self._loaded(n).set()

        async def write_page(repo: Any, body: Any, log: Any, checkpoint: Any, **kwargs: Any) -> Any:
            if repo.stream.name == "jobs":
                await asyncio.wait_for(downloaded.wait(), timeout=60)
            if repo.stream.name != "invoice_items":
                return await real_write(repo, body, log, checkpoint, **kwargs)
            if not kwargs.get("last"):
                await asyncio.wait_for(self._loaded(self.attempts["write"] + 1).wait(), timeout=60)
            attempt(repo, "write")
            pid = repo.conn.info.backend_pid
            counts = await real_write(repo, body, log, checkpoint, **kwargs)
            self.done.append(("write", pid, kwargs.get("loaded", False)))
            return counts

        monkeypatch.setattr(ServiceTitanClient, "export_page", export_page)
        monkeypatch.setattr(repository.StreamRepository, "load", load)
        monkeypatch.setattr(repository.StreamRepository, "write_page", write_page)

    def _loaded(self, n: int) -> asyncio.Event:
        return self.loaded.setdefault(n, asyncio.Event())

    def pids(self, what: str) -> list[int]:
        return [pid for did, pid, _ in self.done if did == what]


def _mirrored_items(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM servicetitan.st_invoice_items").fetchone()
    assert row is not None
    return int(row[0])


def test_a_writing_stream_loads_its_next_page_on_a_second_connection_while_the_page_before_merges(
    db_dsn: str, monkeypatch: Any
) -> None:
    """Invoice items' four pages have downloaded when its turn comes. Each page after the first is loaded
    (COPYed into the staging table) on a second connection while the page before it merges on the first,
    and is merged there once that page has committed. A merge is held here until the next page has been
    loaded: a stream that loaded its next page only after the merge would never finish."""
    pages = _InvoiceItemsPages(monkeypatch, db_dsn)
    names = ("customers", "locations", "jobs", "invoice_items")
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=100)) as sb:
        run = sync_in_process(sb.url, db_dsn, names, timeout=60)
    assert {s.name: s.status for s in run.result.streams} == dict.fromkeys(names, "completed")
    assert run.held == 0
    assert [(what, ahead) for what, _, ahead in pages.done] == [
        ("load", False),
        ("write", False),
        ("load", False),
        ("write", True),
        ("load", False),
        ("write", True),
        ("write", True),
    ]
    writes, loads = pages.pids("write"), pages.pids("load")
    for n in range(1, 4):  # page n+1 merges on the connection it was loaded on, not on page n's
        assert writes[n] == loads[n - 1] != writes[n - 1]
    assert _mirrored_items(db_dsn) == 400


@pytest.mark.parametrize(
    ("fail", "done", "committed"),
    [(("load", 2), ["load", "write", "write"], 200), (("write", 2), ["load", "write", "load"], 100)],
)
def test_a_page_loaded_ahead_fails_or_is_dropped_with_the_page_before_it(
    db_dsn: str, monkeypatch: Any, fail: tuple[str, int], done: list[str], committed: int
) -> None:
    """The server ends a connection of invoice items: the one loading its third page ahead (that page then
    fails when its turn comes, with the error its own COPY would have given), or the one merging its second
    page while the third is loaded (the loaded page is rolled back, never merged). Either way the pages
    before stay committed, the stream fails with a database error, and the rerun completes the mirror."""
    pages = _InvoiceItemsPages(monkeypatch, db_dsn, fail)
    names = ("customers", "locations", "jobs", "invoice_items")
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=100)) as sb:
        run = sync_in_process(sb.url, db_dsn, names, timeout=60)
        failed = {s.name: (s.status, s.exit_code) for s in run.result.streams if s.status != "completed"}
        assert failed == {"invoice_items": ("failed", ExitCode.UNAVAILABLE)}
        error = next(s.error for s in run.result.streams if s.name == "invoice_items")
        assert error is not None and error.startswith(
            "lost the database connection while writing a page of invoice_items"
        )
        assert run.held == 0
        assert [what for what, _, _ in pages.done] == done
        assert _mirrored_items(db_dsn) == committed
        monkeypatch.undo()
        rerun = sync_in_process(sb.url, db_dsn, names, timeout=60)
    assert rerun.result.exit_code == 0
    assert _mirrored_items(db_dsn) == 400


def test_a_waiting_download_moves_to_the_writing_budget_when_its_turn_comes() -> None:
    """A stream whose turn comes while its next page waits behind pages fetched ahead by streams that wait
    for it takes that page from the writing budget instead (waiting on would deadlock)."""

    async def go() -> tuple[bool, int, int]:
        budget = PageBudget(100)  # ahead: 50
        other, mine = budget.lane(writing=False), budget.lane(writing=False)
        assert await other.acquire(50) is budget.ahead  # the ahead budget is full
        waiting = asyncio.create_task(mine.acquire(40))
        await asyncio.sleep(0)
        still_waiting = not waiting.done()
        mine.start_writing()
        granted = await asyncio.wait_for(waiting, timeout=5)
        assert granted is budget.writing
        return still_waiting, budget.writing.held, budget.ahead.held

    assert asyncio.run(go()) == (True, 40, 50)


def test_a_cancelled_download_waiting_for_the_ahead_budget_holds_nothing() -> None:
    async def go() -> int:
        budget = PageBudget(100)
        other, mine = budget.lane(writing=False), budget.lane(writing=False)
        await other.acquire(50)
        waiting = asyncio.create_task(mine.acquire(10))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        budget.ahead.release(50)
        return budget.held

    assert asyncio.run(go()) == 0


def _log(dsn: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT stream, status, pages, error, completed_at >= started_at FROM servicetitan.st_sync_log "
            "WHERE run_id = (SELECT run_id FROM servicetitan.st_sync_log ORDER BY id DESC LIMIT 1)"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_streams_a_resumed_full_walk_skips_hold_no_writer_slot(db_dsn: str) -> None:
    """A `sync full` that resumes a killed one skips the streams it had finished. With a single writer slot,
    the one stream left to walk gets it: a skipped stream that kept the slot it was queued for would leave it
    waiting for ever (the run times out)."""
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        assert _run(sb, db_dsn).exit_code == ExitCode.OK
        with psycopg.connect(db_dsn) as conn:  # as if killed while walking invoice items
            conn.execute("UPDATE servicetitan.sync_state SET value = 'in_progress' WHERE key = 'full_run.status'")
            conn.execute("DELETE FROM servicetitan.sync_state WHERE key LIKE 'invoice_items.%'")
        # In a thread: a run stuck on a writer slot cannot be cancelled either (its stream waits for a slot to
        # record its failure), so the test stops waiting rather than the run.
        done: list[Any] = []
        runner = threading.Thread(
            target=lambda: done.append(sync_in_process(sb.url, db_dsn, max_concurrency=1).result), daemon=True
        )
        runner.start()
        runner.join(timeout=60)
        assert done, "the resumed run never finished: a skipped stream kept the writer slot"
    result = done[0]
    statuses = {s.name: s.status for s in result.streams}
    assert statuses.pop("invoice_items") == "completed"
    assert set(statuses.values()) == {"skipped"}
    assert result.exit_code == ExitCode.OK


def test_each_stream_has_one_finished_log_row_even_when_it_fails_before_its_first_page(db_dsn: str) -> None:
    """A run where nothing changed writes one finished row per stream; a stream whose first request keeps
    failing, so that it never wrote a page, still gets its row, 'failed' with the error."""
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        first = _run(sb, db_dsn)
        assert first.exit_code == 0
        unchanged = _run(sb, db_dsn, "incremental")
        assert unchanged.totals()["created"] + unchanged.totals()["updated"] == 0
        rows = _log(db_dsn)
        assert len(rows) == len(STREAMS)
        assert set(rows.values()) == {("completed", 1, None, True)}

        sb.faults.set({"rules": [{"kind": "status", "status": 503, "path": "/export/payments"}]})
        failing = _run(sb, db_dsn, "incremental")
        sb.faults.set({})
    assert {s.name for s in failing.streams if s.status == "failed"} == {"payments"}
    rows = _log(db_dsn)
    status, pages, error, finished = rows.pop("payments")
    assert (status, pages, finished) == ("failed", 0, True)
    assert "503" in error
    assert set(rows.values()) == {("completed", 1, None, True)}


def test_a_stream_with_nothing_new_takes_no_connection(db_dsn: str, monkeypatch: Any) -> None:
    """In a run where nothing changed, only the streams that got records back (reference lists without a
    modified-since filter, or whose newest record is asked for again) take a connection from the pool; the
    others are recorded on the lock's connection, and their checkpoints stay where they were."""
    took: list[str] = []
    real_stream = repository.ConnectionPool.stream

    async def stream(self: Any, s: Any, capture: Any = None) -> Any:
        took.append(s.name)
        return await real_stream(self, s, capture)

    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        assert _run(sb, db_dsn).exit_code == ExitCode.OK
        before = _state(db_dsn)
        monkeypatch.setattr(repository.ConnectionPool, "stream", stream)
        unchanged = _run(sb, db_dsn, "incremental")
    assert unchanged.exit_code == ExitCode.OK
    with_records = {s.name for s in unchanged.streams if s.fetched}
    assert set(took) == with_records
    assert len(with_records) < len(STREAMS) // 4, with_records
    after = _state(db_dsn)
    assert {k: v for k, v in after.items() if k != "lastJobPull"} == {
        k: v for k, v in before.items() if k != "lastJobPull"
    }


def _state(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT key, value FROM servicetitan.sync_state").fetchall())


def test_a_parent_whose_first_page_comes_last_is_not_starved_by_its_dependents(db_dsn: str) -> None:
    """customers and locations answer slowly, so jobs and installed equipment (which wait for them) fetch first
    and fill the one-byte ahead budget. customers and locations must still get their pages: their turn is due
    at once, so the pages come from the writing budget (were a first page to need the ahead budget, the run
    would never finish). The waiting streams hold no response open while they wait for memory: a first page
    with no room is closed unread and asked for again; a later page is asked for only once there is room."""
    names = ("customers", "locations", "jobs", "installed_equipment")
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=25)) as sb:
        sb.faults.set(
            {
                "rules": [
                    {"kind": "latency", "ms": 300, "path": "/export/customers"},
                    {"kind": "latency", "ms": 300, "path": "/export/locations"},
                ]
            }
        )
        run = sync_in_process(sb.url, db_dsn, names, timeout=60, page_memory_bytes=1)
        asked = {
            name: sum(1 for r in sb.requests if r["path"].endswith("/" + str(STREAMS_BY_NAME[name].export_path)))
            for name in names
        }
    assert {s.name: s.status for s in run.result.streams} == dict.fromkeys(names, "completed")
    assert run.held == 0
    pages = {s.name: s.pages for s in run.result.streams}
    waiting = ("jobs", "installed_equipment")
    assert sum(asked[n] for n in waiting) == sum(pages[n] for n in waiting) + 1  # one first page asked twice


@pytest.mark.parametrize("failing", ["customers", "locations"])
def test_a_stream_that_fails_with_one_writer_slot_records_its_failure(db_dsn: str, failing: str) -> None:
    """With one writer slot, customers takes it at once and locations queues for it; either one then fails on
    its first request. It records its failure within the slot it holds, or the next free one (asking for a
    slot while its own turn is still queued for it would wait for itself), and the run goes on."""
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        sb.faults.set({"rules": [{"kind": "status", "status": 503, "path": f"/export/{failing}"}]})
        names = ("customers", "locations", "jobs")
        result = sync_in_process(sb.url, db_dsn, names, max_concurrency=1, timeout=60).result
    expected = dict.fromkeys(("customers", "locations", "jobs"), "completed")
    expected[failing] = "failed"
    assert {s.name: s.status for s in result.streams} == expected
    assert _log(db_dsn)[failing][0] == "failed"


def test_a_waiting_stream_takes_a_body_of_unknown_length_only_while_the_ahead_budget_has_room() -> None:
    """No Content-Length (a chunked body): counted once read, so it is let in only while the ahead budget is
    not full; otherwise the stream waits for room like for any other page."""

    async def go() -> tuple[bool, bool]:
        budget = PageBudget(100)  # ahead: 50
        lane = budget.lane(writing=False)
        before = lane.take_at_once(0) is budget.ahead
        budget.ahead.grow(50)  # a body of unknown length, read: the ahead budget is full
        after = lane.take_at_once(0) is None
        return before, after

    assert asyncio.run(go()) == (True, True)


def test_a_waiting_stream_asking_again_for_room_does_not_renew_its_retries(monkeypatch: Any) -> None:
    """The ahead budget never has room at once (contended), and every body of the feed is cut short. Each
    failed attempt costs the stream a request closed unread (no room) and one read with the room it then
    waited for; after the policy's attempts it fails, instead of retrying for as long as it waits its turn."""
    from stsync.budget import Lane
    from stsync.errors import ApiUnavailable

    monkeypatch.setattr(Lane, "take_at_once", lambda self, size: None)
    with Sandbox.start(SandboxOptions(scale="small", seed=5)) as sb:
        sb.faults.set({"rules": [{"kind": "truncate", "path": "/export/jobs"}]})
        config = load_config(None, cli_env(sb.url, "postgresql://unused"))
        settings = dataclasses.replace(client_settings(config), retry=RetryPolicy(attempts=3))

        async def go() -> str:
            async with ServiceTitanClient(settings) as st:
                lane = st.budget.lane(writing=False)
                with pytest.raises(ApiUnavailable) as failure:
                    await asyncio.wait_for(st.export_page("jpm", "export/jobs", None, False, {}, lane), timeout=30)
                assert st.budget.held == 0
                return str(failure.value)

        message = asyncio.run(go())
        asked = sum(1 for r in sb.requests if r["path"].endswith("/export/jobs"))
    assert "unreachable" in message
    assert asked == 2 * 3
