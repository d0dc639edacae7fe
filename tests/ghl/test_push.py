"""`stsync ghl push` core against the ServiceTitan mirror and the GHL sandbox over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg

from stsync.ghl.service import push
from tests.ghl.conftest import config_at, write_config


def run_push(path: Path, what: str = "all", **kw: Any) -> Any:
    return asyncio.run(push(config_at(path), what, **kw))


def rows(dsn: str, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_push_creates_one_contact_and_opportunity_each(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """Every customer with a job in an enabled BU gets one contact; each (customer, pipeline) one opportunity."""
    path = write_config(tmp_path, mirror_dsn, ghl.url)
    result = run_push(path)
    print(result)
    dump = ghl.dump()
    print({k: (len(v) if hasattr(v, "__len__") else v) for k, v in dump.items()})
    assert result.counts["contacts"]["created"] > 0


def test_a_push_with_nothing_pending_makes_no_ghl_call(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    from stsync.cli.ghl_cmd import push_line

    path = write_config(tmp_path, mirror_dsn, ghl.url)
    first = run_push(path)
    assert first.planned_total > 0 and first.requests > 0
    ghl.clear_requests()
    again = run_push(path)
    assert again.planned_total == 0
    assert again.requests == 0
    assert ghl.requests == []
    assert "nothing to push" in push_line(again)
    # Each run left its row in the push log, with what it did.
    logged = rows(mirror_dsn, "SELECT status, changes, requests, failed FROM integrations.ghl_push_log ORDER BY id")
    made = sum(first.counts[k][v] for k in first.counts for v in ("created", "updated", "posted"))
    assert logged == [("completed", made, first.requests, 0), ("completed", 0, 0, 0)]


def test_the_push_keeps_the_do_not_disturb_flag_ghl_answers_with(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """A contact someone set to DND in GHL: the push's next update of it reads the flag from GHL's answer into
    the bookkeeping (workflows skip messages to it)."""
    path = write_config(tmp_path, mirror_dsn, ghl.url)
    assert int(run_push(path).exit_code) == 0
    assert rows(mirror_dsn, "SELECT count(*) FROM integrations.ghl_contacts WHERE dnd") == [(0,)]
    customer, contact = rows(mirror_dsn, "SELECT st_customer_id, ghl_contact_id FROM integrations.ghl_contacts "
                                         "ORDER BY st_customer_id LIMIT 1")[0]  # fmt: skip
    with ghl.app.store.lock:
        ghl.app.store.contacts[contact]["dnd"] = True
    rows(mirror_dsn, "UPDATE servicetitan.st_customers SET name = name || ' Jr', last_synced_at = now() "
                     "WHERE st_id = %s RETURNING 1", (customer,))  # fmt: skip
    assert int(run_push(path).exit_code) == 0
    assert rows(mirror_dsn, "SELECT st_customer_id FROM integrations.ghl_contacts WHERE dnd") == [(customer,)]
