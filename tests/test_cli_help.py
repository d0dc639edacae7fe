"""Every command and every option of `stsync` has help text (sqlite-utils' test_docs idea)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from stsync.cli.main import app, app_for

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


@pytest.mark.parametrize("path", [p for p, _ in ALL if p], ids=[" ".join(p) for p, _ in ALL if p])
def test_a_command_line_gets_an_app_of_its_command_alone_with_the_same_help(path: tuple[str, ...]) -> None:
    """`stsync` builds only the command its command line names (see ``app_for``), and that command's help
    is the one the whole app gives."""
    argv = ["--config", "x.yaml", "--debug", *path, "--help"]
    alone = app_for(argv)
    assert list(typer.main.get_command(alone).commands) == [path[0]]  # type: ignore[attr-defined]
    runner = CliRunner()
    whole, own = runner.invoke(app, argv), runner.invoke(alone, argv)
    assert (own.exit_code, own.output) == (whole.exit_code, whole.output) == (0, whole.output)


@pytest.mark.parametrize("argv", [[], ["--help"], ["--debug"], ["--config"], ["nonsense", "sync"], ["-c", "sync"]])
def test_a_command_line_that_names_no_command_gets_the_whole_app(argv: list[str]) -> None:
    """Help, usage errors and a config file named like a command see every command."""
    assert app_for(argv) is app


def test_sandbox_help_states_the_real_totals() -> None:
    """The record counts that `stsync sandbox serve --help` states are those of the generated worlds."""
    from stsync.cli.sandbox_cmd import SCALE_TOTALS
    from stsync.sandbox import scale_totals

    assert scale_totals() == SCALE_TOTALS
