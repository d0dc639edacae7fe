"""Every command and every option of `stsync` has help text (sqlite-utils' test_docs idea)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from stsync.cli.main import app

ROOT = typer.main.get_command(app)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(prefix, group)]
    commands = getattr(group, "commands", None)
    if commands:
        for name, cmd in commands.items():
            found.extend(_commands(cmd, (*prefix, name)))
    return found


ALL = _commands(ROOT)


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "stsync" for p, _ in ALL])
def test_command_and_options_have_help(path: tuple[str, ...], command: Any) -> None:
    """A command without a description, or an option/argument without help, fails here."""
    assert command.help or command.short_help, f"`stsync {' '.join(path)}` has no help"
    for param in command.params:
        if param.name == "help":
            continue
        assert getattr(param, "help", None), f"`stsync {' '.join(path)}`: {param.name} has no help"


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=[" ".join(p) or "stsync" for p, _ in ALL])
def test_help_runs(path: tuple[str, ...]) -> None:
    """`--help` works for every command through the real console script."""
    stsync = Path(sys.executable).with_name("stsync")
    proc = subprocess.run([str(stsync), *path, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_sandbox_help_states_the_real_totals() -> None:
    """The record counts that `stsync sandbox serve --help` states are those of the generated worlds."""
    from stsync.cli.sandbox_cmd import SCALE_TOTALS
    from stsync.sandbox import scale_totals

    assert scale_totals() == SCALE_TOTALS
