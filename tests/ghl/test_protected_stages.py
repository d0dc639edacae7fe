"""Protected stages (sold and lost by default, in stsync's stage names; `ghl.protected_stages`) are never left
backward.

The mirror is edited with SQL to stand for a ServiceTitan change the sandbox's `advance` never makes (a
sold estimate reopened); the push itself runs for real against the GHL sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stsync.ghl import plan
from stsync.ghl.service import push
from tests.ghl.conftest import config_at, write_config
from tests.ghl.scenario import opportunity_view, rows


def run_push(path: Path) -> Any:
    result = asyncio.run(push(config_at(path), "all"))
    assert int(result.exit_code) == 0, result
    return result


def ghl_stage(ghl: Any, dsn: str, customer: int, pipeline: str = "Sales") -> tuple[str, str]:
    (oid,) = rows(
        dsn,
        "SELECT ghl_opportunity_id FROM integrations.ghl_opportunities WHERE st_customer_id = %s AND pipeline = %s",
        (customer, pipeline),
    )[0]
    o = opportunity_view(ghl.dump())[oid]
    return o["stage"], o["status"]


def set_estimates(dsn: str, customer: int, old: str, new: str) -> None:
    with psycopg.connect(dsn) as conn:
        n = conn.execute(
            "UPDATE servicetitan.st_estimates e SET last_synced_at = now(), status = %s FROM servicetitan.st_jobs j "
            "WHERE j.st_id = e.job_id AND j.customer_id = %s AND e.status = %s AND j.business_unit_id = 1314",
            (new, customer, old),
        ).rowcount
        assert n > 0


def customer_in(dsn: str, stage: str) -> int:
    return int(
        rows(
            dsn,
            "SELECT min(st_customer_id) FROM integrations.ghl_opportunities WHERE pipeline = 'Sales' "
            "AND stage_name = %s",
            (stage,),
        )[0][0]
    )


@pytest.mark.parametrize(
    ("current", "desired", "protected", "expected"),
    [
        ("sold", "proposal_sent", ("sold",), "sold"),
        ("sold", "lost", ("sold", "lost"), "sold"),
        ("lost", "sold", ("sold", "lost"), "sold"),
        ("lost", "proposal_sent", ("sold", "lost"), "lost"),
        ("proposal_sent", "contacted", ("sold", "lost"), "contacted"),
        ("sold", "proposal_sent", (), "proposal_sent"),
        ("completed", "scheduled", ("completed",), "completed"),
        ("completed", "canceled", ("completed",), "completed"),  # a later canceled job leaves a completed install
        ("canceled", "scheduled", ("canceled",), "scheduled"),  # a rebooked job moves a canceled one on
    ],
)
def test_protect_rule(current: str, desired: str, protected: tuple[str, ...], expected: str) -> None:
    """Only a protected stage holds, and only against a less advanced stage."""
    kind = "install" if current in plan.stage_order("install") else "sales"
    assert plan.protect(desired, "open", current, "won", kind, protected)[0] == expected


def test_job_sold_is_not_left_backward_unless_unprotected(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """A sold estimate reopened in ServiceTitan leaves the opportunity in Job Sold/won; with
    `ghl.protected_stages: []` the same change moves it back to Proposal Sent/open."""
    path = write_config(tmp_path, mirror_dsn, ghl.url)
    run_push(path)
    customer = customer_in(mirror_dsn, "Job Sold")
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Job Sold", "won")
    set_estimates(mirror_dsn, customer, "Sold", "Open")
    result = run_push(path)
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Job Sold", "won")
    assert result.counts["opportunities"]["unchanged"] > 0
    run_push(write_config(tmp_path, mirror_dsn, ghl.url, protected_stages=[]))
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Proposal Sent", "open")


def test_estimate_lost_can_still_be_won(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """Estimate Lost is protected against going back to Proposal Sent, but a later sale moves it forward."""
    path = write_config(tmp_path, mirror_dsn, ghl.url)
    run_push(path)
    customer = customer_in(mirror_dsn, "Estimate Lost")
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Estimate Lost", "lost")
    set_estimates(mirror_dsn, customer, "Dismissed", "Open")
    run_push(path)
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Estimate Lost", "lost")
    set_estimates(mirror_dsn, customer, "Open", "Sold")
    run_push(path)
    assert ghl_stage(ghl, mirror_dsn, customer) == ("Job Sold", "won")
