"""`stsync sandbox …`: run the local ServiceTitan sandbox and move its virtual time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from stsync.errors import ApiUnavailable, ConfigError

# Records per scale, for --help without importing the sandbox (keeps `stsync --help` fast);
# tests/test_cli_help.py checks them against stsync.sandbox.scale_totals().
SCALE_TOTALS = {"small": 2018, "medium": 97619, "large": 975284}
_TOTALS = SCALE_TOTALS
_SCALE_HELP = "World size: " + ", ".join(f"{s} = {n:,} records" for s, n in _TOTALS.items()) + " (all resources)."

app = typer.Typer(
    help="A faithful local ServiceTitan API for the demo, the tests and the benchmarks.", no_args_is_help=True
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
    from stsync.sandbox import Sandbox, SandboxOptions

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
    typer.echo(
        f"stsync sandbox: {sb.url} (tenant {tenant}, scale {scale}: {_TOTALS[scale]:,} records, "
        f"seed {seed}, now {sb.world.now})",
        err=False,
    )
    typer.echo(
        f"  client_id=sandbox-client-id client_secret=sandbox-client-secret app_key=sandbox-app-key; "
        f"token URL {sb.url}/connect/token",
        err=False,
    )
    try:
        sb.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


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
