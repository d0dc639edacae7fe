"""What a poll is given and what it reports, and the workflow definitions it reads once per poll."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stsync.events.definitions import Workflow, WorkflowError, from_definition
from stsync.events.store import EventStore

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PollSettings:
    batch: int = 500
    lease_seconds: int = 300
    max_attempts: int = 5
    retry_base_seconds: float = 60
    overdue_grace_days: int = 0
    estimate_open_days: int = 7
    limit: int | None = None  # at most this many events, and this many steps, in one poll
    dry_run: bool = False


@dataclass
class PollResult:
    detected: int = 0  # time-based events found by this poll
    events: int = 0  # events matched
    verdicts: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)  # by outcome: ok, retry, dead, cancelled, opted_out, …
    dry_run: bool = False
    workflows: int = 0


class Definitions:
    """Workflow definitions by (name, hash), read and checked once per poll."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._by_hash: dict[tuple[str, str], Workflow] = {}
        # Current definitions this version of stsync no longer accepts: (name, trigger, why). Their events get
        # an error verdict; the other workflows go on.
        self.broken: list[tuple[str, str, str]] = []

    async def current(self) -> list[Workflow]:
        out = []
        for row in await self.store.rows("current_workflows"):
            try:
                out.append(self._checked(row))
            except WorkflowError as exc:
                self.broken.append((row["name"], row["trigger_event"], exc.message))
        return out

    async def get(self, name: str, version_hash: str) -> Workflow:
        key = (name, version_hash)
        if key not in self._by_hash:
            row = await self.store.one("definition", {"name": name, "hash": version_hash})
            if row is None:
                raise WorkflowError(f"workflow '{name}' version {version_hash[:12]} is not stored")
            self._checked(row)
        return self._by_hash[key]

    def _checked(self, row: dict[str, Any]) -> Workflow:
        key = (row["name"], row["version_hash"])
        if key not in self._by_hash:
            self._by_hash[key] = from_definition(row["definition"], row["version_hash"])
        return self._by_hash[key]
