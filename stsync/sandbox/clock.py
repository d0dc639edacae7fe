"""Virtual time and cheap deterministic randomness for the sandbox world.

Time is an integer count of 100 ns ticks since the Unix epoch, because ServiceTitan prints 7 fractional
digits (``2026-03-04T10:11:12.1234567Z``) and integer ticks format exactly and compare cheaply.
Nothing here reads the wall clock: the world is a pure function of (seed, scale, advance history).
"""

from __future__ import annotations

import datetime as dt
import random

TICKS = 10_000_000  # ticks per second
MINUTE = 60 * TICKS
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

# The world's fixed "now" at creation; history spreads over the two years before it.
WORLD_NOW = int(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC).timestamp()) * TICKS
HISTORY_START = WORLD_NOW - 730 * DAY
HISTORY_END = WORLD_NOW - HOUR  # base records are all older than the 15-minute export delay

_MASK = (1 << 64) - 1
_day_cache: dict[int, str] = {}


def mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash used to derive per-record seeds and jitter."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def key(*parts: int) -> int:
    """Fold integers into one 64-bit key (seed, resource code, index, ...)."""
    h = 0x12345678
    for p in parts:
        h = mix64(h ^ (p & _MASK))
    return h


_rng = random.Random()


def rng_for(seed_key: int) -> random.Random:
    """The shared Random, reseeded: per-record streams without allocating one object per record.

    Callers must finish with it before the next ``rng_for`` call; generation holds the world lock.
    """
    _rng.seed(seed_key)
    return _rng


def _day(day: int) -> str:
    s = _day_cache.get(day)
    if s is None:
        s = dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        _day_cache[day] = s
    return s


_HMS: list[str] = []


def fmt(t: int) -> str:
    """ServiceTitan's usual shape: 7 fractional digits and a Z. Hot path of generation, hence the tables."""
    secs, frac = divmod(t, TICKS)
    day, sod = divmod(secs, 86400)
    if not _HMS:
        _HMS.extend(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))
    d = _day_cache.get(day) or _day(day)
    return f"{d}T{_HMS[sod]}.{frac:07d}Z"


def fmt_naive_midnight(t: int) -> str:
    """The zone-less midnight shape ServiceTitan uses for some date-like fields (invoiceDate, dueDate)."""
    return f"{_day(t // DAY)}T00:00:00"


def fmt_date(t: int) -> str:
    return _day(t // DAY)


def parse(value: str) -> int:
    """Parse a date or date-time query value into ticks (zone-less means UTC). Raises ValueError."""
    v = value.strip()
    if not v:
        raise ValueError("empty date")
    if len(v) == 10:
        d = dt.date.fromisoformat(v)
        return (d.toordinal() - _EPOCH_ORDINAL) * DAY
    frac = 0
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    # Python < 3.12 accepts at most 6 fractional digits: cut them out and keep all 7.
    if "." in v:
        head, rest = v.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits:
            raise ValueError(f"bad fraction in {value!r}")
        frac = int((digits + "0000000")[:7])
        v = head + rest
    parsed = dt.datetime.fromisoformat(v)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp()) * TICKS + frac
