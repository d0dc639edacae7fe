"""`stsync sandbox …`: run the local ServiceTitan and GHL sandboxes and move the ServiceTitan one's time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from stsync.errors import ApiUnavailable, ConfigError

# Records per scale, for --help without importing the sandbox (keeps `stsync --help` fast);
# tests/test_cli_help.py checks them against stsync.sandbox.scale_totals().
SCALE_TOTALS = {"small": 2140, "medium": 98708, "large": 980377, "xlarge": 4881297}
_TOTALS = SCALE_TOTALS
_SCALE_HELP = "World size: " + ", ".join(f"{s} = {n:,} records" for s, n in _TOTALS.items()) + " (all resources)."

# The GHL sandbox as the CLI starts it, spelled out here so --help needs no import of the sandbox (the CLI
# passes location and token explicitly). The token is the fixed, documented sandbox token (docs/ghl-sandbox.md):
# a throwaway fake that only this local sandbox accepts.
GHL_LOCATION = "loc-sandbox-1"
GHL_SANDBOX_TOKEN = "pit-sandbox-token-1"  # noqa: S105 - the sandbox's public fake token, not a secret
GHL_ENV_VAR = "STSYNC_SANDBOX_GHL_TOKEN"
GHL_PORT = 8766

app = typer.Typer(
    help="Faithful local ServiceTitan and GoHighLevel APIs for the demo, the tests and the benchmarks.",
    no_args_is_help=True,
)


@app.command(help="Serve the sandbox over HTTP until interrupted. " + _SCALE_HELP)
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; non-loopback needs --allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 = any free port).")] = 8765,
    scale: Annotated[str, typer.Option(help=_SCALE_HELP)] = "small",
    seed: Annotated[int, typer.Option(help="World seed: same seed and scale give byte-identical data.")] = 42,
    state_dir: Annotated[
        Path | None, typer.Option(help="Persist the clock and changes here across restarts.", file_okay=False)
    ] = None,
    tenant: Annotated[int, typer.Option(help="Tenant id served in /tenant/{id}/ paths.")] = 1234567,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback --host.")] = False,
    token_ttl: Annotated[int, typer.Option(help="Access token lifetime in seconds.")] = 900,
    rate_limit: Annotated[int, typer.Option(help="Requests per second per (app key, tenant); 0 = off.")] = 60,
    export_batch_size: Annotated[int, typer.Option(help="Records per export response.")] = 5000,
    latency_ms: Annotated[int, typer.Option(help="Fault: fixed latency added to every API request.")] = 0,
    jitter_ms: Annotated[int, typer.Option(help="Fault: random extra latency, 0..N ms (seeded).")] = 0,
    error_rate: Annotated[float, typer.Option(help="Fault: share of API requests answered 503 (seeded).")] = 0.0,
    throttle_rate: Annotated[float, typer.Option(help="Fault: share of API requests answered 429.")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Fault: share of API requests whose socket is dropped.")] = 0.0,
    faults_json: Annotated[str | None, typer.Option(help="Fault spec JSON (or @file); see docs/sandbox.md.")] = None,
    prewarm: Annotated[
        bool | None,
        typer.Option(help="Pre-serialise records in worker processes (default: on for medium/large)."),
    ] = None,
    ghl_port: Annotated[
        int | None,
        typer.Option(
            help=f"Also serve the GHL sandbox on this port of the same host (0 = any free port; default: no "
            f"GHL). It has the defaults of `ghl-serve` (location {GHL_LOCATION}, token from ${GHL_ENV_VAR} or "
            f"the fixed sandbox token, 100 requests / 10 s).",
        ),
    ] = None,
) -> None:
    """Serve the sandbox over HTTP until interrupted."""
    if scale not in _TOTALS:
        raise ConfigError(f"--scale must be one of {', '.join(_TOTALS)}, got {scale!r}")
    spec = _fault_spec(
        faults_json,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        drop_rate=drop_rate,
    )
    from stsync.sandbox import APP_KEY, CLIENT_ID, CLIENT_SECRET, Sandbox, SandboxOptions

    opts = SandboxOptions(
        scale=scale,
        seed=seed,
        tenant=tenant,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        export_batch_size=export_batch_size,
        state_dir=state_dir,
        host=host,
        port=port,
        allow_remote=allow_remote,
        faults=spec,
        prewarm=prewarm,
    )
    try:
        sb = Sandbox.start(opts)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    ghl, token_source = None, ""
    if ghl_port is not None:
        try:
            ghl, token_source = _start_ghl(
                host=host, port=ghl_port, allow_remote=allow_remote, seed=seed, location=GHL_LOCATION, token_file=None
            )
        except ConfigError:
            sb.stop()
            raise
    typer.echo(
        f"stsync sandbox: {sb.url} (tenant {tenant}, scale {scale}: {_TOTALS[scale]:,} records, "
        f"seed {seed}, now {sb.world.now})",
        err=False,
    )
    typer.echo(
        f"  client_id={CLIENT_ID} client_secret={CLIENT_SECRET} app_key={APP_KEY}; token URL {sb.url}/connect/token",
        err=False,
    )
    if ghl is not None:
        _announce_ghl(ghl, GHL_LOCATION, token_source, hooks=[])
    try:
        sb.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if ghl is not None:
            ghl.stop()
        sb.stop()


@app.command("ghl-serve")
def ghl_serve(
    host: Annotated[str, typer.Option(help="Interface to bind; non-loopback needs --allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 = any free port).")] = GHL_PORT,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback --host.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of pipeline, stage, custom-field, hook and record ids.")] = 42,
    location: Annotated[str, typer.Option(help="The location (sub-account) id the token gives access to.")] = (
        GHL_LOCATION
    ),
    token_file: Annotated[
        Path | None,
        typer.Option(
            help=f"File holding the private integration token to accept (default: ${GHL_ENV_VAR}, else the "
            f"fixed sandbox token {GHL_SANDBOX_TOKEN}).",
            dir_okay=False,
        ),
    ] = None,
    rate_limit: Annotated[
        int, typer.Option(help="Requests per 10 s per location before 429, as GHL allows; 0 = off.")
    ] = 100,
    daily_limit: Annotated[int, typer.Option(help="Requests per day per location before 429; 0 = off.")] = 200_000,
    allow_duplicate_contacts: Annotated[
        bool, typer.Option(help="The location setting 'Allow Duplicate Contact'.")
    ] = False,
    allow_multiple_opportunities: Annotated[
        bool, typer.Option(help="The location setting 'Allow Multiple Opportunities per Contact' (per pipeline).")
    ] = False,
    hook: Annotated[
        list[str] | None,
        typer.Option(
            help="Create an inbound webhook-trigger URL with this name and print it (repeatable); the same "
            "name and seed always give the same URL."
        ),
    ] = None,
    faults_json: Annotated[
        str | None, typer.Option(help="Fault spec JSON (or @file), the ServiceTitan sandbox's rule format.")
    ] = None,
) -> None:
    """Serve the GoHighLevel sandbox (API v2, Version 2021-07-28) over HTTP until interrupted.

    Contacts with GHL's duplicate rules, the Sales and Install pipelines, custom fields, inbound
    webhook triggers, the X-RateLimit-* headers and 429s; state at GET /_ghl/dump. See docs/ghl-sandbox.md.
    """
    spec = _fault_spec(faults_json, latency_ms=0, jitter_ms=0, error_rate=0.0, throttle_rate=0.0, drop_rate=0.0)
    g, token_source = _start_ghl(
        host=host,
        port=port,
        allow_remote=allow_remote,
        seed=seed,
        location=location,
        token_file=token_file,
        rate_limit=rate_limit,
        daily_limit=daily_limit,
        allow_duplicate_contacts=allow_duplicate_contacts,
        allow_multiple_opportunities=allow_multiple_opportunities,
        faults=spec,
    )
    _announce_ghl(g, location, token_source, hooks=hook or [])
    try:
        g.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        g.stop()


@app.command("ghl-hook")
def ghl_hook(
    name: Annotated[str, typer.Argument(help="Hook name; payloads posted to it land in /_ghl/dump under it.")],
    url: Annotated[str, typer.Option(help="Base URL of a running GHL sandbox.")] = f"http://127.0.0.1:{GHL_PORT}",
    location: Annotated[str, typer.Option(help="Location id in the trigger URL.")] = GHL_LOCATION,
) -> None:
    """Create (or look up) an inbound webhook-trigger URL on a running GHL sandbox and print it.

    For webhook-mode business units: stsync bu set 4622 --webhook-url "$(stsync sandbox ghl-hook pool)".
    """
    import httpx

    try:
        resp = httpx.post(f"{url.rstrip('/')}/_ghl/hooks", json={"name": name, "locationId": location}, timeout=30)
    except httpx.HTTPError as exc:
        raise ApiUnavailable(f"GHL sandbox at {url} is not reachable: {exc}") from exc
    if resp.status_code != 200:
        raise ApiUnavailable(f"GHL sandbox at {url} answered {resp.status_code}: {resp.text[:200]}")
    typer.echo(f"{url.rstrip('/')}{resp.json()['path']}")


def _ghl_token(token_file: Path | None) -> tuple[str, str]:
    """The token the GHL sandbox accepts and a printable note of where it came from (never from argv)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--token-file: cannot read {token_file}: {exc.strerror or exc}") from exc
        if not token:
            raise ConfigError(f"--token-file: {token_file} is empty")
        return token, f"from {token_file} (not shown)"
    if os.environ.get(GHL_ENV_VAR, "").strip():
        return os.environ[GHL_ENV_VAR].strip(), f"from ${GHL_ENV_VAR} (not shown)"
    # Only the public fixed token is ever echoed; one from a file or the environment stays unprinted.
    return GHL_SANDBOX_TOKEN, f"the fixed sandbox token {GHL_SANDBOX_TOKEN}"


