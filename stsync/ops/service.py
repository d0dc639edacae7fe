"""Wire the configuration to `stsync health`: the one place its config becomes settings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from stsync.config import Config, required_secret
from stsync.ops.health import HealthSettings, Limits, Report, check
from stsync.sync.service import excluded_streams
from stsync.sync.streams import STREAMS


def health_settings(config: Config) -> HealthSettings:
    h = config.health
    excluded = excluded_streams(config)
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
