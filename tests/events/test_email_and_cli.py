"""The email action against a real SMTP server (aiosmtpd, started by the test), the webhook action against
a business unit's URL, and the `workflows` / `events` commands as an operator runs them."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from stsync.events.actions import SmtpSettings
from tests.e2e.harness import run_cli
from tests.events.helpers import Clock, Sink, invoice, job, load, rows, run_poll, write

OVERDUE_EMAIL = """
workflows:
  - name: overdue-invoice-alert
    trigger: invoice_overdue
    conditions: ["entity.balance > 0.0"]
    steps:
      - action: email
        to: [office@example.com]
        subject: "Invoice {{ entity.id }} is overdue"
        body: "Balance {{ entity.balance }} of {{ entity.total }}, due {{ entity.due_date }}."
"""


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Any:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, SmtpSettings("127.0.0.1", controller.port, "none", "stsync@example.com")
    finally:
        controller.stop()


def test_an_overdue_invoice_sends_its_email_through_a_real_smtp_server(db_dsn: str, smtp: Any, tmp_path: Path) -> None:
    inbox, settings = smtp
    load(db_dsn, OVERDUE_EMAIL, tmp_path)
    write(db_dsn, "invoices", [invoice(7, due="2026-01-01T00:00:00Z")])  # overdue as it arrives
    result = run_poll(db_dsn, Clock(), smtp=settings)
    assert result.steps["ok"] == 1
    (envelope,) = inbox.messages
    assert envelope.mail_from == "stsync@example.com" and envelope.rcpt_tos == ["office@example.com"]
    text = envelope.content.decode()
    assert "Subject: Invoice 7 is overdue" in text
    assert "Balance 100 of 100, due 2026-01-01T00:00:00+00:00." in text
    ((instance,),) = rows(db_dsn, "SELECT id FROM automation.workflow_instances")
    assert f"Message-ID: <stsync-{instance}-0@example.com>" in text  # the same on every attempt of the step


def test_email_without_smtp_settings_is_a_dead_letter_that_retry_revives(
    db_dsn: str, smtp: Any, tmp_path: Path
) -> None:
    """The step is dead, saying what is missing; once SMTP is configured, `workflows retry` and the next poll
    send it, and the ledger keeps both attempts."""
    inbox, settings = smtp
    load(db_dsn, OVERDUE_EMAIL, tmp_path)
    write(db_dsn, "invoices", [invoice(7, due="2026-01-01T00:00:00Z")])
    assert run_poll(db_dsn, Clock()).steps["dead"] == 1
    ((error,),) = rows(db_dsn, "SELECT last_error FROM automation.workflow_steps")
    assert "smtp.host" in error
    retried = run_cli(["workflows", "retry"], _env(db_dsn))
    assert retried.returncode == 0 and "1 instances with dead steps made due again" in retried.stdout
    assert run_poll(db_dsn, Clock(), smtp=settings, max_attempts=1).steps["ok"] == 1
    assert len(inbox.messages) == 1
    ledger = rows(db_dsn, "SELECT attempt, result FROM automation.workflow_step_executions ORDER BY attempt")
    assert ledger == [(1, "dead"), (2, "ok")]
    assert rows(db_dsn, "SELECT state FROM automation.workflow_instances") == [("completed",)]


def test_ghl_webhook_posts_to_the_business_units_url(db_dsn: str, sink: Sink, tmp_path: Path) -> None:
    rows(db_dsn, "INSERT INTO integrations.business_units (st_business_unit_id, name, mode, webhook_url) "
                 "VALUES (1, 'Service', 'webhook', %s) RETURNING 1", sink.url + "/hooks/abc/webhook-trigger/xyz")  # fmt: skip
    load(db_dsn, """
workflows:
  - name: review-request
    trigger: job_completed
    steps:
      - {action: ghl.webhook, body: {type: review_request, job_id: "{{ entity.id }}"}}
""", tmp_path)  # fmt: skip
    write(db_dsn, "jobs", [job(3, "Completed")])
    assert run_poll(db_dsn, Clock()).steps["ok"] == 1
    assert [(r["path"], r["body"]) for r in sink.requests] == [
        ("/hooks/abc/webhook-trigger/xyz", {"type": "review_request", "job_id": 3})
    ]


def _env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env["STSYNC_DATABASE__URL"] = dsn
    return env


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("{action: log, message: hi, colour: red}", "workflow 'b': steps[0].colour: unknown field"),
        ("{action: sms}", "workflow 'b': steps[0].action: unknown action 'sms'"),
        ("{action: log, message: hi, wait: 2 days}", "workflow 'b': steps[0].wait: '2 days' is not a duration"),
        (
            "{action: log, message: '{{ entity.totl }}'}",
            "workflow 'b': steps[0].message (entity.totl): 'jobs' has no field",
        ),
    ],
)
def test_a_bad_workflows_file_loads_nothing_and_names_the_key(
    db_dsn: str, tmp_path: Path, step: str, says: str
) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_text(f"""
workflows:
  - {{name: a, trigger: job_completed, steps: [{{action: log, message: fine}}]}}
  - {{name: b, trigger: job_completed, conditions: ["entity.total >= 1.0"], steps: [{step}]}}
