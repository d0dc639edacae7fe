"""The one retry policy (tenacity) for every HTTP API stsync talks to.

Retry only what can pass on a later attempt: 429, 5xx, timeouts, connection errors and truncated
bodies. Honour ``Retry-After``; otherwise back off exponentially with full jitter. Cap both the
number of attempts and the total time. Each retry is logged once, with the host and the cause. Tests can
turn waits off with ``STSYNC_RETRY_NO_WAIT=1`` (inherited by CLI subprocesses) or ``set_no_wait(True)``.

A ``Breaker`` is shared by every request to one service: when the service has failed (connection errors,
timeouts, 5xx) for ``outage_seconds`` with no success between, every request stops at once with one error
naming the host, instead of each running its own retries to the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay

from stsync.errors import ApiOutage

log = logging.getLogger("stsync.retry")

_no_wait = os.environ.get("STSYNC_RETRY_NO_WAIT") == "1"


def set_no_wait(value: bool) -> None:
    """Turn retry waits off (tests) or back on."""
    global _no_wait  # noqa: PLW0603 - a process-wide switch, like stamina's testing mode
    _no_wait = value


class RetryableStatus(Exception):
    """An HTTP answer worth retrying (429 or 5xx); carries the server's Retry-After, if any."""

    def __init__(self, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.url = url
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    max_seconds: float = 300.0
    base_wait: float = 0.5
    max_wait: float = 30.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_retryable(exc: BaseException) -> bool:
    # TransportError covers connect/read timeouts, resets, and bodies cut short (RemoteProtocolError).
    return isinstance(exc, RetryableStatus | httpx.TransportError)


def is_outage_sign(exc: BaseException) -> bool:
    """A failure that says the service is down (not merely busy, as a 429 says)."""
    return isinstance(exc, httpx.TransportError) or (isinstance(exc, RetryableStatus) and exc.status >= 500)


def describe(exc: BaseException) -> str:
    """The cause of a failed request in a few words (never a URL's query, a header or a body)."""
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, RetryableStatus):
        return f"HTTP {exc.status}"
    return str(exc) or type(exc).__name__


def host_of(url: str) -> str:
    try:
        return httpx.URL(url).netloc.decode() or url
    except (httpx.InvalidURL, TypeError):
        return "the service"


class Breaker:
    """Shared by every request to one service (see the module's docstring). A request reports each
    attempt's outcome; ``check`` raises the outage once the breaker is open."""

    def __init__(self, service: str, outage_seconds: float = 10.0) -> None:
        self.service = service
        self.outage_seconds = outage_seconds
        self.error: ApiOutage | None = None
        self._since: float | None = None  # when the current run of failures began; None after a success

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def succeeded(self) -> None:
        self._since = None

    def failed(self, exc: BaseException, url: str) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since = now
            log.warning(
                "%s at %s: %s; retrying for up to %.0fs",
                self.service,
                host_of(url),
                describe(exc),
                self.outage_seconds,
            )
        elif now - self._since >= self.outage_seconds:
            self._open(exc, url)

    def remaining(self) -> float | None:
        """Seconds until a failing service counts as down (None while it is not failing)."""
        return None if self._since is None else max(0.0, self._since + self.outage_seconds - time.monotonic())

    async def exhausted(self, exc: BaseException, url: str) -> ApiOutage | None:
        """A request ran out of retries on ``exc``. If nothing has succeeded since the failures began, wait
        until they have lasted ``outage_seconds``: if still nothing has, the service is down (the outage,
        which every other request now gets too); else the failure was this request's own (None)."""
        if self.error is None and self._since is not None and is_outage_sign(exc):
            if not _no_wait:
                await asyncio.sleep(self.remaining() or 0.0)
            if self._since is not None:
                self._open(exc, url)
        return self.error

    def _open(self, exc: BaseException, url: str) -> None:
        if self.error is None:
            lasted = time.monotonic() - (self._since or time.monotonic())
            self.error = ApiOutage(
                f"{self.service} at {host_of(url)} unreachable for {lasted:.0f}s: {describe(exc)}; "
                "the next run resumes from the last checkpoint"
            )


def _host_of_failure(exc: BaseException) -> str:
    if isinstance(exc, RetryableStatus):
        return host_of(exc.url)
    try:
        return host_of(str(exc.request.url)) if isinstance(exc, httpx.RequestError) else "?"
    except RuntimeError:  # an error raised before its request was made
        return "?"


def _wait(policy: RetryPolicy, breaker: Breaker | None):  # type: ignore[no-untyped-def]
    def wait(state: RetryCallState) -> float:
        if _no_wait:
            return 0.0
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            seconds = min(exc.retry_after, policy.max_wait)
        else:
            seconds = random.uniform(0, min(policy.max_wait, policy.base_wait * 2 ** (state.attempt_number - 1)))
        remaining = breaker.remaining() if breaker is not None and exc is not None and is_outage_sign(exc) else None
        # Wake when the breaker decides, so that an outage stops every request at about the same moment.
        return seconds if remaining is None else min(seconds, remaining + 0.05)

    return wait


def _log_retry(service: str, breaker: Breaker | None):  # type: ignore[no-untyped-def]
    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return
        # The breaker said once that the service is failing; each request's retries are then debug detail.
        level = logging.DEBUG if breaker is not None and is_outage_sign(exc) else logging.WARNING
        log.log(
            level,
            "%s at %s: %s; retrying (attempt %d, waiting %.1fs)",
            service,
            _host_of_failure(exc),
            describe(exc),
            state.attempt_number,
            state.next_action.sleep if state.next_action else 0.0,
        )

    return log_retry


def retrying(policy: RetryPolicy, service: str = "API", breaker: Breaker | None = None) -> AsyncRetrying:
    """An AsyncRetrying loop for one logical request; the caller re-signs the request each attempt.
    With ``breaker``, the loop stops as soon as the breaker opens."""

    def retryable(exc: BaseException) -> bool:
        return is_retryable(exc) and (breaker is None or breaker.error is None)

    return AsyncRetrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=_wait(policy, breaker),
        before_sleep=_log_retry(service, breaker),
        reraise=True,
    )
