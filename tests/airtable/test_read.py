"""Reading Airtable's CSV exports: a messy file read row by row, each problem named by file, row and column."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stsync.airtable.read import CUSTOMERS, JOBS, read
from stsync.errors import DataError

HERE = Path(__file__).parent
CHICAGO = ZoneInfo("America/Chicago")


def test_a_messy_customers_export_reads_as_airtable_wrote_it() -> None:
    rows = list(read(HERE / "customers_messy.csv", CUSTOMERS, {"email": "E-mail"}, CHICAGO))
    assert [r.number for r in rows] == [1, 2, 3, 4, 5]  # the empty line is no row
    ada, bob, bob_again, cy, dee = rows
    assert ada.problems == []
    assert ada.values["street"] == "1 Main St\nSuite 2"  # a quoted newline stays in its cell
    assert ada.values["postal_code"] == "02134"  # text: the leading zero survives
    assert ada.values["st_id"] == 10000001 and ada.values["ghl_synced"] is True
    assert "county" not in ada.values  # an optional column the base does not have
    assert ada.raw["E-mail"] == "ada@example.com"  # every column kept as read, under its own name
    assert [p.line() for p in bob.problems] == [
        "customers_messy.csv: row 2, column 'E-mail': not an email address: 'bob at example.com'",
        "customers_messy.csv: row 2, column 'Phone': a phone number has 10 to 15 digits, this has 7: '555-0102'",
    ]
    assert bob_again.problems == [] and bob_again.values["ghl_contact_id"] == "6dvNaf7VhkQ9snc5vnjJ"
    assert [(p.column, p.reason) for p in cy.problems] == [
        ("ST ID", "not a ServiceTitan id: 'x-17'"),
        ("GHL Contact ID", "not a GHL id (20 letters and digits): 'short'"),
        ("GHL Synced", "not a checkbox value: 'maybe'"),
    ]
    assert "st_id" not in cy.values and cy.values["location_id"] == 20000004
    assert dee.problems == [] and dee.values["st_id"] == 99999999


def test_dates_in_iso_or_airtables_us_form_take_the_mappings_zone() -> None:
    first, second = read(HERE / "jobs_messy.csv", JOBS, {}, CHICAGO)
    assert first.values["created_on"] == datetime(2025, 3, 14, 9, 5, tzinfo=CHICAGO)
    assert first.values["completed_on"] == datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
    assert first.values["business_unit"] == "Pool Service"
    assert second.values["business_unit"] == "Pool Service, Install"  # a multi-select stays one joined cell
    assert [(p.column, p.reason) for p in second.problems] == [
        ("Created", "not a date (ISO 8601, or M/D/YYYY with a time): '13/45/2025'")
    ]


def test_another_encoding_is_one_error_naming_the_byte(tmp_path: Path) -> None:
    latin = tmp_path / "customers.csv"
    latin.write_bytes("ST ID,First Name\r\n10000001,Andr\xe9\r\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"customers\.csv: not utf-8-sig at byte 31; give the file's encoding"):
        list(read(latin, CUSTOMERS, {}, UTC))
    assert [r.values["first_name"] for r in read(latin, CUSTOMERS, {}, UTC, encoding="latin-1")] == ["André"]


def test_a_missing_required_column_or_an_unreadable_file_is_one_error(tmp_path: Path) -> None:
    wrong = tmp_path / "customers.csv"
    wrong.write_text("Customer,Name\r\n1,Ada\r\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'ST ID' \(required; --mapping names another column for it\)"):
        list(read(wrong, CUSTOMERS, {}, UTC))
    assert [r.values["st_id"] for r in read(wrong, CUSTOMERS, {"st_id": "Customer"}, UTC)] == [1]
    with pytest.raises(DataError, match=r"nothing\.csv: cannot read it"):
        list(read(tmp_path / "nothing.csv", CUSTOMERS, {}, UTC))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty: no header row"):
        list(read(empty, CUSTOMERS, {}, UTC))
