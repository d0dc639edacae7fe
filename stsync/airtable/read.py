"""Reading the Airtable era's CSV exports (`stsync migrate-airtable`): every row as read, and each field checked.

Airtable's CSV download is UTF-8 with a byte-order mark, quotes newlines inside cells, writes dates in the view's
format (ISO 8601, or the US forms), checkboxes as "checked" or nothing, and column names that differ from base to
base: a mapping names the column of each field. Rows are read one at a time (memory stays flat whatever the file's
size). Ids, phones and ZIP codes stay text, so a leading zero survives; each field's value is checked and parsed,
and every problem names its file, row and column.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from stsync.errors import DataError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
GHL_ID = re.compile(r"^[A-Za-z0-9]{20}$")  # GHL's ids: 20 letters and digits
US_DATES = ("%m/%d/%Y", "%m/%d/%Y %I:%M%p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")


@dataclass(frozen=True)
class Field:
    """One field of an export: its name here, its default column (the seed base's), and how it is checked."""

    name: str
    column: str
    kind: str = "text"  # text | st_id | email | phone | ghl_id | date | checkbox
    required: bool = False


CUSTOMERS = (
    Field("st_id", "ST ID", "st_id", required=True),
    Field("location_id", "Location ID", "st_id"),
    Field("first_name", "First Name"),
    Field("last_name", "Last Name"),
    Field("email", "Email", "email"),
    Field("phone", "Phone", "phone"),
    Field("street", "Street"),
    Field("city", "City"),
    Field("state", "State"),
    Field("postal_code", "Postal Code"),
    Field("county", "County"),
    Field("ghl_contact_id", "GHL Contact ID", "ghl_id"),
    Field("ghl_synced", "GHL Synced", "checkbox"),
)
JOBS = (
    Field("st_id", "ST Job ID", "st_id", required=True),
    Field("customer_id", "ST Customer ID", "st_id", required=True),
    Field("business_unit", "Business Unit"),
    Field("job_type", "Job Type"),
    Field("status", "Status"),
    Field("created_on", "Created", "date"),
    Field("completed_on", "Completed", "date"),
    Field("ghl_opportunity_id", "GHL Opportunity ID", "ghl_id"),
    Field("ghl_synced", "GHL Synced", "checkbox"),
)


@dataclass(frozen=True)
class Problem:
    file: str
    row: int  # the data row, counting from 1 (the header is not a row)
    column: str
    reason: str

    def line(self) -> str:
        return f"{self.file}: row {self.row}, column '{self.column}': {self.reason}"


@dataclass
class Row:
    number: int
    raw: dict[str, str]  # every column, as read
    values: dict[str, Any] = field(default_factory=dict)  # each field present and valid, parsed
    problems: list[Problem] = field(default_factory=list)


def _lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines, decoded strictly; a byte the encoding cannot read stops it, naming the byte's offset."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    try:
        with path.open("rb") as f:
            for raw in f:
                try:
                    yield decoder.decode(raw)
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path}: not {encoding} at byte {offset + exc.start}; give the file's encoding with --encoding"
                    ) from None
                offset += len(raw)
            if rest := decoder.decode(b"", final=True):
                yield rest
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or type(exc).__name__}") from None


def _date(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    try:
        when = datetime.fromisoformat(value)
        return (when.replace(tzinfo=zone) if when.tzinfo is None else when), None
    except ValueError:
        pass
    for form in US_DATES:
        try:
            return datetime.strptime(value.upper(), form).replace(tzinfo=zone), None
        except ValueError:
            continue
    return None, "not a date (ISO 8601, or M/D/YYYY with a time)"


def _st_id(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    return (int(value), None) if value.isascii() and value.isdecimal() else (None, "not a ServiceTitan id")


def _email(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    return (value, None) if EMAIL.match(value) else (None, "not an email address")


def _phone(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    n = sum(ch.isdigit() for ch in value)
    return (value, None) if 10 <= n <= 15 else (None, f"a phone number has 10 to 15 digits, this has {n}")


def _ghl_id(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    return (value, None) if GHL_ID.match(value) else (None, "not a GHL id (20 letters and digits)")


CHECKED = ("checked", "true", "yes", "1")


def _checkbox(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    low = value.lower()
    if low in CHECKED or low in ("false", "no", "0"):
        return low in CHECKED, None
    return None, "not a checkbox value"


def _text(value: str, zone: tzinfo) -> tuple[Any, str | None]:
    return value, None


# Each kind of field: its value parsed, or why it cannot be.
CHECKS = {
    "text": _text,
    "st_id": _st_id,
    "email": _email,
    "phone": _phone,
    "ghl_id": _ghl_id,
    "date": _date,
    "checkbox": _checkbox,
}


def read(
    path: Path, fields: tuple[Field, ...], columns: dict[str, str], zone: tzinfo, encoding: str = "utf-8-sig"
) -> Iterator[Row]:
    """Each row of the CSV at ``path``, with its fields checked. ``columns`` maps a field to its column (the default
    is the field's). A required column that is missing is an error before any row."""
    lines = _lines(path, encoding)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise DataError(f"{path}: not a CSV file: {exc}") from None
    if not any(h.strip() for h in header):
        raise DataError(f"{path}: empty: no header row")
    header = [h.strip() for h in header]
    where = {f.name: columns.get(f.name, f.column) for f in fields}
    missing = [where[f.name] for f in fields if f.required and where[f.name] not in header]
    if missing:
        raise DataError(f"{path}: no column '{missing[0]}' (required; --mapping names another column for it)")
    number = 0
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # Airtable ends some exports with empty lines
            number += 1
            raw = dict(zip(header, cells, strict=False))
            row = Row(number, raw)
            for f in fields:
                value = raw.get(where[f.name], "").strip()
                if not value:
                    if f.required:
                        row.problems.append(Problem(path.name, number, where[f.name], "empty, and required"))
                    continue
                parsed, reason = CHECKS[f.kind](value, zone)
                if reason is not None:
                    row.problems.append(Problem(path.name, number, where[f.name], f"{reason}: '{value}'"))
                else:
                    row.values[f.name] = parsed
            yield row
    except csv.Error as exc:
        raise DataError(f"{path}: row {number + 1}: not CSV: {exc}") from None
