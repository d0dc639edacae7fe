"""The shared breaker: a service that fails with no success between stops every request with one error."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import httpx
import pytest

from stsync.errors import ApiOutage
from stsync.retry import Breaker, RetryableStatus, set_no_wait

URL = "https://api.example.test/jpm/v2/tenant/1/export/jobs"


@pytest.fixture(autouse=True)
def _no_wait() -> Iterator[None]:
    set_no_wait(True)
    yield
    set_no_wait(os.environ.get("STSYNC_RETRY_NO_WAIT") == "1")


def test_failures_with_no_success_between_are_an_outage_for_every_request() -> None:
    breaker = Breaker("ServiceTitan", outage_seconds=10)
    breaker.failed(httpx.ConnectError("refused"), URL)
    outage = asyncio.run(breaker.exhausted(httpx.ConnectError("refused"), URL))
    assert isinstance(outage, ApiOutage)
    assert "api.example.test" in str(outage) and "connection refused" in str(outage)
    with pytest.raises(ApiOutage):
        breaker.check()  # every other request now stops at once


def test_a_success_between_makes_a_failure_the_requests_own() -> None:
    breaker = Breaker("ServiceTitan", outage_seconds=10)
    breaker.failed(RetryableStatus(500, URL, None), URL)
    breaker.succeeded()  # another request got its answer
    assert asyncio.run(breaker.exhausted(RetryableStatus(500, URL, None), URL)) is None
    breaker.check()


def test_rate_limiting_is_not_an_outage() -> None:
    breaker = Breaker("ServiceTitan", outage_seconds=10)
    breaker.failed(RetryableStatus(503, URL, None), URL)
    assert asyncio.run(breaker.exhausted(RetryableStatus(429, URL, 1.0), URL)) is None


def test_a_run_of_failures_is_logged_once_with_the_host(caplog: pytest.LogCaptureFixture) -> None:
    breaker = Breaker("ServiceTitan", outage_seconds=10)
    with caplog.at_level(logging.WARNING, logger="stsync.retry"):
        for _ in range(20):
            breaker.failed(httpx.ConnectError("refused"), URL)
    assert [r.getMessage() for r in caplog.records] == [
        "ServiceTitan at api.example.test: connection refused or host unreachable; retrying for up to 10s"
    ]
