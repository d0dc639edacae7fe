"""The step queue under real processes: two `stsync events poll` at once, and a poll killed mid-step."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

from tests.e2e.harness import STSYNC, run_cli
from tests.events.helpers import Clock, Sink, job, load, rows, run_poll, write

DELAYED_POST = """
workflows:
  - name: delayed-post
    trigger: job_completed
    steps:
      - wait: 1m
        action: http.post
        url_env: SINK_URL
        {extra}
"""


def _env(dsn: str, sink: Sink, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env.update({"STSYNC_DATABASE__URL": dsn, "SINK_URL": sink.url + "/hook", **extra})
    return env


def _due_steps(dsn: str, tmp: Path, n: int, extra: str = "") -> None:
    """``n`` instances whose step is already due: matched by a poll whose clock is two minutes behind."""
    load(dsn, DELAYED_POST.format(extra=extra), tmp)
    write(dsn, "jobs", [job(i, "Completed") for i in range(1, n + 1)])
    clock = Clock()
    clock.advance(minutes=-2)
    result = run_poll(dsn, clock)
    assert result.verdicts["enrolled"] == n and sum(result.steps.values()) == 0


def test_two_polls_at_once_run_each_step_exactly_once(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    _due_steps(db_dsn, tmp_path, 1000)
    env = _env(db_dsn, sink, STSYNC_EVENTS__BATCH="20")
    polls = [subprocess.Popen([STSYNC, "events", "poll", "--json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in polls]
    assert [p.returncode for p in polls] == [0, 0], [o[1][-500:] for o in outputs]
    keys = sink.keys()
    assert len(keys) == 1000 and len(set(keys)) == 1000
    assert rows(db_dsn, "SELECT count(*) FROM automation.workflow_step_executions WHERE result = 'ok'") == [(1000,)]
    ran = [int(__import__("json").loads(out)["steps"].get("ok", 0)) for out, _ in outputs]
    assert sum(ran) == 1000


def _kill_mid_step(db_dsn: str, sink: Sink) -> None:
    sink.hold.set()
    poll = subprocess.Popen([STSYNC, "events", "poll"], env=_env(db_dsn, sink, STSYNC_EVENTS__LEASE_SECONDS="10", STSYNC_EVENTS__TIMEOUT_SECONDS="3"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert sink.received.wait(60), "the poll never reached the sink"
    finally:
        poll.send_signal(signal.SIGKILL)
        poll.wait(30)
    sink.hold.clear()


def test_a_poll_killed_mid_step_is_reclaimed_when_its_lease_runs_out(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    """The receiver dedupes (dedupes: true): the next poll past the lease posts again, with the same key."""
    _due_steps(db_dsn, tmp_path, 1, extra="dedupes: true")
    _kill_mid_step(db_dsn, sink)
    clock = Clock()
    assert sum(run_poll(db_dsn, clock, env={"SINK_URL": sink.url}).steps.values()) == 0  # the lease still holds
    clock.advance(seconds=11)
    assert run_poll(db_dsn, clock, env={"SINK_URL": sink.url}).steps["ok"] == 1
    ledger = rows(db_dsn, "SELECT attempt, result, idempotency_key FROM automation.workflow_step_executions "
                          "ORDER BY attempt")  # fmt: skip
    assert [(a, r) for a, r, _ in ledger] == [(1, "unknown"), (2, "ok")]
    assert ledger[0][2] == ledger[1][2]
    keys = sink.keys()
    assert len(keys) == 2 and keys[0] == keys[1] == ledger[0][2]


def test_a_killed_step_whose_receiver_does_not_dedupe_is_not_repeated(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    _due_steps(db_dsn, tmp_path, 1)
    _kill_mid_step(db_dsn, sink)
    clock = Clock()
    clock.advance(seconds=11)
    assert run_poll(db_dsn, clock, env={"SINK_URL": sink.url}).steps["dead"] == 1
    assert len(sink.requests) == 1
    ((result, error),) = rows(db_dsn, "SELECT result, error FROM automation.workflow_step_executions WHERE attempt = 2")
    assert result == "dead" and "not repeated" in error
    status = run_cli(["workflows", "status"], _env(db_dsn, sink))
    assert status.returncode == 0 and "1 dead" in status.stdout and "not repeated" in status.stdout


def test_a_lease_is_a_wall_clock_interval(db_dsn: str) -> None:
    """The claim query's lease arithmetic: claimed_until is the poll's clock plus lease_seconds."""
    rows(db_dsn, "INSERT INTO automation.events (entity, st_id, event_type, version, new_values) "
                 "VALUES ('jobs', 1, 'job_created', 'v', '{}') RETURNING 1")  # fmt: skip
    clock = Clock()
    run_poll(db_dsn, clock, lease_seconds=300)
    ((processed, attempts),) = rows(db_dsn, "SELECT processed_at, attempts FROM automation.events")
    assert attempts == 1 and abs(processed - clock.now) < timedelta(seconds=1)


def test_steps_claimed_by_a_slow_poll_are_run_once_by_the_poll_that_takes_them_over(
    db_dsn: str, sink: Sink, tmp_path: Path
) -> None:
    """A poll claims a batch and is slow: past the lease, another poll takes the steps it had not started over
    and runs them (none of them ran: no attempt was open), and the slow poll, reaching them, finds them gone."""
    import asyncio

    from stsync.events.store import open_events

    _due_steps(db_dsn, tmp_path, 3)
    clock = Clock()

    async def with_store(name: str, params: dict[str, object]) -> list[dict[str, object]]:
        async with open_events(db_dsn) as store:
            return await store.rows(name, params)

    claimed = asyncio.run(with_store("claim_steps", {"now": clock(), "limit": 10, "lease": 60, "claim": "slow"}))
    clock.advance(seconds=61)
    taken = run_poll(db_dsn, clock, env={"SINK_URL": sink.url})
    late = asyncio.run(with_store("start_step", {"instance_id": claimed[0]["instance_id"], "step_no": 0,
                                                 "claim": "slow", "now": clock(), "lease": 60}))  # fmt: skip
    assert len(claimed) == 3 and taken.steps["ok"] == 3 and late == []
    assert len(sink.requests) == 3
    ledger = rows(db_dsn, "SELECT attempt, result FROM automation.workflow_step_executions")
    assert sorted(ledger) == [(1, "ok")] * 3


def test_an_action_that_raises_is_a_dead_letter_and_the_poll_goes_on(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    """An unusable URL (httpx.InvalidURL is no transport error) fails its step for good, with one line; the poll
    runs the other steps and exits normally."""
    bad = DELAYED_POST.format(extra="").replace("wait: 1m", "wait: 0s")
    good = bad.replace("workflows:", "").replace("delayed-post", "good-post").replace("SINK_URL", "GOOD_URL")
    load(db_dsn, bad + good, tmp_path)
    write(db_dsn, "jobs", [job(1, "Completed")])
    result = run_poll(db_dsn, Clock(), env={"SINK_URL": "http://[::1/hook", "GOOD_URL": sink.url})
    assert (result.steps["dead"], result.steps["ok"]) == (1, 1) and len(sink.requests) == 1
    ((error,),) = rows(db_dsn, "SELECT last_error FROM automation.workflow_steps WHERE state = 'dead'")
    assert error.startswith("InvalidURL: ")


def test_a_stored_definition_this_version_rejects_gets_error_verdicts_and_the_others_run(
    db_dsn: str, tmp_path: Path
) -> None:
    load(db_dsn, DELAYED_POST.format(extra=""), tmp_path)
    rows(db_dsn, "INSERT INTO automation.workflow_definitions (name, version_hash, trigger_event, definition) "
                 "VALUES ('old', 'h', 'job_completed', %s) RETURNING 1",
         '{"name": "old", "trigger": "job_completed", "steps": [{"action": "sms"}]}')  # fmt: skip
    write(db_dsn, "jobs", [job(1, "Completed")])
    result = run_poll(db_dsn, Clock())
    assert (result.verdicts["error"], result.verdicts["enrolled"]) == (1, 1)
    ((detail,),) = rows(db_dsn, "SELECT detail FROM automation.event_verdicts WHERE verdict = 'error'")
    assert "unknown action 'sms'" in detail["message"]
