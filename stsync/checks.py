"""`stsync config check`: try each configured connection and say what failed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stsync.config import Config, required_secret
from stsync.db.connect import connect_sync, db_errors, where
from stsync.errors import ApiUnavailable, AuthError, ConfigError, StsyncError


class Check(BaseModel):
    """One connection check: ok, or the error that says what failed (its exit code decides the run's)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    ok: bool
    detail: str
    error: StsyncError | None = None


def check_database(config: Config) -> Check:
    """Connect to the configured database and run ``SELECT 1``."""
    try:
        dsn = required_secret(config.database.url, "database.url")
        with connect_sync(dsn, config.database.connect_timeout) as conn, db_errors("checking the database"):
            conn.execute("SELECT 1")
            version = conn.info.parameter_status("server_version") or "?"
    except StsyncError as exc:
        return Check(name="database", ok=False, detail=str(exc), error=exc)
    return Check(name="database", ok=True, detail=f"{where(dsn)}, PostgreSQL {version}")


def check_servicetitan(config: Config) -> Check:
    """Request an OAuth token with the configured client credentials (no API call is made)."""
    import httpx

    st = config.servicetitan
    url = f"{st.auth_base()}/connect/token"
    try:
        if not st.client_id:
            raise ConfigError("missing required key 'servicetitan.client_id'")
        form = {
            "grant_type": "client_credentials",
            "client_id": st.client_id,
            "client_secret": required_secret(st.client_secret, "servicetitan.client_secret"),
        }
        required_secret(st.app_key, "servicetitan.app_key")
        try:
            response = httpx.post(url, data=form, timeout=min(st.timeout_seconds, 30))
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"cannot reach {url}: {type(exc).__name__}") from None
        if response.status_code in (400, 401, 403):
            raise AuthError(f"{url} refused the client credentials (HTTP {response.status_code})")
        if response.status_code != 200:
            raise ApiUnavailable(f"{url} answered HTTP {response.status_code}")
        try:
            token_ok = bool(response.json().get("access_token"))
        except ValueError:
            token_ok = False
        if not token_ok:
            raise ApiUnavailable(f"{url} answered without an access_token")
    except StsyncError as exc:
        return Check(name="servicetitan token", ok=False, detail=str(exc), error=exc)
    return Check(name="servicetitan token", ok=True, detail=url)


def check_token_cache(config: Config) -> Check:
    """Whether the token cache's directory can be written. Without it every run asks for a token, which is
    slower but not wrong: a failure here is reported and leaves the exit code alone."""
    import tempfile

    directory = config.servicetitan.token_cache_path()
    if directory is None:
        return Check(name="token cache", ok=True, detail="off: every run asks for a token")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return Check(name="token cache", ok=False, detail=f"cannot write {directory}: {exc.strerror or exc}")
    return Check(name="token cache", ok=True, detail=str(directory))


def check_ghl_stages(config: Config) -> Check:
    """Ask the GHL location for its pipelines and find every stage the configured pipelines map to."""
    import asyncio

    from stsync.ghl.service import check_stages

    if not config.ghl.location_id:
        return Check(name="ghl stages", ok=True, detail="skipped: ghl.location_id is not set")
    try:
        detail = asyncio.run(check_stages(config))
    except StsyncError as exc:
        return Check(name="ghl stages", ok=False, detail=str(exc), error=exc)
    return Check(name="ghl stages", ok=True, detail=detail)


def check_config(config: Config) -> list[Check]:
    """Every connection check, in order; none stops the others."""
    return [check_database(config), check_servicetitan(config), check_token_cache(config), check_ghl_stages(config)]
