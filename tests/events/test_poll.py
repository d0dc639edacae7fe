"""`events poll` against a real PostgreSQL and a local HTTP sink: verdicts, instances, steps, waits, stop
conditions, retries and dead letters, opt-outs, and time-based events."""

from __future__ import annotations

from pathlib import Path

from tests.events.helpers import Clock, Sink, invoice, job, load, rows, run_poll, write

POST_ON_COMPLETED = """
workflows:
  - name: completed-post
    trigger: job_completed
    conditions: ["entity.total >= 5.0", "entity.job_status == 'Completed'"]
    steps:
      - action: http.post
        url_env: SINK_URL
        body: {job: "{{ entity.id }}", number: "{{ entity.job_number }}", was: "{{ event.old.job_status }}"}
"""


def test_a_matching_event_enrols_once_and_its_step_posts_once(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    load(db_dsn, POST_ON_COMPLETED, tmp_path)
    write(db_dsn, "jobs", [job(1)], [job(1, "Completed", 1)])
    clock = Clock()
    result = run_poll(db_dsn, clock, env={"SINK_URL": sink.url + "/hook"})
    assert result.events == 2 and result.verdicts["enrolled"] == 1 and result.steps["ok"] == 1
    (instance,) = rows(db_dsn, "SELECT id, state FROM automation.workflow_instances")
    assert instance[1] == "completed"
    assert [r["body"] for r in sink.requests] == [{"job": 1, "number": "1", "was": "Scheduled"}]
    assert sink.keys() == [f"stsync-{instance[0]}-0"]
    again = run_poll(db_dsn, clock, env={"SINK_URL": sink.url})
    assert (again.events, sum(again.steps.values()), len(sink.requests)) == (0, 0, 1)
    ledger = rows(db_dsn, "SELECT attempt, result, finished_at IS NOT NULL FROM automation.workflow_step_executions")
    assert ledger == [(1, "ok", True)]


def test_a_false_condition_is_recorded_with_its_clause_and_values(db_dsn: str, tmp_path: Path) -> None:
    load(db_dsn, POST_ON_COMPLETED.replace("5.0", "1000.0"), tmp_path)
    write(db_dsn, "jobs", [job(1)], [job(1, "Completed", 1)])
    result = run_poll(db_dsn, Clock())
    assert result.verdicts["filtered"] == 1
    ((verdict, detail),) = rows(db_dsn, "SELECT verdict, detail FROM automation.event_verdicts")
    assert verdict == "filtered"
    assert detail == {"clause": "entity.total >= 1000.0", "index": 0, "values": {"entity.total": 10.0}}


def test_a_condition_on_a_field_with_no_value_filters_rather_than_errs(db_dsn: str, tmp_path: Path) -> None:
    """`entity.total >= 5.0` on a job without a total: filtered, saying the value was null (CEL itself would
    fail on comparing null with a number)."""
    load(db_dsn, POST_ON_COMPLETED, tmp_path)
    record = job(1, "Completed")
    del record["total"]
    write(db_dsn, "jobs", [record])
    assert run_poll(db_dsn, Clock()).verdicts["filtered"] == 1
    ((detail,),) = rows(db_dsn, "SELECT detail FROM automation.event_verdicts")
    assert detail == {"clause": "entity.total >= 5.0", "index": 0, "values": {"entity.total": None}, "null": True}


def test_a_second_occurrence_is_deduped_and_a_disabled_workflow_says_so(db_dsn: str, tmp_path: Path) -> None:
    load(db_dsn, POST_ON_COMPLETED + POST_ON_COMPLETED.replace("workflows:", "").replace(
        "completed-post", "paused").replace("trigger:", "enabled: false\n    trigger:"), tmp_path)  # fmt: skip
    write(db_dsn, "jobs", [job(1)], [job(1, "Completed", 1)], [job(1, "Hold", 2)], [job(1, "Completed", 3)])
    run_poll(db_dsn, Clock(), env={"SINK_URL": "http://127.0.0.1:1"}, limit=10, max_attempts=1)
    got = rows(db_dsn, "SELECT e.version, v.workflow_name, v.verdict FROM automation.event_verdicts v "
                       "JOIN automation.events e ON e.id = v.event_id ORDER BY e.id, v.workflow_name")  # fmt: skip
    assert [(w, v) for _, w, v in got] == [
        ("completed-post", "enrolled"), ("paused", "disabled"), ("completed-post", "deduped"), ("paused", "disabled")
    ]  # fmt: skip


WAIT_THEN_POST = """
workflows:
  - name: follow-up
    trigger: estimate_created
    stop_when: entity.status == 'Sold'
    steps:
      - action: log
        message: "estimate {{ entity.id }} created"
      - wait: 2d
        action: http.post
        url_env: SINK_URL
        dedupes: true
"""


def test_a_wait_fires_on_the_first_poll_after_it_is_due_and_not_before(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    from tests.events.helpers import estimate

    load(db_dsn, WAIT_THEN_POST, tmp_path)
    write(db_dsn, "estimates", [estimate(1)])
    clock, env = Clock(), {"SINK_URL": sink.url}
    assert run_poll(db_dsn, clock, env=env).steps["ok"] == 1  # the log step; the post is due in 2 days
    clock.advance(days=1, hours=23, minutes=59)
    assert sum(run_poll(db_dsn, clock, env=env).steps.values()) == 0 and sink.requests == []
    clock.advance(minutes=2)
    assert run_poll(db_dsn, clock, env=env).steps["ok"] == 1
    assert len(sink.requests) == 1


def test_a_stop_condition_true_when_the_step_comes_due_cancels_it(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    from tests.events.helpers import estimate

    load(db_dsn, WAIT_THEN_POST, tmp_path)
    write(db_dsn, "estimates", [estimate(1)])
    clock, env = Clock(), {"SINK_URL": sink.url}
    run_poll(db_dsn, clock, env=env)
    write(db_dsn, "estimates", [estimate(1, "Sold", 1)])  # sold meanwhile
    clock.advance(days=2, seconds=1)
    assert run_poll(db_dsn, clock, env=env).steps["cancelled"] == 1
    assert sink.requests == []
    assert rows(db_dsn, "SELECT state FROM automation.workflow_instances") == [("cancelled",)]
    (detail,) = rows(db_dsn, "SELECT detail FROM automation.workflow_step_executions WHERE result = 'cancelled'")
    assert detail[0] == {"stop_when": "entity.status == 'Sold'", "values": {"entity.status": "Sold"}}


def test_a_failing_step_backs_off_then_becomes_a_dead_letter(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    load(db_dsn, POST_ON_COMPLETED, tmp_path)
    write(db_dsn, "jobs", [job(1, "Completed")])
    sink.status = 503
    clock, env = Clock(), {"SINK_URL": sink.url + "/services/T0/secret-token"}
    assert run_poll(db_dsn, clock, env=env, max_attempts=3).steps["retry"] == 1
    assert sum(run_poll(db_dsn, clock, env=env, max_attempts=3).steps.values()) == 0  # backing off: not due yet
    clock.advance(seconds=61)
    assert run_poll(db_dsn, clock, env=env, max_attempts=3).steps["retry"] == 1
    clock.advance(seconds=119)
    assert sum(run_poll(db_dsn, clock, env=env, max_attempts=3).steps.values()) == 0  # the second wait is 120 s
    clock.advance(seconds=2)
    assert run_poll(db_dsn, clock, env=env, max_attempts=3).steps["dead"] == 1
    assert len(sink.requests) == 3
    ledger = rows(db_dsn, "SELECT attempt, result, error FROM automation.workflow_step_executions ORDER BY attempt")
    assert [(a, r) for a, r, _ in ledger] == [(1, "retry"), (2, "retry"), (3, "dead")]
    assert "answered HTTP 503" in ledger[2][2] and "secret-token" not in ledger[2][2]  # the URL's path is a secret
    assert rows(db_dsn, "SELECT state FROM automation.workflow_instances") == [("failed",)]


def test_a_message_to_a_customer_who_opted_out_is_skipped(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    load(db_dsn, POST_ON_COMPLETED.replace("url_env: SINK_URL", "url_env: SINK_URL\n        messages_customer: true"),
         tmp_path)  # fmt: skip
    rows(db_dsn, "INSERT INTO servicetitan.st_customers (st_id, name, do_not_mail, full_data) "
                 "VALUES (201, 'A', true, '{}') RETURNING 1")  # fmt: skip
    write(db_dsn, "jobs", [job(1, "Completed")])
    assert run_poll(db_dsn, Clock(), env={"SINK_URL": sink.url}).steps["opted_out"] == 1
    assert sink.requests == []
    assert rows(db_dsn, "SELECT result, detail FROM automation.workflow_step_executions") == [
        ("opted_out", {"opted_out": ["do_not_mail"]})
    ]


def test_a_message_to_a_contact_with_do_not_disturb_in_ghl_is_skipped(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    """GHL's DND flag (read by `ghl pull`) counts in the configured location only."""
    load(db_dsn, POST_ON_COMPLETED.replace("url_env: SINK_URL", "url_env: SINK_URL\n        messages_customer: true"),
         tmp_path)  # fmt: skip
    rows(db_dsn, "INSERT INTO integrations.ghl_contacts (st_customer_id, ghl_contact_id, location_id, dnd) "
                 "VALUES (201, 'c1', 'loc-a', true), (202, 'c2', 'loc-b', true) RETURNING 1")  # fmt: skip
    write(db_dsn, "jobs", [job(1, "Completed"), job(2, "Completed")])
    result = run_poll(db_dsn, Clock(), env={"SINK_URL": sink.url}, ghl_location="loc-a")
    assert (result.steps["opted_out"], result.steps["ok"]) == (1, 1)
    assert [r["body"]["job"] for r in sink.requests] == [2]


OVERDUE_LOG = """
workflows:
  - name: overdue
    trigger: invoice_overdue
    steps:
      - {action: log, message: "invoice {{ entity.id }} is overdue by {{ entity.balance }}"}
"""


def test_invoice_overdue_is_found_as_the_due_date_passes_and_history_is_no_storm(db_dsn: str, tmp_path: Path) -> None:
    clock = Clock()
    soon = (clock.now.replace(microsecond=0) + __import__("datetime").timedelta(hours=1)).isoformat()
    load(db_dsn, OVERDUE_LOG, tmp_path)
    write(db_dsn, "invoices", [invoice(1, due=soon), invoice(2, due="2020-01-01T00:00:00Z")], capture=None)
    first = run_poll(db_dsn, clock)
    assert first.detected == 0  # invoice 2 was overdue before events existed: history, not an event
    clock.advance(minutes=59)
    assert run_poll(db_dsn, clock).detected == 0
    clock.advance(minutes=2)
    found = run_poll(db_dsn, clock)
    assert (found.detected, found.steps["ok"]) == (1, 1)
    clock.advance(days=3)
    assert run_poll(db_dsn, clock).detected == 0  # once per invoice and due date
    assert rows(db_dsn, "SELECT st_id, event_type FROM automation.events") == [(1, "invoice_overdue")]


def test_estimate_open_is_found_n_days_after_creation_while_still_open(db_dsn: str, tmp_path: Path) -> None:
    """estimate_open: still Open events.estimate_open_days after it was created; once per estimate, and not for
    one sold meanwhile."""
    from datetime import timedelta

    from tests.events.helpers import estimate

    clock = Clock()
    made = (clock.now - timedelta(days=6, hours=23)).isoformat()
    write(db_dsn, "estimates", [estimate(1, createdOn=made), estimate(2, createdOn=made),
                                estimate(3, createdOn="2020-01-01T00:00:00Z")], capture=None)  # fmt: skip
    assert run_poll(db_dsn, clock, estimate_open_days=7).detected == 0  # starts the clock; 3 is history
    write(db_dsn, "estimates", [estimate(2, "Sold", 1, createdOn=made)])
    clock.advance(hours=2)
    assert run_poll(db_dsn, clock, estimate_open_days=7).detected == 1
    clock.advance(days=1)
    assert run_poll(db_dsn, clock, estimate_open_days=7).detected == 0
    assert rows(db_dsn, "SELECT st_id, version FROM automation.events WHERE event_type = 'estimate_open'") == [
        (1, "7 days")
    ]
