"""Failures retry over later runs with backoff and become dead letters after `ghl.max_attempts`;
`stsync ghl status` lists them, `stsync ghl retry [--dead]` resubmits them, `stsync jobs show` tells.

GHL refuses one customer's contact with 422 through a thin transport in front of the sandbox (the
sandbox accepts any email string; the real API refuses some): the in-process pushes use it, the CLI
runs afterwards talk to the plain sandbox, as after a fix."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from stsync.ghl.service import push
from tests.ghl.conftest import LOCATION, config_at, write_config
from tests.ghl.scenario import cli, env_for, rows

REFUSAL = {"statusCode": 422, "message": ["email must be an email"], "error": "Unprocessable Entity"}


class RefuseOne(httpx.AsyncBaseTransport):
    """Answers 422 to any contact write carrying `marker`; everything else goes to the sandbox."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.inner = httpx.AsyncHTTPTransport()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.method in ("POST", "PUT") and request.url.path.startswith("/contacts") and self.marker in body:
            self.refused += 1
            return httpx.Response(422, json=REFUSAL)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def contact_row(dsn: str, customer: int) -> tuple[str, int, timedelta | None, str | None]:
    """Status, attempts, the backoff (next retry minus the time of the failure) and the error."""
    return rows(
        dsn,
        "SELECT sync_status, attempts, next_retry_at - updated_at, error FROM integrations.ghl_contacts "
        "WHERE st_customer_id = %s",
        (customer,),
    )[0]


def time_passes(dsn: str) -> None:
    """Every pending retry becomes due (instead of waiting minutes)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE integrations.ghl_contacts SET next_retry_at = now() - interval '1 second' "
            "WHERE next_retry_at IS NOT NULL"
        )


def test_failed_contact_backs_off_then_dies_then_is_resubmitted(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    customer, email, job = rows(
        mirror_dsn,
        "SELECT j.customer_id, min(cc.value), min(j.st_id) FROM servicetitan.st_jobs j "
        "JOIN servicetitan.st_customer_contacts cc ON cc.customer_id = j.customer_id AND cc.type = 'Email' "
        "WHERE j.business_unit_id = 1314 AND j.active GROUP BY 1 ORDER BY 1 LIMIT 1",
    )[0]
    path = write_config(tmp_path, mirror_dsn, ghl.url, max_attempts=3)
    config = config_at(path)
    refuse = RefuseOne(email.lower())

    def run() -> Any:
        return asyncio.run(push(config, "all", transport=refuse))

    first = run()
    assert int(first.exit_code) == 1
    assert first.counts["contacts"]["failed"] == 1
    assert first.counts["opportunities"]["waiting_for_contact"] >= 1
    status, attempts, next_retry, error = contact_row(mirror_dsn, customer)
    assert (status, attempts) == ("failed", 1)
    assert "422" in (error or "") and "email must be an email" in (error or "")
    assert next_retry == timedelta(minutes=2)

    # not due yet: a run right after leaves it alone
    refused = refuse.refused
    again = run()
    assert refuse.refused == refused and again.counts["contacts"]["failed"] == 0
    assert contact_row(mirror_dsn, customer)[:2] == ("failed", 1)

    time_passes(mirror_dsn)
    run()
    status, attempts, next_retry, _ = contact_row(mirror_dsn, customer)
    assert (status, attempts) == ("failed", 2)
    assert next_retry == timedelta(minutes=4)

    time_passes(mirror_dsn)
    third = run()
    assert third.counts["contacts"]["dead"] == 1
    assert contact_row(mirror_dsn, customer)[:2] == ("dead", 3)
    time_passes(mirror_dsn)
    refused = refuse.refused
    run()
    assert refuse.refused == refused  # a dead letter is not retried by itself

    env = env_for("http://127.0.0.1:9", mirror_dsn, path)
    status_out = cli(["ghl", "status"], env)
    assert status_out.returncode == 0
    assert "contacts       dead     1" in status_out.stdout
    assert f"dead contact {customer} location={LOCATION} attempts=3: GHL POST /contacts/upsert answered HTTP 422" in (
        status_out.stdout
    )
    shown = cli(["jobs", "show", str(job)], env)
    assert "contact_status: dead" in shown.stdout and "email must be an email" in shown.stdout

    plain = cli(["ghl", "retry", "--json"], env)  # without --dead: dead letters stay dead
    assert json.loads(plain.stdout)["exit_code"] == 0, plain.stdout
    assert contact_row(mirror_dsn, customer)[0] == "dead"
    dead = cli(["ghl", "retry", "--dead"], env)
    assert dead.returncode == 0, dead.stderr
    assert dead.stdout.startswith("requeued contacts=1 opportunities=0 webhook_posts=0")
    assert "contacts[created=1" in dead.stdout
    assert contact_row(mirror_dsn, customer)[:2] == ("synced", 0)
    shown = cli(["jobs", "show", str(job)], env)
    assert "contact_status: synced" in shown.stdout and "ghl_opportunity_id: " in shown.stdout
    assert "dead" not in cli(["ghl", "status"], env).stdout
