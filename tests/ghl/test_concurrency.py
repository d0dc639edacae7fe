"""The push makes several changes at once (ghl.concurrency) so that GHL's latency hides behind the pace, but
never two at once on one GHL record: two customers sharing an email are one contact, and concurrent upserts
of it could each create one."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from stsync.ghl.service import push
from stsync.sandbox.app import Request, Response
from tests.ghl.conftest import config_at, write_config
from tests.ghl.scenario import duplicates, expected_customers, rows

HOLD_S = 0.02  # each upsert is held this long inside the sandbox, so that overlapping ones are seen overlapping


class Overlaps:
    """Wraps the sandbox's entry point: how many upserts are in flight at once, overall and per email."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.most = 0
        self.most_per_email = 0

    def __call__(self, req: Request) -> Response:
        if req.method != "POST" or req.path != "/contacts/upsert":
            return self._handle(req)
        email = str(json.loads(req.body).get("email") or f"(none {id(req)})")
        with self._lock:
            self.now[email] += 1
            self.most = max(self.most, sum(self.now.values()))
            self.most_per_email = max(self.most_per_email, self.now[email])
        try:
            time.sleep(HOLD_S)
            return self._handle(req)
        finally:
            with self._lock:
                self.now[email] -= 1


def test_changes_run_at_once_but_never_two_on_one_contact(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    with_email = [
        r[0]
        for r in rows(
            mirror_dsn,
            "SELECT DISTINCT customer_id FROM servicetitan.st_customer_contacts WHERE type = 'Email' AND active "
            "AND customer_id = ANY(%s) ORDER BY 1",
            (sorted(expected_customers(mirror_dsn)),),
        )
    ]
    household = with_email[:12]
    assert len(household) == 12
    shared = "shared-household@example.org"
    with psycopg.connect(mirror_dsn) as conn:  # twelve customers of one household
        for cid in household:
            conn.execute(
                "UPDATE servicetitan.st_customer_contacts SET value = %s, last_synced_at = now() "
                "WHERE customer_id = %s AND type = 'Email'",
                (shared, cid),
            )
    overlaps = Overlaps(ghl.app.handle)
    ghl.app.handle = overlaps
    result = asyncio.run(push(config_at(write_config(tmp_path, mirror_dsn, ghl.url, concurrency=4)), "all"))
    assert int(result.exit_code) == 0
    assert overlaps.most > 1  # the changes did run at once
    assert overlaps.most_per_email == 1  # but never two upserts of one contact
    dump = ghl.dump()
    assert duplicates(dump) == []
    assert sum(c.get("email") == shared for c in dump["contacts"].values()) == 1
    linked = rows(
        mirror_dsn,
        "SELECT count(DISTINCT ghl_contact_id) FROM integrations.ghl_contacts WHERE st_customer_id = ANY(%s)",
        (household,),
    )
    assert linked == [(1,)]
