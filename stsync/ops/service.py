"""Wire the configuration to `stsync health`: the one place its config becomes settings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from stsync.config import Config, required_secret
from stsync.ops.health import HealthSettings, Limits, Report, check
from stsync.sync.service import check_stream_names, excluded_streams
from stsync.sync.streams import STREAMS


def health_settings(config: Config) -> HealthSettings:
    h = config.health
    excluded = excluded_streams(config)
    check_stream_names("health.stream_every_minutes", set(h.stream_every_minutes))
    return HealthSettings(
        dsn=required_secret(config.database.url, "database.url"),
        tenant_id=config.servicetitan.tenant_id,
        streams=tuple((s.name, h.every_minutes(s.name)) for s in STREAMS if s.name not in excluded),
        location_id=config.ghl.location_id or None,
        limits=Limits(**{f.name: getattr(h, f.name) for f in dataclasses.fields(Limits)}),
        connect_timeout=config.database.connect_timeout,
    )


def health(config: Config, now: datetime | None = None) -> Report:
    """`stsync health`: every check as of ``now`` (default: the present)."""
    return check(health_settings(config), now or datetime.now(UTC))


def ping(url: str, report: Report | None, timeout: float) -> str | None:
    """Report to a healthchecks.io-style URL: ``/start`` before the checks (``report`` None), then the URL itself
    when they pass (OK or WARNING) or ``/fail``, with the report's lines as the body. None when it went through,
    else one line saying why, naming only the host: the URL's path is the check's secret."""
    import httpx

    from stsync.ops.health import Status

    base = url.rstrip("/")
    if report is None:
        target, body = f"{base}/start", ""
    else:
        ok = report.status in (Status.OK, Status.WARNING)
        target, body = (base if ok else f"{base}/fail"), "\n".join(report.lines()) + "\n"
    host = httpx.URL(base).host or "?"
    try:
        response = httpx.post(target, content=body.encode(), timeout=timeout)
    except httpx.HTTPError as exc:
        return f"ping to {host} failed: {type(exc).__name__}"
    if response.status_code >= 400:
        return f"ping to {host} failed: HTTP {response.status_code}"
    return None
