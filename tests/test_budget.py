"""The page-memory budget: what it admits, and that a real run (faults included) gives every byte back."""

from __future__ import annotations

import asyncio
from typing import Any

from stsync.budget import ByteBudget
from stsync.sandbox import Sandbox, SandboxOptions
from stsync.servicetitan.client import ServiceTitanClient
from tests.e2e.harness import sync_in_process


def test_waits_while_over_the_limit_and_admits_an_oversized_page_alone() -> None:
    async def go() -> list[str]:
        budget = ByteBudget(100)
        events: list[str] = []
        await budget.acquire(60)
        waiter = asyncio.create_task(budget.acquire(50))
        await asyncio.sleep(0)  # let the waiter run up to its wait
        events.append(f"waiting={not waiter.done()} held={budget.held}")
        budget.release(60)
        await waiter
        events.append(f"admitted held={budget.held}")
        budget.release(50)
        await budget.acquire(500)  # larger than the budget, but nothing else is held
        events.append(f"oversized held={budget.held} peak={budget.peak}")
        return events

    assert asyncio.run(go()) == ["waiting=True held=60", "admitted held=50", "oversized held=500 peak=500"]


def test_a_sync_under_a_tight_budget_and_faults_returns_every_byte(db_dsn: str) -> None:
    """A 1-byte budget serialises page downloads; truncated bodies and resets are retried. At the end the
    mirror is complete and nothing is left held (a leak would stall the next page forever)."""
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=100)) as sb:
        sb.faults.set(
            {
                "rules": [
                    {"kind": "truncate", "count": 2, "path": "/export/"},
                    {"kind": "drop", "count": 2, "path": "/export/"},
                ]
            }
        )
        run = sync_in_process(sb.url, db_dsn, page_memory_bytes=1)
    result, held, peak = run.result, run.held, run.peak
    assert [s.name for s in result.streams if s.status != "completed"] == []
    assert result.totals()["fetched"] == sum(len(v) for v in sb.world.dump().values())
    assert held == 0
    assert peak > 1


def test_a_failed_write_with_a_page_read_ahead_leaks_nothing(db_dsn: str, monkeypatch: Any) -> None:
    """One stream's write fails while its next page waits in the read-ahead queue and the page after is
    downloading: that stream fails alone, every other stream completes, and the budget ends at zero (a leaked
    reservation would stall every later page)."""
    from stsync.errors import DatabaseUnavailable
    from stsync.sync import repository

    failing = "invoice_items"  # 400 items in 100-record pages: four pages
    real_write, real_export = repository.StreamRepository.write_page, ServiceTitanClient.export_page
    asked: list[str] = []
    third_asked = asyncio.Event()

    async def export_page(self: Any, module: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("invoice-items"):
            asked.append(path)
            if len(asked) == 3:  # page 2 is queued; the producer is on page 3
                third_asked.set()
        return await real_export(self, module, path, *args, **kwargs)

    async def write_page(self: Any, body: Any, log: Any, checkpoint: Any, **kwargs: Any) -> Any:
        if self.stream.name == failing:
            await third_asked.wait()
            raise DatabaseUnavailable("database error while writing a page: injected")
        return await real_write(self, body, log, checkpoint, **kwargs)

    monkeypatch.setattr(ServiceTitanClient, "export_page", export_page)
    monkeypatch.setattr(repository.StreamRepository, "write_page", write_page)
    with Sandbox.start(SandboxOptions(scale="small", seed=5, export_batch_size=100)) as sb:
        run = sync_in_process(sb.url, db_dsn)
    result, held = run.result, run.held
    statuses = {s.name: s.status for s in result.streams}
    assert statuses.pop(failing) == "failed"
    assert set(statuses.values()) == {"completed"}
    assert held == 0
    assert len(asked) >= 3


def test_waiters_are_served_in_order_and_a_cancelled_one_steps_aside() -> None:
    """A small request that would fit does not overtake a larger one already waiting; a waiter that is
    cancelled leaves the line without holding anything."""

    async def go() -> tuple[list[str], int]:
        budget = ByteBudget(100)
        order: list[str] = []
        await budget.acquire(60)

        async def take(name: str, size: int) -> None:
            await budget.acquire(size)
            order.append(name)

        big = asyncio.create_task(take("big", 50))
        await asyncio.sleep(0)
        small = asyncio.create_task(take("small", 10))
        gone = asyncio.create_task(take("gone", 30))
        await asyncio.sleep(0)
        assert order == [], "the small one must wait behind the big one"
        gone.cancel()
        budget.release(60)
        await asyncio.gather(big, small, return_exceptions=True)
        return order, budget.held

    order, held = asyncio.run(go())
    assert order == ["big", "small"]
    assert held == 60
