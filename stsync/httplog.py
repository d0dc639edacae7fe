"""Debug records of every HTTP request stsync makes (`--debug`): method, host and path, status, time.

Never a query string, a header or a body; a request made with ``SECRET_PATH`` (a webhook-trigger URL, whose
path is the secret) shows only its host.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from stsync.masking import MASK

log = logging.getLogger("stsync.http")

SECRET_PATH = {"stsync.secret_path": True}  # httpx request extensions of a request whose path is a secret
_STARTED = "stsync.started"


async def _started(request: httpx.Request) -> None:
    request.extensions[_STARTED] = time.monotonic()


async def _answered(response: httpx.Response) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    request = response.request
    path = f"/{MASK}" if request.extensions.get("stsync.secret_path") else request.url.path
    started = request.extensions.get(_STARTED)
    took = f" {(time.monotonic() - started) * 1000:.0f}ms" if started is not None else ""
    log.debug("%s %s%s %d%s", request.method, request.url.netloc.decode(), path, response.status_code, took)


def event_hooks() -> dict[str, list[Any]]:
    """The ``event_hooks`` of an httpx.AsyncClient whose requests are logged at debug level."""
    return {"request": [_started], "response": [_answered]}
