"""`stsync sandbox …` (placeholder until the sandbox lands)."""

import typer

app = typer.Typer(help="A faithful local ServiceTitan API for the demo, the tests and the benchmarks.", no_args_is_help=True)
