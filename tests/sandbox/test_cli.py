"""`stsync sandbox` commands: help states the per-scale totals; advance drives a running server."""

from __future__ import annotations

from typer.testing import CliRunner

from stsync.cli.main import app
from stsync.errors import ConfigError
from stsync.sandbox import Sandbox, scale_totals

runner = CliRunner()


def test_serve_help_states_scale_totals() -> None:
    """`serve --help` names the actual record totals of every scale."""
    result = runner.invoke(app, ["sandbox", "serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for scale, n in scale_totals().items():
        assert f"{scale} = {n:,} records" in text


def test_advance_command_calls_the_admin_endpoint() -> None:
    """`advance --minutes M --url U` moves a running sandbox's clock and prints what changed."""
    with Sandbox.start() as sb:
        result = runner.invoke(app, ["sandbox", "advance", "--minutes", "60", "--url", sb.url])
        assert result.exit_code == 0, result.output
        assert "jobs:" in result.output
        quiet = runner.invoke(app, ["sandbox", "advance", "--minutes", "20", "--no-changes", "--url", sb.url])
        assert quiet.exit_code == 0 and "changed" not in quiet.output
        assert sb.world.now == "2026-06-01T13:20:00.0000000Z"


def test_serve_refuses_remote_host() -> None:
    """A non-loopback --host without --allow-remote is a configuration error."""
    result = runner.invoke(app, ["sandbox", "serve", "--host", "0.0.0.0", "--port", "0"])
    assert isinstance(result.exception, ConfigError)


def test_ghl_serve_refuses_remote_host() -> None:
    result = runner.invoke(app, ["sandbox", "ghl-serve", "--host", "0.0.0.0", "--port", "0"])
    assert isinstance(result.exception, ConfigError)


def test_ghl_hook_prints_a_trigger_url_that_records_payloads() -> None:
    """`ghl-hook NAME --url U` creates an inbound webhook on a running GHL sandbox; posting to it is recorded."""
    import httpx

    from stsync.sandbox.ghl import GhlOptions, GhlSandbox

    with GhlSandbox.start(GhlOptions(port=0, locations={"loc-1": "pit-1"})) as ghl:
        result = runner.invoke(app, ["sandbox", "ghl-hook", "pool", "--url", ghl.url, "--location", "loc-1"])
        assert result.exit_code == 0, result.output
        url = result.output.strip()
        assert url.startswith(f"{ghl.url}/hooks/loc-1/webhook-trigger/"), url
        again = runner.invoke(app, ["sandbox", "ghl-hook", "pool", "--url", ghl.url, "--location", "loc-1"])
        assert again.output.strip() == url, "the same name gives the same URL"
        assert httpx.post(url, json={"email": "a@example.com"}).status_code == 200
        assert ghl.dump()["webhooks"]["pool"] == [{"email": "a@example.com"}]


def test_ghl_hook_against_nothing_is_unavailable() -> None:
    from stsync.errors import ApiUnavailable

    result = runner.invoke(app, ["sandbox", "ghl-hook", "pool", "--url", "http://127.0.0.1:9"])
    assert isinstance(result.exception, ApiUnavailable)
