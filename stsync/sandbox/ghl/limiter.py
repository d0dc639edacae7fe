"""GHL's per-location request budget: a burst window (100 / 10 s) and a daily cap (200,000 / day).

A sliding log rather than a token bucket: "100 requests in any 10 s" is how the limit is stated, and a
client pacing itself at 8 req/s must never see a 429. Rejected requests do not spend budget.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DAY_S = 86_400.0


@dataclass(frozen=True)
class Verdict:
    ok: bool
    remaining: int
    daily_remaining: int

    def headers(self, limit: int, window_s: float, daily_limit: int) -> list[tuple[str, str]]:
        """The documented ``X-RateLimit-*`` headers, sent on every authenticated response."""
        return [
            ("X-RateLimit-Limit-Daily", str(daily_limit)),
            ("X-RateLimit-Daily-Remaining", str(self.daily_remaining)),
            ("X-RateLimit-Interval-Milliseconds", str(int(window_s * 1000))),
            ("X-RateLimit-Max", str(limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
        ]


class Limiter:
    def __init__(self, limit: int, window_s: float, daily_limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.daily_limit = daily_limit
        self.clock = clock
        self._t0 = clock()
        self._log: dict[str, deque[float]] = {}
        self._daily: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def take(self, location: str) -> Verdict:
        """Spend one request of `location`'s budget if there is one left."""
        now = self.clock()
        day = int((now - self._t0) // DAY_S)
        with self._lock:
            log = self._log.setdefault(location, deque())
            while log and log[0] <= now - self.window_s:
                log.popleft()
            used_today = self._daily.get((location, day), 0)
            burst_ok = self.limit <= 0 or len(log) < self.limit
            daily_ok = self.daily_limit <= 0 or used_today < self.daily_limit
            if burst_ok and daily_ok:
                log.append(now)
                used_today += 1
                self._daily[(location, day)] = used_today
            remaining = max(0, self.limit - len(log)) if self.limit > 0 else 0
            return Verdict(burst_ok and daily_ok, remaining, max(0, self.daily_limit - used_today))
