"""Events written by the mirror's merge, in the page's own transaction: one per occurrence, none for a page
merged again, none for a record that did not change, and none when capture is off."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from stsync.sync.merge import Capture
from tests.events.helpers import appointment, estimate, events, invoice, job, write

CASES = [
    # (stream, first page, second page (a change), the event type, events of the first page, of the change)
    ("estimates", [estimate(1)], [estimate(1, "Sold", 1)], "estimate_approved", ["estimate_created"], 1),
    ("estimates", [estimate(1)], [estimate(1, "Dismissed", 1)], "estimate_rejected", ["estimate_created"], 1),
    ("jobs", [job(1)], [job(1, "Completed", 1)], "job_completed", ["job_created"], 1),
    (
        "invoices",
        [invoice(1)],
        [invoice(1, due="2026-01-01T00:00:00Z", n=1)],
        "invoice_overdue",
        ["invoice_created"],
        1,
    ),
]


@pytest.mark.parametrize(
    ("stream", "first", "change", "event_type", "on_create", "n"), CASES, ids=[c[3] for c in CASES]
)
def test_a_change_emits_its_event_once(
    db_dsn: str, stream: str, first: list[Any], change: list[Any], event_type: str, on_create: list[str], n: int
) -> None:
    """The change emits its event once; the same page again (a repeat, includeRecentChanges) emits nothing,
    and so does the first page merged again."""
    assert write(db_dsn, stream, first, first, change, change, first[:0]) == [1, 0, 1, 0, 0]
    got = events(db_dsn)
    assert [e[2] for e in got] == [*on_create, event_type]
    assert got[0][3] is None  # a new record has no old values
    assert got[1][3] is not None and got[1][3] != got[1][4]


@pytest.mark.parametrize(
    ("stream", "record", "event_type"),
    [
        ("estimates", estimate(5), "estimate_created"),
        ("jobs", job(5), "job_created"),
        ("invoices", invoice(5), "invoice_created"),
        ("appointments", appointment(5), "appointment_created"),
    ],
)
def test_a_new_record_emits_its_created_event(
    db_dsn: str, stream: str, record: dict[str, Any], event_type: str
) -> None:
    assert write(db_dsn, stream, [record], [record]) == [1, 0]
    assert [(e[0], e[1], e[2]) for e in events(db_dsn)] == [(stream, 5, event_type)]


def test_old_and_new_values_are_the_watched_fields(db_dsn: str) -> None:
    write(db_dsn, "estimates", [estimate(1)], [estimate(1, "Sold", 1)])
    approved = events(db_dsn)[-1]
    assert approved[3]["status"] == "Open" and approved[4]["status"] == "Sold"
    assert approved[4]["subtotal"] == 1500.0 and approved[4]["customer_id"] == 201


def test_install_job_created_follows_the_business_unit(db_dsn: str) -> None:
    """install_job_created: the business unit's name contains a configured word, or its id is listed."""
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO servicetitan.st_business_units (st_id, name, full_data) "
            "VALUES (7, 'Pool INSTALLATION', '{}'), (8, 'Service', '{}'), (9, 'Build 100%', '{}')"
        )
    write(db_dsn, "jobs", [job(1, bu=7), job(2, bu=8), job(3, bu=9)])
    assert [(e[1], e[2]) for e in events(db_dsn) if e[2] == "install_job_created"] == [(1, "install_job_created")]
    write(db_dsn, "jobs", [job(4, bu=8)], capture=Capture(install_units=(), install_unit_ids=(8,)))
    write(db_dsn, "jobs", [job(5, bu=1)], capture=Capture(install_units=("100%",)))  # % is no wildcard
    assert [e[1] for e in events(db_dsn) if e[2] == "install_job_created"] == [1, 4]


def test_a_status_change_and_back_emits_each_occurrence(db_dsn: str) -> None:
    """Sold, reopened, sold again: two approvals (two versions of the record)."""
    counts = write(db_dsn, "estimates", [estimate(1)], [estimate(1, "Sold", 1)], [estimate(1, "Open", 2)],
                   [estimate(1, "Sold", 3)])  # fmt: skip
    assert counts == [1, 1, 0, 1]


def test_a_new_record_that_is_already_sold_emits_both(db_dsn: str) -> None:
    write(db_dsn, "estimates", [estimate(1, "Sold")])
    assert sorted(e[2] for e in events(db_dsn)) == ["estimate_approved", "estimate_created"]


def test_an_invoice_overdue_before_and_after_the_change_emits_nothing_more(db_dsn: str) -> None:
    """Overdue is a condition: it fires when it becomes true, not on every change while it holds."""
    past = "2026-01-01T00:00:00Z"
    counts = write(db_dsn, "invoices", [invoice(1, due=past)], [invoice(1, balance="50.00", due=past, n=1)],
                   [invoice(1, balance="0.00", due=past, n=2)])  # fmt: skip
    assert counts == [2, 0, 0]
    assert sorted(e[2] for e in events(db_dsn)) == ["invoice_created", "invoice_overdue"]


def test_no_capture_writes_no_events(db_dsn: str) -> None:
    assert write(db_dsn, "estimates", [estimate(1)], [estimate(1, "Sold", 1)], capture=None) == [0, 0]
    assert events(db_dsn) == []


def test_an_unchanged_record_reread_emits_nothing(db_dsn: str) -> None:
    """A full sync re-reads every record; those that did not change are not merged, so they emit nothing."""
    write(db_dsn, "jobs", [job(1), job(2)], capture=None)
    assert write(db_dsn, "jobs", [job(1), job(2, "Completed", 1)]) == [1]
    assert [(e[1], e[2]) for e in events(db_dsn)] == [(2, "job_completed")]
