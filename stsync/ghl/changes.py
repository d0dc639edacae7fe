"""What a GHL push plans and what it reports: one dataclass per kind of change, and the push's result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stsync.errors import ExitCode
from stsync.ghl import plan


@dataclass(frozen=True)
class ContactChange:
    customer_id: int
    fields: dict[str, Any]
    digest: str
    row: Mapping[str, Any] | None  # the bookkeeping row, None when never pushed
    reason: str
    kind: str = "contacts"

    @property
    def known(self) -> str | None:
        return self.row["ghl_contact_id"] if self.row else None

    @property
    def verb(self) -> str:
        return "update" if self.known else "create"

    def line(self) -> str:
        return f"contact {self.verb} customer={self.customer_id} ({self.reason})"


@dataclass(frozen=True)
class OpportunityChange:
    want: plan.OpportunityWant
    row: Mapping[str, Any] | None
    stage: str  # stsync's stage name
    target: str  # the location's stage (name or id) it maps to
    status: str
    digest: str
    reason: str
    kind: str = "opportunities"

    @property
    def verb(self) -> str:
        return "update" if self.row and self.row["ghl_opportunity_id"] else "create"

    def line(self) -> str:
        w = self.want
        return (
            f"opportunity {self.verb} "
            f"customer={w.customer_id} pipeline={w.pipeline} stage={self.target!r} status={self.status}"
            + (f" value={w.job.value}" if w.job.value is not None else "")
            + f" ({self.reason})"
        )


@dataclass(frozen=True)
class WebhookChange:
    job: Mapping[str, Any]
    post: Mapping[str, Any] | None  # the post log's row, None when never tried
    contact: dict[str, Any]  # the customer's email and phone
    kind: str = "webhooks"
    verb = "post"

    def line(self) -> str:
        return f"webhook post job={self.job['job_id']} business_unit={self.job['business_unit']}"


Change = ContactChange | OpportunityChange | WebhookChange


def _counters() -> dict[str, Counter[str]]:
    return {"contacts": Counter(), "opportunities": Counter(), "webhooks": Counter()}


@dataclass
class PushPlan:
    changes: list[Change] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=_counters)  # what needs no change, by kind


@dataclass
class PushResult:
    what: str
    dry_run: bool
    counts: dict[str, Counter[str]] = field(default_factory=_counters)
    planned: list[str] = field(default_factory=list)
    planned_total: int = 0
    dead_urls: list[str] = field(default_factory=list)
    requests: int = 0
    stopped: str | None = None  # why the run stopped before its last change (a request budget), if it did
    remaining: int = 0  # changes left for the next run then
    mode: str = "full"  # 'changes': only the customers whose mirror rows changed since `since`; 'full': all
    since: datetime | None = None
    examined: int = 0  # customers whose desired state was computed
    location_id: str = ""  # the GHL location planned for; empty only in a dry run without ghl.location_id

    @property
    def exit_code(self) -> ExitCode:
        bad = sum(c["failed"] + c["dead"] for c in self.counts.values())
        return ExitCode.PARTIAL if bad or self.dead_urls else ExitCode.OK


@dataclass(frozen=True)
class PushProgress:
    """Where a push stands, reported after each change it makes (``stsync.cli.ghl_cmd`` shows it)."""

    customers: int  # to examine in this run
    examined: int  # customers planned so far
    changes: int  # changes made so far
    requests: int  # GHL requests sent so far
