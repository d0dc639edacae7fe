"""The ops tests' sandbox: the small world, seed 7, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        yield sb
