"""Knobs of the GHL sandbox: locations and tokens, duplicate rules, pipelines, custom fields, limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SALES_STAGES = (
    "New Lead",
    "Contacted",
    "Appointment Scheduled",
    "Proposal Sent",
    "Estimate Follow-up",
    "Job Sold",
    "Estimate Lost",
)
INSTALL_STAGES = ("Scheduled", "InProgress", "Hold", "Completed")
DEFAULT_PIPELINES: Mapping[str, tuple[str, ...]] = {"Sales": SALES_STAGES, "Install": INSTALL_STAGES}

# (model, name, dataType): created in every location; ids and fieldKeys derive from seed and name.
DEFAULT_CUSTOM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("contact", "ServiceTitan Customer ID", "TEXT"),
    ("contact", "Technicians", "TEXT"),
    ("opportunity", "Technicians", "TEXT"),
    ("opportunity", "ServiceTitan Job ID", "TEXT"),
)

API_VERSION = "2021-07-28"


@dataclass(frozen=True)
class GhlOptions:
    """Everything a GHL sandbox is made of; the same seed gives the same ids for the same calls.

    `clock` returns seconds (monotonic); it drives the rate limiter, the daily budget and every
    timestamp the sandbox writes, so tests can move time without sleeping.
    """

    seed: int = 42
    locations: Mapping[str, str] = field(default_factory=lambda: {"loc-sandbox-1": "pit-sandbox-token-1"})
    rate_limit: int = 100  # burst: requests per window per location (0 = off)
    rate_window_s: float = 10.0
    daily_limit: int = 200_000  # per location per (sandbox) day
    allow_duplicate_contacts: bool = False  # the location setting "Allow Duplicate Contact"
    duplicate_match: tuple[str, ...] = ("email", "phone")  # "Find existing contacts based on", in order
    allow_multiple_opportunities: bool = False  # "Allow Multiple Opportunities per Contact" (per pipeline)
    pipelines: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PIPELINES))
    custom_fields: tuple[tuple[str, str, str], ...] = DEFAULT_CUSTOM_FIELDS
    custom_field_value_keys: tuple[str, ...] = ("field_value", "fieldValue", "value")
    versions: tuple[str, ...] = (API_VERSION,)
    clock: Callable[[], float] = time.monotonic
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    faults: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        bad = set(self.duplicate_match) - {"email", "phone"}
        if bad or not self.duplicate_match:
            raise ValueError(f"duplicate_match must list 'email' and/or 'phone', got {self.duplicate_match!r}")
        if not self.locations:
            raise ValueError("at least one location (id -> token) is needed")
