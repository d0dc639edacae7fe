"""Report tables: a Rich table on a terminal, aligned plain text otherwise (cron mail, pipes, `less`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer


def cell(value: object) -> str:
    return "" if value is None else str(value)


def render(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` under ``columns``; numbers are right-aligned."""
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows) for i in range(len(columns))
    ]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=title)
        for name, right in zip(columns, numeric, strict=True):
            table.add_column(name, justify="right" if right else "left")
        for row in rows:
            table.add_row(*(escape(cell(v)) for v in row))  # a value is text, never markup
        Console().print(table)
        return
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(name)] + [len(r[i]) for r in text]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    typer.echo(line(columns))
    for r in text:
        typer.echo(line(r))
