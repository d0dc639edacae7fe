"""Fixtures of the events tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.events.helpers import Sink
from tests.ghl.conftest import ghl  # noqa: F401 - the GHL sandbox fixture, for the GHL actions' tests


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A local HTTP server recording what actions post to it."""
    server = Sink()
    try:
        yield server
    finally:
        server.close()
