"""GHL sandbox fixtures: a sandbox on a fake clock (time moves only when a test says so)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stsync.sandbox.ghl import GhlOptions, GhlSandbox
from tests.sandbox_creds import GHL_LOCATION as LOC
from tests.sandbox_creds import GHL_OTHER_LOCATION as OTHER_LOC
from tests.sandbox_creds import GHL_OTHER_TOKEN as OTHER_TOKEN
from tests.sandbox_creds import GHL_TOKEN as TOKEN


class FakeClock:
    """Monotonic seconds that advance only through `advance`."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def options(clock: FakeClock, **kw: object) -> GhlOptions:
    base: dict[str, object] = {
        "seed": 42,
        "locations": {LOC: TOKEN, OTHER_LOC: OTHER_TOKEN},
        "rate_limit": 100,
        "rate_window_s": 10,
        "daily_limit": 200_000,
        "clock": clock,
    }
    return GhlOptions(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def ghl(clock: FakeClock) -> Iterator[GhlSandbox]:
    with GhlSandbox.start(options(clock)) as g:
        yield g


@pytest.fixture
def client(ghl: GhlSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=ghl.url, headers={"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}, timeout=10
    ) as c:
        yield c
