"""The credentials tests use to talk to the local sandboxes, in one place.

The ServiceTitan values and the first GHL location are the sandboxes' own documented fake defaults
(``stsync.sandbox.app`` and ``stsync.sandbox.ghl.options``), imported rather than repeated. The second GHL
location is not a default: tests that need two locations give ``GhlOptions`` both pairs themselves.
Deliberately wrong values ("nope", "other-app", a revoked token) stay next to the tests that send them.
"""

from __future__ import annotations

from stsync.sandbox import APP_KEY, CLIENT_ID, CLIENT_SECRET, SandboxOptions
from stsync.sandbox.ghl import GhlOptions

__all__ = [
    "APP_KEY",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "GHL_LOCATION",
    "GHL_OTHER_LOCATION",
    "GHL_OTHER_TOKEN",
    "GHL_TOKEN",
    "SANDBOX_ENV",
    "TENANT",
    "token_form",
]

TENANT: int = SandboxOptions().tenant

((GHL_LOCATION, GHL_TOKEN),) = GhlOptions().locations.items()
GHL_OTHER_LOCATION = "loc-sandbox-2"
GHL_OTHER_TOKEN = "pit-sandbox-token-2"

# The ServiceTitan part of a CLI environment pointed at the sandbox (the URLs are added per run).
SANDBOX_ENV = {
    "STSYNC_SERVICETITAN__TENANT_ID": str(TENANT),
    "STSYNC_SERVICETITAN__CLIENT_ID": CLIENT_ID,
    "STSYNC_SERVICETITAN__CLIENT_SECRET": CLIENT_SECRET,
    "STSYNC_SERVICETITAN__APP_KEY": APP_KEY,
}


def token_form(client_secret: str = CLIENT_SECRET) -> dict[str, str]:
    """The form body of ``POST /connect/token`` (client_credentials); pass a secret to send a wrong one."""
    return {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": client_secret}
