"""`stsync config check|show` (placeholder until the config module lands)."""

import typer

app = typer.Typer(help="Validate and show the effective configuration.", no_args_is_help=True)
