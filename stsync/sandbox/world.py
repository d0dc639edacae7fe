"""The sandbox world: a lazily generated base tenant plus an append-only log of changes.

Base records are a pure function of (seed, scale, resource, index): ids, relations, timestamps and the
active flag come from cheap hashes, so paging or exporting any slice of the `large` world needs no
start-up generation. Base ``modifiedOn`` grows with the index, so the base export feed is simply index
order and ``from=<date>`` is a binary search. ``advance`` appends changed and new records to a per-resource
log (in modification order); a changed record is served only at its latest log position.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from stsync.sandbox import generate as g
from stsync.sandbox import schema
from stsync.sandbox.clock import (
    DAY,
    HISTORY_END,
    HISTORY_START,
    MINUTE,
    WORLD_NOW,
    fmt,
    key,
    mix64,
    parse,
    rng_for,
)

# Customers per scale; everything else is a ratio. xlarge is 5 x large, for the benchmarks of a bigger tenant.
SCALES = {"small": 100, "medium": 5000, "large": 50000, "xlarge": 250000}
TECHS = {"small": 8, "medium": 40, "large": 150, "xlarge": 750}
EMPLOYEES = {"small": 6, "medium": 25, "large": 80, "xlarge": 400}
RATIOS = {
    "customers": 1.0,
    "locations": 1.2,
    "customer_contacts": 1.5,
    "location_contacts": 0.5,
    "jobs": 2.0,
    "appointments": 2.2,
    "appointment_assignments": 2.5,
    "estimates": 0.6,
    "invoices": 2.0,
    "invoice_items": 4.0,
    "payments": 1.5,
    "installed_equipment": 0.5,
}
ID_BASE = {
    "customers": 10_000_000,
    "locations": 20_000_000,
    "customer_contacts": 30_000_000,
    "location_contacts": 40_000_000,
    "jobs": 50_000_000,
    "appointments": 60_000_000,
    "appointment_assignments": 70_000_000,
    "estimates": 80_000_000,
    "invoices": 90_000_000,
    "invoice_items": 100_000_000,
    "payments": 110_000_000,
    "installed_equipment": 120_000_000,
    "technicians": 21_000,
    "employees": 31_000,
    "job_types": 100,
    "campaigns": 200,
    "call_reasons": 300,
    "tag_types": 400,
    "pricebook_categories": 130_000,
    "pricebook_services": 140_000,
    "pricebook_materials": 150_000,
    "pricebook_equipment": 160_000,
    "membership_types": 170_000,
    "recurring_service_types": 171_000,
    "activity_categories": 172_000,
    "activity_types": 173_000,
    "activity_codes": 174_000,
    "timesheet_codes": 175_000,
}
# How long before its last modification a record was created (spreads createdOn realistically).
LAG = {
    "customers": 90 * DAY,
    "locations": 60 * DAY,
    "jobs": 5 * DAY,
    "appointments": 3 * DAY,
    "appointment_assignments": 2 * DAY,
    "estimates": 10 * DAY,
    "invoices": 20 * DAY,
    "invoice_items": 20 * DAY,
    "payments": 2 * DAY,
    "installed_equipment": 30 * DAY,
}
INACTIVE = {
    "customers": 0.03,
    "locations": 0.03,
    "customer_contacts": 0.05,
    "location_contacts": 0.05,
    "appointments": 0.03,
    "appointment_assignments": 0.05,
    "estimates": 0.02,
    "invoices": 0.01,
    "invoice_items": 0.02,
    "payments": 0.01,
    "installed_equipment": 0.05,
}
REF = (
    "business_units",
    "technicians",
    "employees",
    "job_types",
    "campaigns",
    "call_reasons",
    "tag_types",
    "cft_customers",
    "cft_locations",
    "cft_jobs",
)
BIG = tuple(RATIOS)


@dataclass(frozen=True)
class FromSpec:
    """A resource written from the committed spec alone (stsync.sandbox.schema): its spec file, the export's and
    the list's record schemas, and its records in the small, medium and large worlds (xlarge: as large).
    Reference data such as a pricebook does not grow with the customers."""

    file: str
    export_schema: str
    list_schema: str
    sizes: tuple[int, int, int]


# Last in INTERNAL: CODES, and so every other resource's records, stay as they were when these were added.
FROM_SPEC = {
    "pricebook_categories": FromSpec(
        "pricebook-v2.json", "Pricebook.V2.ExportCategoryResponse", "Pricebook.V2.CategoryResponse", (8, 40, 120)
    ),
    "pricebook_services": FromSpec(
        "pricebook-v2.json", "Pricebook.V2.ExportServiceResponse", "Pricebook.V2.ServiceGetResponse", (30, 300, 1500)
    ),
    "pricebook_materials": FromSpec(
        "pricebook-v2.json", "Pricebook.V2.ExportMaterialResponse", "Pricebook.V2.MaterialResponse", (40, 600, 3000)
    ),
    "pricebook_equipment": FromSpec(
        "pricebook-v2.json", "Pricebook.V2.ExportEquipmentResponse", "Pricebook.V2.EquipmentResponse", (12, 100, 400)
    ),
    "membership_types": FromSpec(
        "memberships-v2.json",
        "Memberships.V2.ExportMembershipTypeResponse",
        "Memberships.V2.MembershipTypeResponse",
        (4, 6, 8),
    ),
    "recurring_service_types": FromSpec(
        "memberships-v2.json",
        "Memberships.V2.ExportRecurringServiceTypeResponse",
        "Memberships.V2.RecurringServiceTypeResponse",
        (5, 8, 12),
    ),
    "activity_categories": FromSpec(
        "timesheets-v2.json",
        "Timesheets.V2.ActivityCategories.ActivityCategoryExportResponse",
        "Timesheets.V2.ActivityCategories.ActivityCategoriesResponse",
        (4, 5, 6),
    ),
    "activity_types": FromSpec(
        "timesheets-v2.json",
        "Timesheets.V2.ActivityTypes.ActivityTypeExportResponse",
        "Timesheets.V2.ActivityTypes.ActivityTypesResponse",
        (8, 12, 20),
    ),
    "activity_codes": FromSpec(
        "payroll-v2.json",
        "Payroll.V2.PayrollActivityCodes.PayrollActivityCodeExportResponse",
        "Payroll.V2.PayrollActivityCodes.PayrollActivityCodeResponse",
        (6, 10, 15),
    ),
    "timesheet_codes": FromSpec(
        "payroll-v2.json",
        "Payroll.V2.TimesheetCodes.TimesheetCodeExportResponse",
        "Payroll.V2.TimesheetCodes.TimesheetCodeResponse",
        (5, 8, 12),
    ),
}
# The SKUs estimate and invoice items name (generate.SKUS), as the first entries of their pricebook table.
SOLD = {
    f"pricebook_{kind}": tuple(sku for sku in g.SKUS if sku[3] == label)
    for kind, label in (("services", "Service"), ("materials", "Material"), ("equipment", "Equipment"))
}
INTERNAL = REF + BIG + tuple(FROM_SPEC)
CODES = {name: n + 1 for n, name in enumerate(INTERNAL)}
EXPORT_DELAY = 15 * MINUTE
_MASK = (1 << 64) - 1


def counts_for(scale: str) -> dict[str, int]:
    """Base record count per internal resource for a scale."""
    c = SCALES[scale]
    n = {
        "business_units": len(g.BUSINESS_UNITS),
        "technicians": TECHS[scale],
        "employees": EMPLOYEES[scale],
        "job_types": len(g.JOB_TYPES),
        "campaigns": len(g.CAMPAIGNS),
        "call_reasons": len(g.CALL_REASONS),
        "tag_types": len(g.TAG_TYPES),
        "cft_customers": len(g.CUSTOM_FIELDS["customers"]),
        "cft_locations": len(g.CUSTOM_FIELDS["locations"]),
        "cft_jobs": len(g.CUSTOM_FIELDS["jobs"]),
    }
    for name, ratio in RATIOS.items():
        n[name] = int(c * ratio)
    size = {"small": 0, "medium": 1}.get(scale, 2)  # xlarge: as large
    n.update({name: spec.sizes[size] for name, spec in FROM_SPEC.items()})
    return n


def _children(parent: int, n_child: int, n_parent: int) -> range:
    """Children of `parent` when child k belongs to parent k * n_parent // n_child."""
    lo = -(-parent * n_child // n_parent)
    hi = -(-(parent + 1) * n_child // n_parent)
    return range(lo, hi)


@dataclass
class Entry:
    """Current version of a changed or new record, with its sortable metadata and cached bytes."""

    rec: dict[str, Any]
    created: int
    modified: int
    active: bool
    raw: bytes | None = None


class World:
    """All records of one tenant. Thread-safe through `lock` (the HTTP server is threaded)."""

    def __init__(self, seed: int = 42, scale: str = "small") -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
        self.seed = seed
        self.scale = scale
        self.n = counts_for(scale)
        self.now = WORLD_NOW
        self.lock = threading.RLock()
        self.overlay: dict[str, dict[int, Entry]] = {r: {} for r in INTERNAL}
        self.n_new: dict[str, int] = dict.fromkeys(INTERNAL, 0)
        self.log: dict[str, list[int]] = {r: [] for r in INTERNAL}
        self.log_t: dict[str, list[int]] = {r: [] for r in INTERNAL}
        self.latest: dict[str, dict[int, int]] = {r: {} for r in INTERNAL}
        self.advances: list[tuple[int, bool]] = []
        self._ref_ids: dict[str, list[int]] = {}
        self._ref_index: dict[str, dict[int, int]] = {}
        self._static: dict[str, list[Entry]] = {}
        self._rs = {r: key(seed, CODES[r]) for r in INTERNAL}
        self._build_reference()

    # --- identity ---------------------------------------------------------------------------------

    def total(self, res: str) -> int:
        return self.n[res] + self.n_new[res]

    def id_of(self, res: str, i: int) -> int:
        if res in self._ref_ids:
            return self._ref_ids[res][i]
        return ID_BASE[res] + i

    def index_of(self, res: str, id_: int) -> int | None:
        if res in self._ref_index:
            return self._ref_index[res].get(id_)
        i = id_ - ID_BASE[res]
        return i if 0 <= i < self.total(res) else None

    def _h(self, res: str, i: int, salt: int = 0) -> int:
        # One splitmix round over (resource seed, index, salt): the hot path of lazy generation.
        return mix64((self._rs[res] + i * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03) & _MASK)

    # --- cheap base metadata (no record generation) -----------------------------------------------

    def base_modified(self, res: str, i: int) -> int:
        n = self.n[res]
        span = HISTORY_END - HISTORY_START
        slot = span // n
        return HISTORY_START + (i * span) // n + self._h(res, i, 1) % max(1, slot // 2)

    def base_created(self, res: str, i: int) -> int:
        lag = LAG.get(res, 120 * DAY)
        return self.base_modified(res, i) - self._h(res, i, 2) % lag

    def base_active(self, res: str, i: int) -> bool:
        if res in self._static:
            return self._static[res][i].active
        rate = INACTIVE.get(res, 0.0)
        if rate and i % 97 == 13:
            return False  # every soft-deletable resource has inactive rows, even in the small world
        return (self._h(res, i, 3) & 0xFFFF) >= rate * 65536

    def meta(self, res: str, i: int) -> tuple[int, int, bool]:
        """(created, modified, active) of the current version."""
        e = self.overlay[res].get(i)
        if e is not None:
            return e.created, e.modified, e.active
        if res in self._static:
            s = self._static[res][i]
            return s.created, s.modified, s.active
        return self.base_created(res, i), self.base_modified(res, i), self.base_active(res, i)

    # --- relations of base records ----------------------------------------------------------------

    def job_location(self, j: int) -> int:
        n_loc, n_job = self.n["locations"], self.n["jobs"]
        return self._h("jobs", j, 7) % (j * n_loc // n_job + 1)

    def loc_customer(self, loc: int) -> int:
        return loc * self.n["customers"] // self.n["locations"]

    def job_status(self, j: int) -> str:
        h = self._h("jobs", j, 8)
        if self.base_modified("jobs", j) < WORLD_NOW - 14 * DAY:
            return "Canceled" if h % 100 < 8 else "Completed"
        return ("Scheduled", "Scheduled", "Dispatched", "InProgress", "Hold", "Completed")[h % 6]

    def job_bu(self, j: int) -> tuple[int, str]:
        pick = self._h("jobs", j, 9) % sum(g.BU_WEIGHTS)
        for (bu_id, name, _), w in zip(g.BUSINESS_UNITS, g.BU_WEIGHTS, strict=True):
            if pick < w:
                return bu_id, name
            pick -= w
        return g.BUSINESS_UNITS[0][0], g.BUSINESS_UNITS[0][1]

    def appt_job(self, a: int) -> int:
        return a * self.n["jobs"] // self.n["appointments"]

    def tech(self, salt_res: str, i: int) -> tuple[int, str]:
        t = self._h(salt_res, i, 11) % self.n["technicians"]
        rec = self._static["technicians"][t].rec
        return rec["id"], rec["name"]

    def customer_name(self, c: int) -> str:
        r = rng_for(self._h("customers", c))
        first, last = g.person(r)
        # Mirrors g.customer's first draws so invoices/payments name the customer as the customer record does.
        return f"{last} {r.choice(g.COMPANY)}" if r.random() < 0.15 else f"{first} {last}"

    # --- base records -----------------------------------------------------------------------------

    def _build_reference(self) -> None:
        for res in (*REF, *FROM_SPEC):
            entries = []
            ids = []
            for i in range(self.n[res]):
                created, modified = self.base_created(res, i), self.base_modified(res, i)
                r = rng_for(self._h(res, i))
                if res == "business_units":
                    bu_id, name, active = g.BUSINESS_UNITS[i]
                    rec = g.business_unit(bu_id, name, active, created, modified)
                elif res == "technicians":
                    first, last = g.person(r)
                    active = i < 2 or self._h(res, i, 3) % 10 != 0
                    bu = g.BUSINESS_UNITS[i % 5][0]
                    rec = g.technician(r, ID_BASE[res] + i, f"{first} {last}", bu, created, modified, active)
                elif res == "employees":
                    rec = g.employee(r, ID_BASE[res] + i, created, modified, i < 2 or self._h(res, i, 3) % 8 != 0)
                elif res.startswith("cft_"):
                    rec = g.custom_field_type(res[4:], i, created, modified)
                elif res in FROM_SPEC:
                    spec = FROM_SPEC[res]
                    fixed: dict[str, Any] = {"id": ID_BASE[res] + i, "active": self._h(res, i, 3) % 10 != 0}
                    skus = SOLD.get(res, ())
                    if i < len(skus):  # what estimates and invoices sell is in the pricebook, active
                        sku_id, code, name, _, price = skus[i]
                        fixed = {"id": sku_id, "active": True, "code": code, "displayName": name, "price": price}
                    fixed |= {"createdOn": fmt(created), "modifiedOn": fmt(modified)}
                    rec = schema.record(spec.file, (spec.export_schema, spec.list_schema), r, fixed)
                else:
                    builder = {
                        "job_types": g.job_type,
                        "campaigns": g.campaign,
                        "call_reasons": g.call_reason,
                        "tag_types": g.tag_type,
                    }[res]
                    rec = builder(i, ID_BASE[res] + i, created, modified)
                entries.append(Entry(rec, created, modified, rec.get("active", True)))
                ids.append(rec["id"])
            self._static[res] = entries
            self._ref_ids[res] = ids
            self._ref_index[res] = {id_: i for i, id_ in enumerate(ids)}

    def base_record(self, res: str, i: int) -> dict[str, Any]:  # noqa: PLR0911, PLR0912, PLR0915 - per resource
        """The original (pre-advance) version of base record `i`; depends on base state only."""
        if res in self._static:
            return self._static[res][i].rec
        created, modified, active = (
            self.base_created(res, i),
            self.base_modified(res, i),
            self.base_active(res, i),
        )
        id_ = ID_BASE[res] + i
        n = self.n
        if res == "customers":
            merged = None
            if not active and i > 0 and self._h(res, i, 4) % 2 == 0:
                merged = ID_BASE[res] + self._h(res, i, 5) % i
            balance = 0.0 if self._h(res, i, 6) % 5 else (self._h(res, i, 6) % 90000) / 100
            return g.customer(rng_for(self._h(res, i)), id_, created, modified, active, merged, balance)
        if res == "locations":
            merged = None
            if not active and i > 0 and self._h(res, i, 4) % 2 == 0:
                merged = ID_BASE[res] + self._h(res, i, 5) % i
            cust = ID_BASE["customers"] + self.loc_customer(i)
            return g.location(rng_for(self._h(res, i)), id_, cust, created, modified, active, merged)
        if res == "customer_contacts":
            c = i * n["customers"] // n[res]
            return g.contact(
                rng_for(self._h(res, i)),
                id_,
                "customerId",
                ID_BASE["customers"] + c,
                created,
                modified,
                active,
            )
        if res == "location_contacts":
            loc = i * n["locations"] // n[res]
            return g.contact(
                rng_for(self._h(res, i)),
                id_,
                "locationId",
                ID_BASE["locations"] + loc,
                created,
                modified,
                active,
            )
        if res == "jobs":
            loc = self.job_location(i)
            status = self.job_status(i)
            appts = [ID_BASE["appointments"] + a for a in _children(i, n["appointments"], n["jobs"])]
            ests = [ID_BASE["estimates"] + e for e in _children(i, n["estimates"], n["jobs"])]
            completed = modified - self._h(res, i, 10) % DAY if status == "Completed" else None
            r = rng_for(self._h(res, i))
            return g.job(
                r,
                id_,
                ID_BASE["customers"] + self.loc_customer(loc),
                ID_BASE["locations"] + loc,
                self.job_bu(i)[0],
                ID_BASE["job_types"] + self._h(res, i, 12) % (len(g.JOB_TYPES) - 1),
                ID_BASE["campaigns"] + self._h(res, i, 13) % (len(g.CAMPAIGNS) - 1),
                status,
                created,
                modified,
                completed,
                appts,
                ID_BASE["invoices"] + i,
                ests,
                None,
                None if not ests else self.tech(res, i)[0],
            )
        if res == "appointments":
            j = self.appt_job(i)
            kids = _children(j, n["appointments"], n["jobs"])
            status = {
                "Completed": "Done",
                "Canceled": "Canceled",
                "InProgress": "Working",
                "Hold": "Hold",
                "Dispatched": "Dispatched",
            }.get(self.job_status(j), "Scheduled")
            if i != kids[-1] and status not in ("Canceled",):
                status = "Done"
            start = created + DAY + self._h(res, i, 14) % (2 * DAY)
            return g.appointment(
                rng_for(self._h(res, i)),
                id_,
                ID_BASE["jobs"] + j,
                ID_BASE["customers"] + self.loc_customer(self.job_location(j)),
                f"{ID_BASE['jobs'] + j}-{i - kids[0] + 1}",
                start,
                status,
                created,
                modified,
                active,
            )
        if res == "appointment_assignments":
            a = i * n["appointments"] // n[res]
            j = self.appt_job(a)
            appt_status = self.job_status(j)
            status = {"Completed": "Done", "InProgress": "Working", "Dispatched": "Dispatched"}.get(
                appt_status, "Scheduled"
            )
            tech_id, tech_name = self.tech(res, i)
            return g.assignment(
                id_,
                tech_id,
                tech_name,
                ID_BASE["jobs"] + j,
                ID_BASE["appointments"] + a,
                status,
                created,
                modified,
                active,
            )
        if res == "estimates":
            j = i * n["jobs"] // n[res]
            loc = self.job_location(j)
            h = self._h(res, i, 15) % 100
            status = "Sold" if h < 40 else ("Dismissed" if h < 65 else "Open")
            sold_on = modified - self._h(res, i, 16) % DAY if status == "Sold" else None
            sold_by = self.tech(res, i)[0] if status == "Sold" else None
            return g.estimate(
                rng_for(self._h(res, i)),
                id_,
                130_000_000 + i * 4,
                ID_BASE["jobs"] + j,
                ID_BASE["locations"] + loc,
                ID_BASE["customers"] + self.loc_customer(loc),
                self.job_bu(j),
                status,
                created,
                modified,
                sold_on,
                sold_by,
                active,
            )
        if res == "invoice_items":
            inv = i // 2
            return g.invoice_item(
                rng_for(self._h(res, i)),
                id_,
                ID_BASE["invoices"] + inv,
                i % 2 + 1,
                self.job_bu(inv),
                created,
                modified,
                active,
                self.tech(res, i)[0],
            )
        if res == "invoices":
            return self.base_invoice(i, [self.base_record("invoice_items", k) for k in (2 * i, 2 * i + 1)])
        if res == "payments":
            inv = i * n["invoices"] // n[res]
            kids = _children(inv, n[res], n["invoices"])
            amount = round((self.base_item_total(2 * inv) + self.base_item_total(2 * inv + 1)) * 1.08 / len(kids), 2)
            ci = self.loc_customer(self.job_location(inv))
            payer = (ID_BASE["customers"] + ci, self.customer_name(ci))
            return g.payment(
                rng_for(self._h(res, i)),
                id_,
                payer,
                self.job_bu(inv),
                ID_BASE["invoices"] + inv,
                amount,
                created,
                modified,
                active,
            )
        if res == "installed_equipment":
            loc = i * n["locations"] // n[res]
            return g.installed_equipment(
                rng_for(self._h(res, i)),
                id_,
                ID_BASE["locations"] + loc,
                ID_BASE["customers"] + self.loc_customer(loc),
                created,
                modified,
                active,
            )
        raise KeyError(res)

    def base_invoice(self, i: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Base invoice `i` built around its (already generated) base items 2i and 2i+1."""
        n = self.n
        pays = _children(i, n["payments"], n["invoices"])
        total = g.invoice_total(items) * 1.08
        paid = total * sum(self.base_active("payments", p) for p in pays) / len(pays) if pays else 0.0
        paid_on = self.base_modified("payments", pays[-1]) if pays and paid else None
        loc = self.job_location(i)
        c = self.loc_customer(loc)
        cust = (ID_BASE["customers"] + c, self.customer_name(c))
        return g.invoice(
            rng_for(self._h("invoices", i)),
            ID_BASE["invoices"] + i,
            ID_BASE["jobs"] + i,
            cust,
            ID_BASE["locations"] + loc,
            self.job_bu(i),
            self.base_created("invoices", i),
            self.base_modified("invoices", i),
            items,
            paid,
            paid_on,
            self.base_active("invoices", i),
        )

    def base_item_total(self, k: int) -> float:
        """The `total` of base invoice item k (0 when inactive) without building the item: the same first
        two draws g.invoice_item makes. Payments need only this."""
        if not self.base_active("invoice_items", k):
            return 0.0
        r = rng_for(self._h("invoice_items", k))
        price = r.choice(g.SKUS)[4]
        return float(g.money(float(1 + r.randrange(0, 2)) * price))

    # --- current versions -------------------------------------------------------------------------

    def get(self, res: str, i: int) -> dict[str, Any]:
        e = self.overlay[res].get(i)
        return e.rec if e is not None else self.base_record(res, i)

    def raw(self, res: str, i: int) -> bytes:
        """The served JSON bytes of the current version (overlay bytes are cached)."""
        e = self.overlay[res].get(i)
        if e is not None:
            if e.raw is None:
                e.raw = orjson.dumps(e.rec)
            return e.raw
        if res in self._static:
            s = self._static[res][i]
            if s.raw is None:
                s.raw = orjson.dumps(s.rec)
            return s.raw
        return orjson.dumps(self.base_record(res, i))

    def put(self, res: str, i: int, rec: dict[str, Any], t: int) -> None:
        """Store a new version modified at virtual time `t`; it moves to the end of the export feed."""
        rec["modifiedOn"] = fmt(t)
        old = self.overlay[res].get(i)
        if old is not None:
            created = old.created
        elif i < self.n[res]:
            created = self.meta(res, i)[0]
        else:
            created = parse(rec["createdOn"])
        self.overlay[res][i] = Entry(rec, created, t, rec.get("active", True))
        self.latest[res][i] = len(self.log[res])
        self.log[res].append(i)
        self.log_t[res].append(t)

    def new_index(self, res: str) -> int:
        i = self.total(res)
        self.n_new[res] += 1
        return i

    # --- export feed positions --------------------------------------------------------------------

    def position_for_time(self, res: str, t: int) -> int:
        """First feed position whose record has modifiedOn >= t."""
        n = self.n[res]
        if n and t <= self.base_modified(res, n - 1):
            lo, hi = 0, n
            while lo < hi:
                mid = (lo + hi) // 2
                if self.base_modified(res, mid) < t:
                    lo = mid + 1
                else:
                    hi = mid
            return lo
        return n + bisect.bisect_left(self.log_t[res], t)

    def feed(
        self, res: str, pos: int, batch: int, include_recent: bool, active: bool | None
    ) -> tuple[list[int], int, bool]:
        """Indexes of the next batch from feed position `pos`, the continuation position and hasMore."""
        n = self.n[res]
        latest = self.latest[res]
        log, log_t = self.log[res], self.log_t[res]
        cutoff = self.now - EXPORT_DELAY
        out: list[int] = []
        first_recent: int | None = None
        stopped_at_recent = False
        p = pos
        end = n + len(log)
        while p < end and len(out) < batch:
            if p < n:
                if p in latest or (active is not None and self.meta(res, p)[2] != active):
                    p += 1
                    continue
                out.append(p)
                p += 1
                continue
            k = p - n
            i = log[k]
            if latest[i] != k:  # a newer version sits later in the feed: never serve the stale one
                p += 1
                continue
            if log_t[k] > cutoff:
                if not include_recent:
                    stopped_at_recent = True
                    break
                if first_recent is None:
                    first_recent = p
            if active is None or self.overlay[res][i].active == active:
                out.append(i)
            p += 1
        more = p < end and len(out) >= batch and not stopped_at_recent
        if first_recent is not None:
            # Recent rows are handed out but the token stays before them, so the next call repeats them
            # (ServiceTitan: "may return the same records multiple times").
            return out, first_recent, False
        if more and p >= n and log_t[p - n] > cutoff and not include_recent:
            more = False  # only too-recent rows remain
        return out, p, more

    def snapshot(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every current record, parsed from the exact bytes served, keyed per public resource name."""
        out: dict[str, dict[Any, dict[str, Any]]] = {}
        with self.lock:
            for res in INTERNAL:
                name = "custom_field_types" if res.startswith("cft_") else res
                bucket = out.setdefault(name, {})
                for i in range(self.total(res)):
                    rec = orjson.loads(self.raw(res, i))
                    k: Any = f"{res[4:]}:{rec['id']}" if res.startswith("cft_") else rec["id"]
                    bucket[k] = rec
        return out

    def record_count(self) -> int:
        return sum(self.total(r) for r in INTERNAL)


__all__ = ["INTERNAL", "World", "counts_for", "mix64"]
