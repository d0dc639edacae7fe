"""Global CLI options, set once by the root callback and read by the commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliState:
    config_path: Path | None = None
    debug: bool = False


STATE = CliState()
