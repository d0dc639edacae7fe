"""Client-side rate limiters shared by every concurrent request of one run.

``WindowLimiter`` allows at most ``limit`` requests in any window of ``per`` seconds: the shape in which
ServiceTitan states its limit (60 calls per second per app and tenant). A short run such as a no-change
incremental sends its couple of dozen requests at once instead of trickling them out of a small burst.
``RateLimiter`` is a token bucket refilled at ``rate`` per second with a burst of ``burst``.
With either, a 429 pauses every caller for its Retry-After, so concurrent feeds back off together
instead of each earning a 429.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time


class _Limiter:
    """The shared loop: wait out a Retry-After pause, then take a slot or sleep until one frees up."""

    def __init__(self) -> None:
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _take(self, now: float) -> float:
        """Take a slot and return 0, or return how long to wait before one frees up."""
        raise NotImplementedError

    async def acquire(self) -> None:
        """Wait until one request may be sent."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                wait = self._take(now)
                if wait <= 0:
                    return
                await asyncio.sleep(wait)

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
        self._sent: collections.deque[float] = collections.deque()  # send times inside the window

    @classmethod
    def per_second(cls, rate: float) -> WindowLimiter:
        """``rate`` requests per second as a whole number per whole seconds: 50 -> 50 per 1 s,
        1.5 -> 3 per 2 s, 0.5 -> 1 per 2 s."""
        ratio = fractions.Fraction(rate).limit_denominator(10)
        return cls(max(1, ratio.numerator), float(ratio.denominator))

    def _take(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.per:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            self._sent.append(now)
            return 0.0
        return self._sent[0] + self.per - now


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

    def _take(self, now: float) -> float:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._tokens = 0