""")
    for command in ("check", "load"):
        proc = run_cli(["workflows", command, str(path)], _env(db_dsn))
        assert proc.returncode == 78, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"stsync: error: {path}: ") and says in line
    assert rows(db_dsn, "SELECT count(*) FROM automation.workflow_definitions") == [(0,)]


def test_a_type_error_in_a_condition_names_the_field_and_its_type(db_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_text("workflows: [{name: a, trigger: job_completed, conditions: ['entity.total >= \"x\"'], "
                    "steps: [{action: log, message: hi}]}]")  # fmt: skip
    proc = run_cli(["workflows", "check", str(path)], _env(db_dsn))
    assert (
        proc.returncode == 78
        and "conditions[0]: type error" in proc.stderr
        and "entity.total is a double" in proc.stderr
    )


def test_a_condition_that_fails_on_any_record_is_a_config_error(db_dsn: str, tmp_path: Path) -> None:
    """Checked on a record of zeros, `entity.id / entity.customer_id` divides by zero: one line, exit 78."""
    path = tmp_path / "workflows.yaml"
    path.write_text("workflows: [{name: a, trigger: job_completed, conditions: ['entity.id / entity.customer_id > 1'], "
                    "steps: [{action: log, message: hi}]}]")  # fmt: skip
    proc = run_cli(["workflows", "check", str(path)], _env(db_dsn))
    assert proc.returncode == 78 and "workflow 'a': conditions[0]: type error" in proc.stderr, proc.stderr


def test_load_list_explain_and_status_from_the_cli(db_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_text("""
workflows:
  - name: big-jobs
    trigger: job_completed
    conditions: ["entity.total >= 1000.0"]
    steps: [{action: log, message: "big job {{ entity.id }}"}]
""")
    env = _env(db_dsn)
    loaded = run_cli(["workflows", "load", str(path)], env)
    assert loaded.returncode == 0 and "big-jobs: new version" in loaded.stdout
    assert "big-jobs: unchanged" in run_cli(["workflows", "load", str(path)], env).stdout
    assert "job_completed" in run_cli(["workflows", "list"], env).stdout
    write(db_dsn, "jobs", [job(1)], [job(1, "Completed", 1)])
    dry = run_cli(["events", "poll", "--dry-run"], env)
    assert dry.returncode == 0 and "(dry run): 2 pending events" in dry.stdout and "filtered 1" in dry.stdout
    assert rows(db_dsn, "SELECT count(*) FROM automation.events WHERE processed_at IS NULL") == [(2,)]
    assert rows(db_dsn, "SELECT count(*) FROM automation.event_verdicts") == [(0,)]
    polled = run_cli(["events", "poll"], env)
    assert polled.returncode == 0 and "2 events" in polled.stdout and "filtered 1" in polled.stdout
    ((event_id,),) = rows(db_dsn, "SELECT id FROM automation.events WHERE event_type = 'job_completed'")
    explained = run_cli(["events", "explain", str(event_id)], env)
    assert explained.returncode == 0
    assert "big-jobs: filtered: 'entity.total >= 1000.0' was false (entity.total = 10.0)" in explained.stdout
    assert "job_status 'Scheduled' -> 'Completed'" in explained.stdout
    listed = run_cli(["events", "list", "--type", "job_completed"], env)
    assert listed.returncode == 0 and f"{event_id:>8}  job_completed" in listed.stdout
    assert run_cli(["events", "list", "--type", "job_done"], env).returncode == 2
    status = run_cli(["workflows", "status", "--json"], env)
    assert status.returncode == 0 and '"pending_events": 0' in status.stdout
    missing = run_cli(["events", "explain", "999999"], env)
    assert missing.returncode == 2 and "no event 999999" in missing.stderr


def test_a_lease_shorter_than_a_ghl_action_may_take_is_a_config_error(db_dsn: str) -> None:
    env = {**_env(db_dsn), "STSYNC_GHL__LOCATION_ID": "loc", "STSYNC_EVENTS__LEASE_SECONDS": "120"}
    proc = run_cli(["events", "poll"], env)
    assert proc.returncode == 78
    assert proc.stderr.strip() == (
        "stsync: error: config error: bad value for 'events.lease_seconds': must be at least 180 "
        "(ghl.retry_max_seconds + 2 x ghl.timeout_seconds), the longest a GHL action may take"
    )
