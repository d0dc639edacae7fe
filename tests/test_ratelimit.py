"""The ServiceTitan client's sliding-window limiter, on a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from stsync import ratelimit
from stsync.ratelimit import WindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(ratelimit.asyncio, "sleep", fake.sleep)
    return fake


def send_times(limiter: WindowLimiter, clock: FakeClock, n: int) -> list[float]:
    async def go() -> list[float]:
        times = []
        for _ in range(n):
            await limiter.acquire()
            times.append(round(clock.now - 1000.0, 6))
        return times

    return asyncio.run(go())


def test_a_short_run_goes_out_at_once(clock: FakeClock) -> None:
    """23 requests under a limit of 50 per second: none waits (a no-change incremental run)."""
    assert send_times(WindowLimiter(50), clock, 23) == [0.0] * 23
    assert clock.slept == []


def test_never_more_than_the_limit_in_any_window(clock: FakeClock) -> None:
    times = send_times(WindowLimiter(5, per=1.0), clock, 12)
    assert times == [0.0] * 5 + [1.0] * 5 + [2.0] * 2
    for i, t in enumerate(times):
        assert sum(1 for u in times if t - 1.0 < u <= t) <= 5, f"request {i} exceeds 5 per second"


def test_a_429_pauses_every_caller(clock: FakeClock) -> None:
    limiter = WindowLimiter(50)
    send_times(limiter, clock, 1)
    limiter.pause(3.0)
    assert send_times(limiter, clock, 1) == [3.0]


@pytest.mark.parametrize(
    ("rate", "limit", "per"), [(50.0, 50, 1.0), (60, 60, 1.0), (0.5, 1, 2.0), (1.5, 3, 2.0), (10.9, 109, 10.0)]
)
def test_fractional_rates_keep_their_value(rate: float, limit: int, per: float) -> None:
    limiter = WindowLimiter.per_second(rate)
    assert (limiter.limit, limiter.per) == (limit, per)


def test_waiting_requests_go_by_priority_and_the_top_one_past_a_window_the_others_filled(clock: FakeClock) -> None:
    """The largest feed's chain of pages decides how long a sync takes. While it is sending, a fifth of each
    window is kept for it: when the other feeds have filled the rest, its next page still goes at once,
    ahead of the requests already waiting, instead of when the window slides."""
    limiter = WindowLimiter(10)  # keeps 2 of every window for the top priority

    async def go() -> list[tuple[str, float]]:
        sent: list[tuple[str, float]] = []

        async def ask(priority: int, label: str) -> None:
            await limiter.acquire(priority)
            sent.append((label, round(clock.now - 1000.0, 6)))

        await ask(5, "top")  # the largest feed's first page
        await asyncio.gather(*(ask(1, f"small{i}") for i in range(9)), ask(5, "top"))
        return sent

    sent = asyncio.run(go())
    assert sent[:8] == [("top", 0.0)] + [(f"small{i}", 0.0) for i in range(7)]
    assert sent[8] == ("top", 0.0), "the top priority waited behind the others"
    assert sorted(sent[9:]) == [("small7", 1.0), ("small8", 1.0)]


def test_without_a_top_priority_sending_nothing_is_kept_back(clock: FakeClock) -> None:
    """Requests of one priority (or the top one's feed finished a window ago) may use every slot."""
    assert send_times(WindowLimiter(10), clock, 12) == [0.0] * 10 + [1.0] * 2


class ManualClock(FakeClock):
    """A clock whose sleeps end only when the test moves it on, so a sleep can be cut short."""

    def __init__(self) -> None:
        super().__init__()
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, wake))
        await wake

    def advance_to(self, when: float) -> None:
        self.now = 1000.0 + when
        for at, wake in self.sleepers:
            if at <= self.now and not wake.done():
                wake.set_result(None)


def test_a_top_priority_request_cuts_short_a_wait_reckoned_for_lower_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter is sleeping until the window slides for a waiting low-priority request when the top
    priority asks: it does not wait out that sleep, since a slot kept for it is free now."""
    clock = ManualClock()
    real_sleep = asyncio.sleep
    monkeypatch.setattr(ratelimit.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(ratelimit.asyncio, "sleep", clock.sleep)
    limiter = WindowLimiter(10)

    async def settle() -> None:
        for _ in range(20):
            await real_sleep(0)

    async def go() -> tuple[float, list[float]]:
        await limiter.acquire(5)
        for _ in range(7):
            await limiter.acquire(1)
        small = [asyncio.ensure_future(limiter.acquire(1)) for _ in range(2)]
        await settle()
        assert not any(f.done() for f in small)  # the window's 8 unkept slots are taken until t=1
        clock.advance_to(0.5)
        top = asyncio.ensure_future(limiter.acquire(5))
        await settle()
        top_sent = round(clock.now - 1000.0, 6) if top.done() else -1.0
        assert not any(f.done() for f in small)
        clock.advance_to(1.0)
        await settle()
        await asyncio.gather(*small)
        return top_sent, [round(clock.now - 1000.0, 6)]

    top_sent, small_sent = asyncio.run(go())
    assert top_sent == 0.5, "the top priority waited out a sleep reckoned for the others"
    assert small_sent == [1.0]


def test_a_limiter_left_by_an_interrupted_run_still_lets_the_next_run_through() -> None:
    """SIGTERM raises SystemExit in the middle of a loop iteration, maybe before the task that lets waiting
    requests go has run at all. The limiter must not take that dead task for a live one in the next run.
    (On the real clock: the next run's request waits out the rest of a 50 ms window.)"""
    limiter = WindowLimiter(1, per=0.05)

    def stop() -> None:
        raise SystemExit(143)

    async def interrupted() -> None:
        loop = asyncio.get_running_loop()
        await limiter.acquire()  # takes the only slot
        loop.call_soon(lambda: loop.call_soon(stop))  # before the releasing task's first step
        waiting = asyncio.ensure_future(limiter.acquire())  # waits, and makes the releasing task
        await waiting

    with pytest.raises(SystemExit):
        asyncio.run(interrupted())

    async def next_run() -> None:
        await asyncio.wait_for(limiter.acquire(), timeout=30)

    asyncio.run(next_run())
