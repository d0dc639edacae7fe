"""The GHL side's repository: the only GHL code that talks psycopg. Driver errors become stsync errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from stsync.config import check_url
from stsync.db.connect import connect, error_for
from stsync.errors import DatabaseUnavailable, LockedError, StsyncError, UsageError
from stsync.ghl.settings import BusinessUnitSeed, StoreSettings
from stsync.masking import mask_webhook
from stsync.sqlfile import load

Q = load("ghl")


class Store:
    """One connection; every write commits on its own so a killed push loses at most one item's bookkeeping."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], *, dry_run: bool = False) -> None:
        self.conn = conn
        self.dry_run = dry_run  # dry run: everything happens in one transaction that is rolled back
        self._counted = 0  # GHL requests of this run already added to the day's count
        self._turn = asyncio.Lock()  # the push makes several changes at once over this one connection

    async def fetch(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        async with self._turn:
            return await self._run(name, params)

    async def write(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self._turn:  # the statement and its commit, with no other change's statement between
            return await self._write(name, params)

    async def _write(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            rows = await self._run(name, params)
        except StsyncError:
            if not self.dry_run:  # the changes still in flight go on writing on this connection
                with contextlib.suppress(psycopg.Error):
                    await self.conn.rollback()
            raise
        if not self.dry_run:
            try:
                await self.conn.commit()
            except psycopg.Error as exc:
                raise error_for(exc, f"committing {name}") from None
        return rows

    async def _run(self, name: str, params: dict[str, Any] | None) -> list[dict[str, Any]]:
        try:
            async with self.conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(Q[name], params or {})
                return list(await cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise error_for(exc, f"running {name}") from None

    async def count_requests(self, location_id: str, sent: int) -> None:
        """Bring the location's count for today (``ghl.daily_request_budget``) up to the ``sent`` requests this
        run has made so far, adding what is new since the last call: called after every change, so a killed
        run loses at most one change's count. A failed statement before it is rolled back first: every
        change's bookkeeping has committed on its own."""
        async with self._turn:
            if sent <= self._counted:
                return
            if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                await self.conn.rollback()
            await self._write("add_requests", {"location_id": location_id, "requests": sent - self._counted})
            self._counted = sent

    async def seed_business_units(self, seeds: tuple[BusinessUnitSeed, ...]) -> None:
        for bu in seeds:
            await self.write(
                "seed_business_unit",
                {
                    "id": bu.id,
                    "name": bu.name,
                    "sync_enabled": bu.sync_enabled,
                    "mode": bu.mode,
                    "pipeline": bu.pipeline,
                    "webhook_url": bu.webhook_url,
                },
            )


@contextlib.asynccontextmanager
async def open_store(settings: StoreSettings, *, dry_run: bool = False, lock: bool = False) -> AsyncIterator[Store]:
    """A Store on a fresh connection (UTC); with ``lock`` the push's advisory lock is held on it."""
    conn = await connect(settings.dsn, settings.connect_timeout)
    try:
        if lock:
            # A session lock taken outside any transaction outlives the dry run's rollback.
            await conn.set_autocommit(True)
            cur = await conn.execute(Q["try_lock"])
            row = await cur.fetchone()
            if not row or not row[0]:
                raise LockedError("another stsync ghl push is running; exiting without pushing")
            await conn.set_autocommit(False)
        store = Store(conn, dry_run=dry_run)
        await store.seed_business_units(settings.business_units)
        yield store
        if dry_run:
            await conn.rollback()
        else:
            await conn.commit()
    except psycopg.Error as exc:
        raise error_for(exc, "talking to the database") from None
    finally:
        await conn.close()  # also releases the advisory lock


async def set_business_unit(settings: StoreSettings, bu_id: int, **changes: Any) -> None:
    """Change one business unit's routing; UsageError when it is unknown."""
    params: dict[str, Any] = {
        "id": bu_id,
        "name": None,
        "sync_enabled": None,
        "mode": None,
        "pipeline": None,
        "webhook_url": None,
    }
    params.update({k: v for k, v in changes.items() if v is not None})
    if params["webhook_url"] is not None:
        try:
            params["webhook_url"] = check_url(params["webhook_url"], https_only=True)
        except ValueError as exc:
            raise UsageError(f"--webhook-url {exc}") from None
    async with open_store(settings) as store:
        try:
            rows = await store.write("set_business_unit", params)
        except DatabaseUnavailable as exc:
            if "check constraint" in str(exc):
                raise UsageError(
                    f"business unit {bu_id}: webhook mode needs --webhook-url, api mode needs --pipeline"
                ) from None
            raise
        if not rows:
            raise UsageError(f"business unit {bu_id} is not configured; add it under ghl.business_units")


async def list_business_units(settings: StoreSettings) -> list[dict[str, Any]]:
    """Every business unit's routing, webhook URLs masked (they are secrets)."""
    async with open_store(settings) as store:
        rows = await store.fetch("list_business_units")
    return [{**r, "webhook_url": mask_webhook(r["webhook_url"])} for r in rows]


async def statistics(
    settings: StoreSettings, dead_limit: int = 20
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Counts by kind and status, and up to ``dead_limit`` dead letters."""
    async with open_store(settings) as store:
        return await store.fetch("statistics"), await store.fetch("dead_letters", {"limit": dead_limit})


async def job_status(settings: StoreSettings, job_id: int) -> dict[str, Any]:
    async with open_store(settings) as store:
        rows: Sequence[dict[str, Any]] = await store.fetch(
            "job_status", {"job_id": job_id, "location_id": settings.location_id}
        )
    if not rows:
        raise UsageError(f"job {job_id} is not in the mirror; run `stsync sync` first")
    return rows[0]


async def requeue(settings: StoreSettings, dead: bool) -> dict[str, int]:
    async with open_store(settings) as store:
        rows = await store.write("requeue_failed", {"dead": dead, "location_id": settings.location_id})
    return {k: int(v) for k, v in rows[0].items()}
