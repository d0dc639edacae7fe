"""The small frozen settings the GHL code below the service takes (built in ``stsync.ghl.service``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BusinessUnitSeed:
    """One ``ghl.business_units`` item: seeds integrations.business_units for an id not there yet."""

    id: int
    name: str
    sync_enabled: bool
    mode: str
    pipeline: str | None
    webhook_url: str | None = field(default=None, repr=False)  # a secret


@dataclass(frozen=True)
class StoreSettings:
    dsn: str = field(repr=False)
    connect_timeout: float = 10
    business_units: tuple[BusinessUnitSeed, ...] = ()


@dataclass(frozen=True)
class PushSettings:
    location_id: str
    max_attempts: int = 5
    install_pipeline: str = "Install"
    protected_stages: tuple[str, ...] = ("Job Sold", "Estimate Lost")
    technicians_field: str = "Technicians"
