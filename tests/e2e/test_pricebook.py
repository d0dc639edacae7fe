"""The pricebook in the mirror: what estimates and invoices sell joins to it by sku_id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, sync_json

PRICEBOOK = (
    "SELECT st_id FROM servicetitan.st_pricebook_services UNION SELECT st_id FROM servicetitan.st_pricebook_materials"
    " UNION SELECT st_id FROM servicetitan.st_pricebook_equipment"
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        yield sb


def test_estimate_and_invoice_items_name_pricebook_entries(sandbox: Any, db_dsn: str) -> None:
    code, doc = sync_json(["full"], cli_env(sandbox.url, db_dsn))
    assert code == 0
    fetched = {s["name"]: s["fetched"] for s in doc["streams"]}
    world = sandbox.world.dump()
    for name in ("pricebook_categories", "pricebook_services", "pricebook_materials", "pricebook_equipment"):
        assert fetched[name] == len(world[name]) > 0, name
    with psycopg.connect(db_dsn) as conn:
        for items in ("st_estimate_items", "st_invoice_items"):
            row = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE sku_id NOT IN ({PRICEBOOK})) FROM servicetitan.{items}"
            ).fetchone()
            assert row is not None and row[0] > 0 and row[1] == 0, (items, row)
