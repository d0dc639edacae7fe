"""Files written whole or not at all: a reader (the next run, backfill, a collector) never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, body: bytes, prefix: str | None = None) -> None:
    """Write ``body`` to a temporary file beside ``path`` (created 0600), then rename it over ``path``. The
    temporary file is named ``prefix`` + random (default: ``.<name>.``) and removed if anything fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
