"""The one retry policy (tenacity) for every HTTP API stsync talks to.

Retry only what can pass on a later attempt: 429, 5xx, timeouts, connection errors and truncated
bodies. Honour ``Retry-After``; otherwise back off exponentially with full jitter. Cap both the
number of attempts and the total time. Each retry is logged once. Tests can turn waits off with
``STSYNC_RETRY_NO_WAIT=1`` (inherited by CLI subprocesses) or ``set_no_wait(True)``.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay

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


def _wait(policy: RetryPolicy):  # type: ignore[no-untyped-def]
    def wait(state: RetryCallState) -> float:
        if _no_wait:
            return 0.0
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_wait)
        ceiling = min(policy.max_wait, policy.base_wait * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)

    return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "retrying after %s (attempt %d, waiting %.1fs)",
        exc,
        state.attempt_number,
        state.next_action.sleep if state.next_action else 0.0,
    )


def retrying(policy: RetryPolicy) -> AsyncRetrying:
    """An AsyncRetrying loop for one logical request; the caller re-signs the request each attempt."""
    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=_wait(policy),
        before_sleep=_log_retry,
        reraise=True,
    )
