"""Load named SQL blocks (``-- name: foo``) from the ``queries.sql`` files that sit beside the code."""

from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def load(package: str) -> dict[str, str]:
    """Return {name: sql} for ``stsync/<package>/queries.sql``."""
    text = resources.files(f"stsync.{package}").joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
