"""`stsync state`: the sync checkpoints, read and (carefully) changed.

A change takes the run lock, so it never races a sync, and leaves a note in the sync log (sync_type 'state')
naming the key and its old and new value, next to the runs it affects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from stsync.db.connect import connect_sync, error_for
from stsync.errors import UsageError
from stsync.ops.health import Q
from stsync.sync.repository import RunLock
from stsync.sync.streams import STREAMS_BY_NAME

# What each stream's checkpoints are (stsync.sync.feeds and stsync.sync.backfill write them).
STREAM_KEYS = ("continue_from", "high_water", "walk", "generation", "seeded", "backfill")
RUN_KEYS = ("lastJobPull", "full_run.generation", "full_run.status")
VALUES = {"walk": ("full", "done", "since"), "seeded": ("yes",), "full_run.status": ("in_progress", "done")}
DATES = ("high_water", "lastJobPull")


@dataclass(frozen=True)
class StateSettings:
    dsn: str
    tenant_id: int
    connect_timeout: float = 10


@dataclass(frozen=True)
class Checkpoint:
    key: str
    value: str | None
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "updated_at": self.updated_at.isoformat()}


def check_stream(stream: str) -> None:
    if stream not in STREAMS_BY_NAME:
        raise UsageError(f"unknown stream '{stream}' (known: {', '.join(STREAMS_BY_NAME)})")


def checkpoints(settings: StateSettings, prefix: str | None = None) -> list[Checkpoint]:
    try:
        with connect_sync(settings.dsn, settings.connect_timeout) as conn:
            rows = conn.execute(Q["state_list"], {"prefix": prefix}).fetchall()
    except psycopg.Error as exc:
        raise error_for(exc, "reading the checkpoints") from None
    return [Checkpoint(k, v, t) for k, v, t in rows]


def check_key(key: str, value: str) -> tuple[str, str]:
    """The stream ``key`` belongs to ('' for a run-level one) and the value to store (a date in UTC, with its
    zone: zone-less means UTC), or a usage error naming what is wrong."""
    name, _, field = key.rpartition(".")
    stream = ""
    if key not in RUN_KEYS:
        if name not in STREAMS_BY_NAME or field not in STREAM_KEYS:
            raise UsageError(
                f"'{key}' is no checkpoint: use <stream>.<{'|'.join(STREAM_KEYS)}> or one of {', '.join(RUN_KEYS)}"
            )
        stream = name
    short = key if key in RUN_KEYS else field
    if short in VALUES and value not in VALUES[short]:
        raise UsageError(f"'{value}' is not a value of {key}: one of {', '.join(VALUES[short])}")
    if short in DATES:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"'{value}' is not an ISO 8601 date-time, as {key} must be") from None
        value = (when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)).isoformat()
    return stream, value


async def set_checkpoint(settings: StateSettings, key: str, value: str) -> str:
    """Set ``key`` to ``value`` under the run lock, and note it in the sync log; the note."""
    stream, value = check_key(key, value)
    async with RunLock(settings.dsn, settings.tenant_id, settings.connect_timeout) as lock:
        assert lock.conn is not None
        try:
            async with lock.conn.transaction():
                cur = await lock.conn.execute(Q["state_set"], {"key": key, "value": value})
                row = await cur.fetchone()
                assert row is not None
                old = f"'{row[0]}'" if row[1] else "unset"
                note = f"state set {key}: {old} -> '{value}'"
                await lock.conn.execute(Q["state_note"], {"run_id": uuid.uuid4(), "stream": stream, "note": note})
        except psycopg.Error as exc:
            raise error_for(exc, f"setting {key}") from None
    return note


async def reset_stream(settings: StateSettings, stream: str) -> str:
    """Remove every checkpoint of ``stream`` under the run lock (its next run walks it from the start), and note
    it in the sync log; the note."""
    check_stream(stream)
    async with RunLock(settings.dsn, settings.tenant_id, settings.connect_timeout) as lock:
        assert lock.conn is not None
        try:
            async with lock.conn.transaction():
                cur = await lock.conn.execute(Q["state_reset"], {"prefix": f"{stream}."})
                removed = sorted(f"{k}='{v}'" for k, v in await cur.fetchall())
                note = f"state reset {stream}: removed {', '.join(removed) if removed else 'nothing (it had none)'}"
                await lock.conn.execute(Q["state_note"], {"run_id": uuid.uuid4(), "stream": stream, "note": note})
        except psycopg.Error as exc:
            raise error_for(exc, f"resetting {stream}") from None
    return note
