"""Shared sandbox fixtures: a small world with a tiny export batch so feeds span many pages.

Their rate limit is off: these tests walk hundreds of tiny pages as fast as loopback allows, and the
limit has its own tests (test_faults_auth.py) on sandboxes made for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sbhelpers import BATCH, Api

from stsync.sandbox import Sandbox, SandboxOptions


@pytest.fixture(scope="session")
def shared() -> Iterator[Sandbox]:
    """Read-only tests share one sandbox; tests that advance or inject faults make their own."""
    with Sandbox.start(SandboxOptions(export_batch_size=BATCH, rate_limit=0)) as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    with Sandbox.start(SandboxOptions(export_batch_size=BATCH, rate_limit=0)) as sb:
        yield sb


@pytest.fixture
def api(fresh: Sandbox) -> Api:
    return Api(fresh)