def _start_ghl(
    *, host: str, port: int, allow_remote: bool, seed: int, location: str, token_file: Path | None, **knobs: Any
) -> tuple[Any, str]:
    """Start a GHL sandbox in a daemon thread; ConfigError when it cannot listen."""
    from stsync.sandbox.ghl import GhlOptions, GhlSandbox

    token, source = _ghl_token(token_file)
    try:
        opts = GhlOptions(
            seed=seed, locations={location: token}, host=host, port=port, allow_remote=allow_remote, **knobs
        )
        return GhlSandbox.start(opts), source
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _announce_ghl(g: Any, location: str, token_source: str, hooks: list[str]) -> None:
    limit = g.opts.rate_limit
    limits = f"{limit} requests / 10 s" if limit else "no rate limit"
    typer.echo(f"stsync GHL sandbox: {g.url} (location {location}, seed {g.opts.seed}, {limits})")
    typer.echo(
        f"  token: {token_source}; configure stsync with ghl.api_base_url={g.url} "
        f"ghl.location_id={location} and ghl.token (or token_file)"
    )
    for name in hooks:
        typer.echo(f"  inbound webhook {name}: {g.webhook_url(name, location)}")


@app.command()
def advance(
    minutes: Annotated[int, typer.Option(help="Virtual minutes to move forward.")] = 60,
    no_changes: Annotated[
        bool, typer.Option("--no-changes", help="Only move the clock (e.g. past the 15-minute export delay).")
    ] = False,
    url: Annotated[str, typer.Option(help="Base URL of a running sandbox.")] = "http://127.0.0.1:8765",
) -> None:
    """Advance a running sandbox's virtual clock, applying seeded business activity."""
    import httpx

    try:
        resp = httpx.post(
            f"{url.rstrip('/')}/_sandbox/advance",
            json={"minutes": minutes, "changes": not no_changes},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        raise ApiUnavailable(f"sandbox at {url} is not reachable: {exc}") from exc
    if resp.status_code != 200:
        raise ApiUnavailable(f"sandbox at {url} answered {resp.status_code}: {resp.text[:200]}")
    summary = resp.json()
    typer.echo(f"{summary['from']} -> {summary['to']}")
    for res, n in summary["counts"].items():
        typer.echo(f"  {res}: {n} changed")


def _fault_spec(
    faults_json: str | None,
    *,
    latency_ms: int,
    jitter_ms: int,
    error_rate: float,
    throttle_rate: float,
    drop_rate: float,
) -> dict[str, Any] | None:
    spec: dict[str, Any] = {"rules": []}
    if faults_json:
        text = Path(faults_json[1:]).read_text() if faults_json.startswith("@") else faults_json
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--faults-json is not valid JSON: {exc}") from exc
        spec.setdefault("rules", [])
    if latency_ms or jitter_ms:
        spec["rules"].append({"kind": "latency", "ms": latency_ms, "jitter_ms": jitter_ms})
    for kind, rate in (("status", error_rate), ("rate_limit", throttle_rate), ("drop", drop_rate)):
        if rate:
            spec["rules"].append({"kind": kind, "rate": rate})
    return spec if spec["rules"] or spec.get("invalidate_tokens") else None
