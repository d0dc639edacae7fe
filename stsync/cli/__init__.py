"""The command line face of stsync. Only this package imports typer and rich."""
