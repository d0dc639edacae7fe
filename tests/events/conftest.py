"""Fixtures of the events tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.events.helpers import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A local HTTP server recording what actions post to it."""
    server = Sink()
    try:
        yield server
    finally:
        server.close()
