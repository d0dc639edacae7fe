"""A push shows its way: it reports where it stands after each change, and off a terminal the CLI turns that
into a plain line every 30 s (customers examined of all, changes, requests, rate, ETA)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stsync.cli.ghl_cmd import PlainProgress
from stsync.ghl.changes import PushProgress
from stsync.ghl.service import push
from tests.ghl.conftest import config_at, write_config


def test_the_plain_line_comes_every_30_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    now = [1000.0]
    line = PlainProgress(every=30, clock=lambda: now[0])
    for t, examined in ((10, 0), (29, 1000)):
        now[0] = 1000.0 + t
        line(PushProgress(customers=4000, examined=examined, changes=5, requests=9))
    assert capsys.readouterr().err == ""
    now[0] = 1030.0
    line(PushProgress(customers=4000, examined=1000, changes=900, requests=1500))
    assert capsys.readouterr().err == (
        "ghl push: 1,000 of 4,000 customers, 900 changes made, 1,500 requests (50.0/s), ETA 1m30s\n"
    )
    now[0] = 1059.0
    line(PushProgress(customers=4000, examined=2000, changes=1800, requests=3000))
    assert capsys.readouterr().err == ""
    now[0] = 1061.0
    line(PushProgress(customers=4000, examined=2000, changes=1800, requests=3000))
    assert "2,000 of 4,000 customers" in capsys.readouterr().err


def test_a_push_reports_each_change_and_ends_with_every_customer_examined(
    mirror_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    reports: list[PushProgress] = []
    result = asyncio.run(push(config_at(write_config(tmp_path, mirror_dsn, ghl.url)), "all", progress=reports.append))
    made = sum(n for counts in result.counts.values() for k, n in counts.items() if k in ("created", "updated"))
    assert made > 0 and len(reports) >= made
    assert [r.changes for r in reports] == sorted(r.changes for r in reports)
    last = reports[-1]
    assert (last.customers, last.examined) == (result.examined, result.examined)
    assert last.requests == result.requests
    assert last.changes == result.planned_total
