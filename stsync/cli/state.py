"""Global CLI options, set once by the root callback and read by the commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CliState:
    config_path: Path | None = None
    debug: bool = False


STATE = CliState()


def configured() -> Any:
    """The configuration (``--config`` or $STSYNC_CONFIG, then the environment), with logging set up as it says."""
    from stsync.cli.logs import setup
    from stsync.config import load_config

    config = load_config(STATE.config_path)
    setup(config.logging.level, config.logging.format, STATE.debug)
    return config
