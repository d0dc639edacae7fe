"""A location whose pipelines name their stages themselves: `ghl.pipelines` maps stsync's stages to them, the
opportunities land in the mapped stages, and a stage the location lacks stops `config check` and `ghl push`
with one line naming it (exit 78) before anything is pushed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsync.sandbox.ghl import GhlSandbox
from tests.ghl.conftest import ghl_options, write_config
from tests.ghl.scenario import cli, env_for, expected_opportunities, one_line_error, opportunity_view, push_json, rows

SALES = {
    "contacted": "Reached Out",
    "appointment_scheduled": "Visit Booked",
    "proposal_sent": "Estimate Sent",
    "follow_up": "Chasing",
    "lost": "Lost",
    "sold": "Won",
}
INSTALL = {
    "scheduled": "Booked",
    "in_progress": "Working",
    "hold": "On Hold",
    "completed": "Done",
    "canceled": "Cancelled",
}
# The stage names of the defaults (what expected_opportunities computes) → the location's.
DEFAULT_TO_MAPPED = {
    "Contacted": SALES["contacted"],
    "Appointment Scheduled": SALES["appointment_scheduled"],
    "Proposal Sent": SALES["proposal_sent"],
    "Estimate Lost": SALES["lost"],
    "Job Sold": SALES["sold"],
    "Scheduled": INSTALL["scheduled"],
    "InProgress": INSTALL["in_progress"],
    "Hold": INSTALL["hold"],
    "Completed": INSTALL["completed"],
}


@pytest.fixture
def location() -> Iterator[Any]:
    pipelines = {"Sales": ("New Lead", *SALES.values()), "Install": tuple(INSTALL.values())}
    with GhlSandbox.start(ghl_options(pipelines=pipelines)) as g:
        yield g


def _mapping(**changes: str) -> dict[str, Any]:
    return {"Sales": {"stages": {**SALES, **changes}}, "Install": {"stages": INSTALL}}


def test_opportunities_move_to_the_mapped_stages(mirror_dsn: str, location: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path, mirror_dsn, location.url, pipelines=_mapping())
    env = env_for("http://127.0.0.1:9", mirror_dsn, config)
    check = cli(["config", "check"], env)
    assert "ghl stages: ok" in check.stdout, check.stdout + check.stderr

    code, doc = push_json(env)
    assert code == 0, doc
    view = opportunity_view(location.dump())
    pushed = rows(mirror_dsn, "SELECT st_customer_id, pipeline, ghl_opportunity_id FROM integrations.ghl_opportunities")
    actual = {(cid, pipeline): (view[oid]["stage"], view[oid]["status"]) for cid, pipeline, oid in pushed}
    expected = {
        key: (
            INSTALL["canceled"] if want["status"] == "abandoned" else DEFAULT_TO_MAPPED[want["stage"]],
            want["status"],
        )
        for key, want in expected_opportunities(mirror_dsn).items()
    }
    assert actual == expected
    assert {stage for stage, _ in actual.values()} >= {SALES["sold"], SALES["proposal_sent"], INSTALL["completed"]}

    code, again = push_json(env)
    assert code == 0 and again["planned_total"] == 0, again


@pytest.mark.parametrize(
    ("stages", "needles"),
    [
        ({"proposal_sent": "Estimate Snt"}, ("'Estimate Snt'", "ghl.pipelines.Sales.stages.proposal_sent")),
        ({"sold": ""}, ("ghl.pipelines.Sales.stages.sold",)),  # left empty: a config error
    ],
)
def test_a_misspelt_stage_fails_check_and_push_before_anything_is_pushed(
    mirror_dsn: str, location: Any, tmp_path: Path, stages: dict[str, str], needles: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, mirror_dsn, location.url, pipelines=_mapping(**stages))
    env = env_for("http://127.0.0.1:9", mirror_dsn, config)
    check = cli(["config", "check"], env)
    assert check.returncode == 78, check.stdout + check.stderr
    failed = [line for line in (check.stdout + check.stderr).splitlines() if all(n in line for n in needles)]
    assert len(failed) == 1, check.stdout + check.stderr
    one_line_error(cli(["ghl", "push"], env), 78, *needles)
    dump = location.dump()
    assert dump["contacts"] == {} and dump["opportunities"] == {}
    assert rows(mirror_dsn, "SELECT count(*) FROM integrations.ghl_contacts") == [(0,)]


def test_an_unmapped_stage_the_location_lacks_is_named_with_its_default(
    mirror_dsn: str, location: Any, tmp_path: Path
) -> None:
    """Sales mapped without `sold`: its default "Job Sold" is not in the location."""
    sales = {k: v for k, v in SALES.items() if k != "sold"}
    config = write_config(
        tmp_path, mirror_dsn, location.url, pipelines={"Sales": {"stages": sales}, "Install": {"stages": INSTALL}}
    )
    env = env_for("http://127.0.0.1:9", mirror_dsn, config)
    needles = ("'Job Sold'", "ghl.pipelines.Sales.stages.sold, the default", "'Won'")
    check = cli(["config", "check"], env)
    assert check.returncode == 78 and all(n in check.stdout for n in needles), check.stdout
    one_line_error(cli(["ghl", "push"], env), 78, *needles)
    assert location.dump()["contacts"] == {}


def test_pipelines_prints_a_mapping_that_config_check_accepts_once_completed(
    mirror_dsn: str, location: Any, tmp_path: Path
) -> None:
    import yaml

    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, location.url))
    listed = cli(["ghl", "pipelines"], env)
    assert listed.returncode == 0 and "Estimate Sent (id " in listed.stdout, listed.stderr
    proc = cli(["ghl", "pipelines", "--mapping"], env)
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)["ghl"]["pipelines"]
    assert printed["Sales"]["stages"]["proposal_sent"] == "Estimate Sent"
    assert printed["Install"]["stages"]["in_progress"] == "Working"
    assert printed["Install"]["kind"] == "install"
    for name, stages in (("Sales", SALES), ("Install", INSTALL)):  # what the operator completes or corrects
        printed[name]["stages"] = {**printed[name]["stages"], **stages}
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, location.url, pipelines=printed))
    check = cli(["config", "check"], env)
    assert "ghl stages: ok" in check.stdout, check.stdout + check.stderr
