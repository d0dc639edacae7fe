"""Workflow actions on GHL (the GHL sandbox) next to `ghl push`: tags, a stage moved forward, a contact queued
for the push; and precedence: push and poll alternately over changing data never move a stage back and forth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.ghl.conftest import write_config
from tests.ghl.scenario import cli, env_for, opportunity_view, push_json, rows

WORKFLOWS = """
workflows:
  - name: new-job-follow-up
    trigger: job_created
    steps:
      - {action: ghl.add_tag, tag: "new-job"}
      - {action: ghl.move_opportunity, stage: follow_up}
  - name: completed-job
    trigger: job_completed
    steps:
      - {action: ghl.remove_tag, tag: "new-job"}
      - {action: ghl.add_tag, tag: "completed-{{ entity.job_number }}"}
      - {action: ghl.upsert_contact}
"""


@pytest.fixture
def st() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=11)) as sb:
        yield sb


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = cli(args, env)
    assert proc.returncode in (0, 1), (args, proc.stdout[-500:], proc.stderr[-1500:])


def test_push_and_poll_alternately_never_move_a_stage_back_and_forth(
    st: Any, db_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    env = env_for(st.url, db_dsn, write_config(tmp_path, db_dsn, ghl.url),
                  STSYNC_EVENTS__RETRY_BASE_SECONDS="0.01", STSYNC_EVENTS__MAX_ATTEMPTS="8")  # fmt: skip
    (tmp_path / "w.yaml").write_text(WORKFLOWS)
    _run(["sync", "full"], env)
    assert push_json(env)[0] == 0
    _run(["workflows", "load", str(tmp_path / "w.yaml")], env)
    history: dict[str, list[str]] = {}

    def snapshot() -> None:
        for oid, o in opportunity_view(ghl.dump()).items():
            stages = history.setdefault(oid, [])
            if not stages or stages[-1] != o["stage"]:
                stages.append(o["stage"])

    snapshot()
    for _ in range(4):
        st.advance(minutes=120, changes=True)
        for args in (["sync", "incremental"], ["events", "poll"], ["ghl", "push"], ["events", "poll"], ["ghl", "push"]):
            _run(args, env)
            snapshot()
    # The push looks again at customers whose opportunity a workflow moved (their name changed): the mirror
    # implies an earlier stage, and the push keeps the workflow's.
    at_follow_up = [o["contactId"] for o in opportunity_view(ghl.dump()).values() if o["stage"] == "Estimate Follow-up"]
    rows(db_dsn, "UPDATE servicetitan.st_customers c SET name = c.name || ' Jr', last_synced_at = now() "
                 "FROM integrations.ghl_contacts g WHERE g.st_customer_id = c.st_id AND g.ghl_contact_id = ANY(%s) "
                 "RETURNING 1", (at_follow_up,))  # fmt: skip
    code, again = push_json(env)
    assert code == 0 and again["examined"] >= len(at_follow_up) > 0, again
    snapshot()
    moved = rows(db_dsn, "SELECT count(*) FROM automation.workflow_step_executions x "
                         "JOIN automation.workflow_steps s USING (instance_id, step_no) "
                         "WHERE s.action = 'ghl.move_opportunity' AND x.result = 'ok' AND x.detail ? 'to'")[0][0]  # fmt: skip
    assert moved > 0, "no workflow moved a stage: the test proves nothing"
    back_and_forth = {oid: s for oid, s in history.items() if len(s) != len(set(s))}
    assert back_and_forth == {}
    dump = ghl.dump()
    tags = [t for c in dump["contacts"].values() for t in c.get("tags") or []]
    assert "new-job" in tags and any(t.startswith("completed-") for t in tags)
    follow_up = [o for o in opportunity_view(dump).values() if o["stage"] == "Estimate Follow-up"]
    assert follow_up, "the workflow's stage was undone"
    queued = rows(db_dsn, "SELECT count(*) FROM automation.workflow_step_executions x "
                          "WHERE x.detail ? 'queued_for_push' AND x.result = 'ok'")[0][0]  # fmt: skip
    completed = rows(db_dsn, "SELECT count(*) FROM automation.workflow_instances "
                             "WHERE workflow_name = 'completed-job' AND state = 'completed'")  # fmt: skip
    assert queued == completed[0][0] > 0
