"""Every way the sandbox knowingly departs from the official OpenAPI schemas, in one place.

Each entry mirrors a documented real-world ServiceTitan behaviour (see the reference, sections 2 and 6):
the contract tests patch the official schemas with exactly these allowances and nothing else.
"""

from __future__ import annotations

import re

# Schema name -> properties that may be null although the schema says required / not nullable.
# Real exports: address street/city, CustomerType and externalData arrive null (tap-service-titan b8ba905).
NULLABLE_DESPITE_SPEC: dict[str, set[str]] = {
    "Crm.V2.Customers.CustomerAddress": {"street", "city"},
    "Crm.V2.Customers.CustomerResponse": {"type", "externalData"},
    "Crm.V2.ExportCustomerResponse": {"type", "externalData"},
    "Crm.V2.Locations.LocationResponse": {"externalData"},
    "Crm.V2.ExportLocationsResponse": {"externalData"},
    "Jpm.V2.JobResponse": {"externalData"},
    "Jpm.V2.ExportJobsResponse": {"externalData"},
}

# Schema name -> undeclared properties live responses carry (PROBE snapshots of a live tenant).
EXTRA_FIELDS: dict[str, set[str]] = {
    "Jpm.V2.AppointmentResponse": {"appointmentSummaries"},
    "Jpm.V2.ExportAppointmentsResponse": {"appointmentSummaries"},
}

# Timestamp shapes: ServiceTitan prints 7 fractional digits with Z; some date-like accounting fields
# come without a zone at midnight.
TIMESTAMP_7_DIGITS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
TIMESTAMP_ZONELESS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
ZONELESS_FIELDS = {"invoiceDate", "dueDate", "date"}
