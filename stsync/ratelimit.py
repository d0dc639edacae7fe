"""Client-side rate limiters shared by every concurrent request of one run.

``WindowLimiter`` allows at most ``limit`` requests in any window of ``per`` seconds: the shape in which
ServiceTitan states its limit (60 calls per second per app and tenant). A short run such as a no-change
incremental sends its couple of dozen requests at once instead of trickling them out of a small burst.
``RateLimiter`` is a token bucket refilled at ``rate`` per second with a burst of ``burst``.
With either, a 429 pauses every caller for its Retry-After, so concurrent feeds back off together
instead of each earning a 429.

Requests carry a ``priority``: a sync gives each feed's requests the feed's expected size. Each page of an
export feed is asked for once the one before it has arrived, so the largest feed's chain of pages decides
how long the run takes, while the smaller feeds have time to spare. When requests have to wait, the highest
priority goes first, then the one that came first; and while the highest priority asked for so far is
sending, ``WindowLimiter`` keeps a fifth of each window for it, so a window filled by the other feeds does
not stall the longest chain until it slides.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import heapq
import itertools
import math
import time


class _Limiter:
    """The shared queue: callers wait in order of priority, then arrival; one task lets them go, each once
    any Retry-After pause is over and a slot is free."""

    def __init__(self) -> None:
        self._paused_until = 0.0
        self._top = 0  # the highest priority asked for so far
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # heap of (-priority, arrival, waiter)
        self._arrivals = itertools.count()
        self._releasing: asyncio.Task[None] | None = None
        self._sleep: asyncio.Future[None] | None = None  # the releasing task's wait, cut short by a new head

    def _take(self, now: float, top: bool) -> float:
        """Take a slot and return 0, or return how long to wait before one frees up. ``top``: the request
        has the highest priority asked for so far."""
        raise NotImplementedError

    async def acquire(self, priority: int = 0) -> None:
        """Wait until one request may be sent."""
        self._top = max(self._top, priority)
        now = time.monotonic()
        if not self._waiting and now >= self._paused_until and self._take(now, priority >= self._top) <= 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._arrivals), waiter))
        if self._releasing is None or self._releasing.done():  # done: cancelled with a loop before it ran
            self._releasing = asyncio.ensure_future(self._release_in_turn())
        elif self._waiting[0][2] is waiter and self._sleep is not None:
            self._sleep.cancel()  # the wait was reckoned for a lower priority: this one may go sooner
        await waiter  # a caller cancelled while waiting is skipped: its slot goes to the next one

    async def _release_in_turn(self) -> None:
        try:
            while self._waiting:
                negated_priority, _arrival, waiter = self._waiting[0]
                if waiter.done() or waiter.get_loop() is not asyncio.get_running_loop():
                    heapq.heappop(self._waiting)  # its caller was cancelled, or its event loop is gone
                    continue
                now = time.monotonic()
                wait = self._paused_until - now
                if wait <= 0:
                    wait = self._take(now, -negated_priority >= self._top)
                    if wait <= 0:
                        heapq.heappop(self._waiting)
                        waiter.set_result(None)
                        continue
                self._sleep = asyncio.ensure_future(asyncio.sleep(wait))
                await asyncio.wait((self._sleep,))
        finally:
            if self._sleep is not None:
                self._sleep.cancel()  # the releasing task itself was cancelled (the run is stopping)
            self._releasing = self._sleep = None

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (the server said Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class WindowLimiter(_Limiter):
    """At most ``limit`` requests in any ``per``-second sliding window."""

    def __init__(self, limit: int, per: float = 1.0) -> None:
        if limit < 1 or per <= 0:
            raise ValueError("limit must be >= 1 and per > 0")
        super().__init__()
        self.limit = limit
        self.per = per
        self.kept = limit // 5  # slots of each window kept for the top priority while it is sending
        self._top_sent = -math.inf  # when the top priority last sent
        self._sent: collections.deque[float] = collections.deque()  # send times inside the window

    @classmethod
    def per_second(cls, rate: float) -> WindowLimiter:
        """``rate`` requests per second as a whole number per whole seconds: 50 -> 50 per 1 s,
        1.5 -> 3 per 2 s, 0.5 -> 1 per 2 s."""
        ratio = fractions.Fraction(rate).limit_denominator(10)
        return cls(max(1, ratio.numerator), float(ratio.denominator))

    def _take(self, now: float, top: bool) -> float:
        while self._sent and self._sent[0] <= now - self.per:
            self._sent.popleft()
        keep = self.kept if not top and now - self._top_sent < self.per else 0
        if len(self._sent) < self.limit - keep:
            self._sent.append(now)
            if top:
                self._top_sent = now
            return 0.0
        return self._sent[len(self._sent) - (self.limit - keep)] + self.per - now


class RateLimiter(_Limiter):
    """A token bucket: ``rate`` per second with a burst of ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        super().__init__()
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 5)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    def _take(self, now: float, top: bool) -> float:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._tokens = 0
