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
