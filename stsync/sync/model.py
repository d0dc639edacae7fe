"""What a sync run is given (``SyncOptions``) and what it reports: each stream's result, the run's, and the
progress the CLI hears (``Observer``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, Protocol

from stsync.errors import ExitCode
from stsync.sync.merge import Capture
from stsync.sync.repository import PageCounts

SyncType = Literal["full", "incremental", "backfill"]


@dataclass(frozen=True)
class Unit:
    """One list query of a backfill: its parameters besides the stream's own."""

    params: tuple[tuple[str, str], ...]

    @classmethod
    def window(cls, by: str, start: str, end: str) -> Unit:
        return cls(((f"{by}OnOrAfter", start), (f"{by}Before", end)))

    @classmethod
    def ids(cls, ids: list[int]) -> Unit:
        return cls((("ids", ",".join(map(str, ids))),))


@dataclass
class StreamResult:
    name: str
    status: str = "started"  # completed | partial | failed | skipped
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    events: int = 0  # written to automation.events
    pages: int = 0
    requests: int = 0
    duration_ms: int = 0
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    outage: bool = False  # failed because the API or the database is down: the run's one error says so
    denied: bool = False  # ServiceTitan refused the stream's endpoint (HTTP 403): a scope the app lacks

    def add(self, counts: PageCounts) -> None:
        self.pages += 1
        self.fetched += counts.fetched
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.quarantined += counts.quarantined
        self.events += counts.events


@dataclass
class RunResult:
    run_id: uuid.UUID
    sync_type: SyncType
    dry_run: bool
    streams: list[StreamResult] = field(default_factory=list)
    duration_ms: int = 0
    requests: int = 0
    analyzed: list[str] = field(default_factory=list)  # tables the run analyzed (stsync.db.statistics)
    analyze_ms: int = 0

    @property
    def exit_code(self) -> ExitCode:
        codes = [s.exit_code for s in self.streams if s.exit_code != ExitCode.OK]
        if not codes:
            return ExitCode.OK
        # A failure outranks "partial"; among failures, the first stream's error decides.
        failures = [c for c in codes if c != ExitCode.PARTIAL]
        return failures[0] if failures else ExitCode.PARTIAL

    def totals(self) -> dict[str, int]:
        keys = ("fetched", "created", "updated", "unchanged", "quarantined", "events", "pages")
        return {k: sum(getattr(s, k) for s in self.streams) for k in keys}


class Observer(Protocol):
    """What the CLI hears while a run goes on (progress bars or plain lines)."""

    def stream_started(self, name: str) -> None: ...
    def page_written(self, name: str, result: StreamResult) -> None: ...
    def stream_finished(self, result: StreamResult) -> None: ...


class Silent:
    def stream_started(self, name: str) -> None:
        pass

    def page_written(self, name: str, result: StreamResult) -> None:
        pass

    def stream_finished(self, result: StreamResult) -> None:
        pass


@dataclass(frozen=True)
class SyncOptions:
    sync_type: SyncType
    dsn: str
    tenant_id: int
    page_size: int = 5000
    include_recent_changes: bool = False
    since: str | None = None
    dry_run: bool = False
    max_concurrency: int = 8
    connect_timeout: float = 10
    # Events (stsync.sync.merge.Capture), or None to write none. A stream's first walk into the mirror (its
    # whole history) writes none unless ``capture_first_sync``.
    capture: Capture | None = None
    capture_first_sync: bool = False
    # A backfill (`stsync backfill`): each stream's list queries, in order; its cursors are left alone.
    backfill: dict[str, tuple[Unit, ...]] | None = None
