"""`stsync config check|show`: validate the configuration, try its connections, show the effective values."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

import typer

from stsync.cli.state import STATE

app = typer.Typer(help="Validate and show the effective configuration.", no_args_is_help=True)


def _scalar(value: Any) -> str:
    # A one-element flow list renders any scalar the way YAML would read it back ('0123', null, true…).
    import yaml

    return yaml.safe_dump([value], default_flow_style=True, width=10_000).strip()[1:-1]


@app.command("show")
def show(
    sources: Annotated[
        bool, typer.Option("--sources/--no-sources", help="Annotate each value with where it came from.")
    ] = True,
) -> None:
    """Print the effective configuration as YAML, secrets masked as ********.

    Values come from defaults, the YAML file, systemd credentials and STSYNC_<SECTION>__<KEY> variables.
    """
    from stsync.config import effective_values, explain_config

    config, origin = explain_config(STATE.config_path)
    for section, values in effective_values(config).items():
        typer.echo(f"{section}:")
        for key, value in values.items():
            comment = f"  # {origin.get(f'{section}.{key}', 'default')}" if sources else ""
            typer.echo(f"  {key}: {_scalar(value)}{comment}")


@app.command("check")
def check(
    purpose: Annotated[
        str,
        typer.Option(
            "--for",
            help="What the config must be good for: sync, ghl or events require their sections; all (the default) "
            "checks every section that is configured and says which it skipped.",
        ),
    ] = "all",
    offline: Annotated[bool, typer.Option("--offline", help="Validate only: connect to nothing, call no API.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON on stdout.")] = False,
) -> None:
    """Validate the configuration, then try it: connect to the database; get a ServiceTitan token and make one
    cheap call (a wrong app key or tenant shows only there); read the GHL location's pipelines with the token
    and find every stage the configured mapping names. One line per problem, naming the key to fix.

    Exit codes: 0 all ok, 69 a service is unreachable, 78 invalid config or refused credentials.
    """
    from stsync.checks import PURPOSES, Purpose, check_config
    from stsync.config import load_config
    from stsync.errors import UsageError

    if purpose not in PURPOSES:
        raise UsageError(f"--for must be one of {', '.join(PURPOSES)}, not '{purpose}'")
    config = load_config(STATE.config_path)
    checks = check_config(config, cast("Purpose", purpose), offline)
    if json_out:
        doc = [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
        typer.echo(json.dumps({"config": "ok", "for": purpose, "offline": offline, "checks": doc}, indent=2))
    else:
        typer.echo("config: ok")
        for c in checks:
            typer.echo(f"{c.name}: {'ok' if c.ok else 'failed'}: {c.detail}")
    # Something a person must fix (config, refused credentials: 78) outranks "try again later" (69).
    codes = [int(c.error.exit_code) for c in checks if c.error is not None]
    raise typer.Exit(max(codes, default=0))
