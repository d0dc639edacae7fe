"""The small frozen settings the GHL code below the service takes (built in ``stsync.ghl.service``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stsync.ghl.stages import PROTECTED_DEFAULT, PipelineStages, default_kind, norm


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
    location_id: str | None = None  # ghl.location_id: whose bookkeeping `ghl retry` and `jobs show` look at


@dataclass(frozen=True)
class PushSettings:
    location_id: str
    max_attempts: int = 5
    install_pipeline: str = "Install"
    protected_stages: tuple[str, ...] = PROTECTED_DEFAULT  # stsync's stage names
    technicians_field: str = "Technicians"
    pipelines: tuple[PipelineStages, ...] = ()  # the ones ghl.pipelines lists
    daily_request_budget: int = 150_000  # per location and UTC day, over all runs
    concurrency: int = 4  # changes in flight at once (the client's limiter keeps the pace)

    def stages_for(self, pipeline: str) -> PipelineStages:
        """The pipeline's mapping: as configured, else the defaults of its kind."""
        for mapping in self.pipelines:
            if norm(mapping.pipeline) == norm(pipeline):
                return mapping
        return PipelineStages.of(pipeline, default_kind(pipeline, self.install_pipeline))
