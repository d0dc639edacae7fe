"""The endpoint table: which real ServiceTitan paths serve which sandbox resource, and how.

Paths and query parameters are checked against the official specs copied into ``specs/servicetitan/`` next
to this module (section 3 of the reference; tests/sandbox/test_contract.py validates served bodies against
them). They are byte-identical copies of ServiceTitan's published v2 OpenAPI files as kept in
archdotdev/tap-service-titan (``tap_service_titan/openapi_specs/``, commit 0001e257): one per module served,
and one per module whose export feeds are not mirrored yet (``stsync.sync.streams.NOT_MIRRORED``).
One row per internal resource; adding a resource is adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Res:
    name: str  # internal resource name (World)
    public: str  # name in dumps and the Python API
    module: str
    list_path: str | None
    export_paths: tuple[str, ...] = ()
    active_param: str | None = "active"  # "active", "activeState" or None (no such parameter)
    sort: tuple[str, ...] | str | None = ("Id", "ModifiedOn", "CreatedOn")  # "orderBy" for job types
    list_drop_active: bool = False  # the list schema has no `active` although the export one does
    export_active_default: bool | str | None = "n/a"  # only for exports with an `active` parameter
    requires_one_of: tuple[str, ...] = ()  # the list refuses to run without one of these filters
    # query parameter -> (record field path, comma-separated list?)
    filters: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)


_ID = ("Id", "ModifiedOn", "CreatedOn")

TABLE: tuple[Res, ...] = (
    Res(
        "business_units",
        "business_units",
        "settings",
        "business-units",
        ("export/business-units",),
        sort=None,
    ),
    Res("technicians", "technicians", "settings", "technicians", ("export/technicians",), sort=None),
    Res("employees", "employees", "settings", "employees", ("export/employees",), sort=None),
    Res("tag_types", "tag_types", "settings", "tag-types", ("export/tag-types",)),
    Res("job_types", "job_types", "jpm", "job-types", sort="orderBy"),
    Res("campaigns", "campaigns", "marketing", "campaigns", sort=("Id", "Name", "CreatedOn", "ModifiedOn")),
    Res("call_reasons", "call_reasons", "jbce", "call-reasons"),
    Res("cft_customers", "custom_field_types", "crm", "customers/custom-fields", active_param=None),
    Res("cft_locations", "custom_field_types", "crm", "locations/custom-fields", active_param=None),
    Res("cft_jobs", "custom_field_types", "jpm", "jobs/custom-fields", active_param=None),
    Res("customers", "customers", "crm", "customers", ("export/customers",)),
    Res(
        "customer_contacts",
        "customer_contacts",
        "crm",
        "customers/contacts",
        ("export/customers/contacts",),
        active_param=None,
        sort=None,
        list_drop_active=True,
        requires_one_of=("modifiedBefore", "modifiedOnOrAfter", "customerIds"),
        filters={"customerIds": (("customerId",), True)},
    ),
    Res(
        "locations",
        "locations",
        "crm",
        "locations",
        ("export/locations",),
        filters={"customerId": (("customerId",), False)},
    ),
    Res(
        "location_contacts",
        "location_contacts",
        "crm",
        "locations/contacts",
        ("export/locations/contacts",),
        active_param=None,
        sort=None,
        list_drop_active=True,
        requires_one_of=("modifiedBefore", "modifiedOnOrAfter", "locationIds"),
        filters={"locationIds": (("locationId",), True)},
    ),
    Res(
        "jobs",
        "jobs",
        "jpm",
        "jobs",
        ("export/jobs",),
        active_param=None,
        sort=("Id", "ModifiedOn", "CreatedOn", "Priority"),
        list_drop_active=True,
        filters={
            "customerId": (("customerId",), False),
            "locationId": (("locationId",), False),
            "businessUnitId": (("businessUnitId",), False),
            "jobStatus": (("jobStatus",), False),
        },
    ),
    Res(
        "appointments",
        "appointments",
        "jpm",
        "appointments",
        ("export/appointments",),
        export_active_default=None,
        filters={
            "jobId": (("jobId",), False),
            "customerId": (("customerId",), False),
            "status": (("status",), False),
        },
    ),
    Res(
        "appointment_assignments",
        "appointment_assignments",
        "dispatch",
        "appointment-assignments",
        ("export/appointment-assignments",),
        export_active_default=True,
        filters={"appointmentIds": (("appointmentId",), True), "jobId": (("jobId",), False)},
    ),
    Res(
        "estimates",
        "estimates",
        "sales",
        "estimates",
        ("export/estimates", "estimates/export"),
        filters={
            "jobId": (("jobId",), False),
            "locationId": (("locationId",), False),
            "status": (("status", "name"), False),
        },
    ),
    Res(
        "invoices",
        "invoices",
        "accounting",
        "invoices",
        ("export/invoices",),
        active_param="activeState",
        filters={
            "jobId": (("job", "id"), False),
            "customerId": (("customer", "id"), False),
            "businessUnitId": (("businessUnit", "id"), False),
        },
    ),
    Res("invoice_items", "invoice_items", "accounting", None, ("export/invoice-items",)),
    Res(
        "payments",
        "payments",
        "accounting",
        "payments",
        ("export/payments",),
        active_param="activeState",
        filters={"customerId": (("customer", "id"), False)},
    ),
    *(
        Res(name, name, module, path, (f"export/{path}",))
        for name, module, path in (
            ("pricebook_categories", "pricebook", "categories"),
            ("pricebook_services", "pricebook", "services"),
            ("pricebook_materials", "pricebook", "materials"),
            ("pricebook_equipment", "pricebook", "equipment"),
            ("membership_types", "memberships", "membership-types"),
            ("recurring_service_types", "memberships", "recurring-service-types"),
            ("activity_categories", "timesheets", "activity-categories"),
            ("activity_types", "timesheets", "activity-types"),
            ("activity_codes", "payroll", "activity-codes"),
            ("timesheet_codes", "payroll", "timesheet-codes"),
        )
    ),
    Res(
        "installed_equipment",
        "installed_equipment",
        "equipmentsystems",
        "installed-equipment",
        ("export/installed-equipment",),
        filters={"locationIds": (("locationId",), True)},
    ),
)

BY_NAME = {r.name: r for r in TABLE}


def routes() -> dict[tuple[str, str], tuple[Res, str]]:
    """(module, path after /tenant/{t}/) -> (resource, "list" | "export")."""
    out: dict[tuple[str, str], tuple[Res, str]] = {}
    for r in TABLE:
        if r.list_path:
            out[(r.module, r.list_path)] = (r, "list")
        for p in r.export_paths:
            out[(r.module, p)] = (r, "export")
    return out
