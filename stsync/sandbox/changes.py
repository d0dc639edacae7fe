"""Time moves: `advance` applies seeded, realistic business activity inside the advanced virtual window.

Every event gets a timestamp inside (now, now + minutes] and events are applied in time order, so each
resource's change log stays ordered by modifiedOn. The RNG is derived from (seed, advance number), so the
same seed and the same sequence of advances produce identical changes.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

from stsync.sandbox import generate as g
from stsync.sandbox.clock import DAY, HOUR, MINUTE, fmt, fmt_naive_midnight, key, parse, rng_for
from stsync.sandbox.world import ID_BASE, World

# Events per virtual hour at scale small; medium and large multiply these.
RATES = {
    "new_customer": 1.0,
    "new_job": 2.0,
    "job_progress": 3.0,
    "estimate_created": 1.0,
    "estimate_decided": 1.5,
    "payment": 1.0,
    "deactivate": 1.0,
    "merge": 0.5,
}
SCALE_FACTOR = {"small": 1, "medium": 10, "large": 30, "xlarge": 150}


class _Tracker:
    def __init__(self) -> None:
        self.created: dict[str, list[int]] = {}
        self.updated: dict[str, list[int]] = {}

    def add(self, bucket: dict[str, list[int]], res: str, id_: int) -> None:
        ids = bucket.setdefault(res, [])
        if id_ not in ids:
            ids.append(id_)


def advance(w: World, minutes: int, changes: bool = True) -> dict[str, Any]:
    """Move the virtual clock forward; with `changes`, apply the window's activity. Returns a summary."""
    if minutes < 0:
        raise ValueError("minutes must be >= 0")
    start, end = w.now, w.now + minutes * MINUTE
    w.advances.append((minutes, changes))
    tr = _Tracker()
    if changes and minutes > 0:
        r = random.Random(key(w.seed, 0xAD7, len(w.advances), start))
        factor = SCALE_FACTOR[w.scale]
        events: list[tuple[int, int, str]] = []
        for kind, rate in RATES.items():
            for _ in range(math.ceil(rate * factor * minutes / 60)):
                events.append((start + 1 + r.randrange(minutes * MINUTE), len(events), kind))
        events.sort()
        for t, _, kind in events:
            _EVENTS[kind](w, r, t, tr)
    w.now = end
    return {
        "from": fmt(start),
        "to": fmt(end),
        "minutes": minutes,
        "created": tr.created,
        "updated": tr.updated,
        "counts": {
            res: len(set(tr.created.get(res, [])) | set(tr.updated.get(res, [])))
            for res in sorted({*tr.created, *tr.updated})
        },
    }


def _touch(w: World, tr: _Tracker, res: str, i: int, rec: dict[str, Any], t: int) -> None:
    w.put(res, i, rec, t)
    tr.add(tr.updated, res, rec["id"])


def _create(w: World, tr: _Tracker, res: str, i: int, rec: dict[str, Any], t: int) -> None:
    w.put(res, i, rec, t)
    tr.add(tr.created, res, rec["id"])


def _cur(w: World, res: str, i: int) -> dict[str, Any]:
    return copy.deepcopy(w.get(res, i))


def _pick_active(w: World, r: random.Random, res: str, tries: int = 20) -> int | None:
    for _ in range(tries):
        i = r.randrange(w.total(res))
        if w.meta(res, i)[2]:
            return i
    return None


def _recent(w: World, res: str, window: int = 200) -> range:
    n = w.total(res)
    return range(n - 1, max(-1, n - 1 - window), -1)


def new_customer(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    c = w.new_index("customers")
    cust = g.customer(rng_for(w._h("customers", c)), ID_BASE["customers"] + c, t, t, True, None, 0.0)
    _create(w, tr, "customers", c, cust, t)
    loc = w.new_index("locations")
    _create(
        w,
        tr,
        "locations",
        loc,
        g.location(
            rng_for(w._h("locations", loc)),
            ID_BASE["locations"] + loc,
            cust["id"],
            t,
            t,
            True,
            None,
            cust["name"],
        ),
        t,
    )
    for _ in range(1 + r.randrange(2)):
        k = w.new_index("customer_contacts")
        _create(
            w,
            tr,
            "customer_contacts",
            k,
            g.contact(
                rng_for(w._h("customer_contacts", k)),
                ID_BASE["customer_contacts"] + k,
                "customerId",
                cust["id"],
                t,
                t,
                True,
            ),
            t,
        )
    k = w.new_index("location_contacts")
    _create(
        w,
        tr,
        "location_contacts",
        k,
        g.contact(
            rng_for(w._h("location_contacts", k)),
            ID_BASE["location_contacts"] + k,
            "locationId",
            ID_BASE["locations"] + loc,
            t,
            t,
            True,
        ),
        t,
    )


def new_job(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    loc = _pick_active(w, r, "locations")
    if loc is None:
        return
    location = w.get("locations", loc)
    j, a, s, inv = (w.new_index(x) for x in ("jobs", "appointments", "appointment_assignments", "invoices"))
    job_id, appt_id, inv_id = ID_BASE["jobs"] + j, ID_BASE["appointments"] + a, ID_BASE["invoices"] + inv
    bu = g.BUSINESS_UNITS[r.choice((0, 0, 1, 2, 3, 3, 4))]
    tech = w._static["technicians"][r.randrange(w.n["technicians"])].rec
    job = g.job(
        rng_for(w._h("jobs", j)),
        job_id,
        location["customerId"],
        location["id"],
        bu[0],
        ID_BASE["job_types"] + r.randrange(len(g.JOB_TYPES) - 1),
        ID_BASE["campaigns"] + r.randrange(len(g.CAMPAIGNS) - 1),
        "Scheduled",
        t,
        t,
        None,
        [appt_id],
        inv_id,
        [],
        None,
        None,
    )
    _create(w, tr, "jobs", j, job, t)
    start = (t // HOUR) * HOUR + DAY + r.randrange(8) * HOUR
    _create(
        w,
        tr,
        "appointments",
        a,
        g.appointment(
            rng_for(w._h("appointments", a)),
            appt_id,
            job_id,
            location["customerId"],
            f"{job_id}-1",
            start,
            "Scheduled",
            t,
            t,
            True,
        ),
        t,
    )
    _create(
        w,
        tr,
        "appointment_assignments",
        s,
        g.assignment(
            ID_BASE["appointment_assignments"] + s,
            tech["id"],
            tech["name"],
            job_id,
            appt_id,
            "Scheduled",
            t,
            t,
            True,
        ),
        t,
    )
    cust_i = w.index_of("customers", location["customerId"])
    cust_name = w.get("customers", cust_i)["name"] if cust_i is not None else location["name"]
    _create(
        w,
        tr,
        "invoices",
        inv,
        g.invoice(
            rng_for(w._h("invoices", inv)),
            inv_id,
            job_id,
            (location["customerId"], cust_name),
            location["id"],
            (bu[0], bu[1]),
            t,
            t,
            [],
            0.0,
            None,
            True,
        ),
        t,
    )


_NEXT = {
    "Scheduled": "Dispatched",
    "Dispatched": "InProgress",
    "InProgress": "Completed",
    "Hold": "InProgress",
}
_APPT = {"Dispatched": "Dispatched", "InProgress": "Working", "Completed": "Done"}


def job_progress(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    open_jobs = [j for j in _recent(w, "jobs", 300) if w.get("jobs", j)["jobStatus"] in _NEXT]
    if not open_jobs:
        return
    j = r.choice(open_jobs)
    job = _cur(w, "jobs", j)
    status = "Hold" if r.random() < 0.05 else _NEXT[job["jobStatus"]]
    job["jobStatus"] = status
    if status == "Completed":
        job["completedOn"] = fmt(t)
    a = w.index_of("appointments", job["lastAppointmentId"])
    if a is not None and status in _APPT:
        appt = _cur(w, "appointments", a)
        appt["status"] = _APPT[status]
        _touch(w, tr, "appointments", a, appt, t)
    inv = w.index_of("invoices", job["invoiceId"])
    if status == "Completed" and inv is not None:
        _complete_invoice(w, r, t, tr, inv, job)
        job["total"] = float(w.get("invoices", inv)["total"] or 0)
    _touch(w, tr, "jobs", j, job, t)


def _complete_invoice(w: World, r: random.Random, t: int, tr: _Tracker, inv: int, job: dict[str, Any]) -> None:
    invoice = _cur(w, "invoices", inv)
    bu = (invoice["businessUnit"]["id"], invoice["businessUnit"]["name"])
    items = []
    for order in (1, 2):
        k = w.new_index("invoice_items")
        item = g.invoice_item(
            rng_for(w._h("invoice_items", k)),
            ID_BASE["invoice_items"] + k,
            invoice["id"],
            order,
            bu,
            t,
            t,
            True,
            None,
        )
        _create(w, tr, "invoice_items", k, item, t)
        items.append(item)
    fresh = g.invoice(
        rng_for(w._h("invoices", inv)),
        invoice["id"],
        job["id"],
        (invoice["customer"]["id"], invoice["customer"]["name"]),
        invoice["location"]["id"],
        bu,
        parse(invoice["createdOn"]),
        t,
        items,
        0.0,
        None,
        True,
    )
    fresh["invoiceDate"] = fmt_naive_midnight(t)
    fresh["dueDate"] = fmt_naive_midnight(t + 30 * DAY)
    _touch(w, tr, "invoices", inv, fresh, t)
    c = w.index_of("customers", invoice["customer"]["id"])
    if c is not None:  # the customer's open balance grows until paid (overdue balances)
        cust = _cur(w, "customers", c)
        cust["balance"] = round(cust["balance"] + float(fresh["total"]), 2)
        _touch(w, tr, "customers", c, cust, t)


def estimate_created(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    cands = [j for j in _recent(w, "jobs", 100) if w.get("jobs", j)["jobStatus"] != "Canceled"]
    if not cands:
        return
    j = r.choice(cands)
    job = _cur(w, "jobs", j)
    e = w.new_index("estimates")
    bu_name = next((b[1] for b in g.BUSINESS_UNITS if b[0] == job["businessUnitId"]), "")
    est = g.estimate(
        rng_for(w._h("estimates", e)),
        ID_BASE["estimates"] + e,
        130_000_000 + e * 4,
        job["id"],
        job["locationId"],
        job["customerId"],
        (job["businessUnitId"], bu_name),
        "Open",
        t,
        t,
        None,
        None,
        True,
    )
    _create(w, tr, "estimates", e, est, t)
    job["estimateIds"] = [*job["estimateIds"], est["id"]]
    _touch(w, tr, "jobs", j, job, t)


def estimate_decided(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    cands = [e for e in _recent(w, "estimates", 300) if w.get("estimates", e)["status"]["name"] == "Open"]
    if not cands:
        return
    e = r.choice(cands)
    est = _cur(w, "estimates", e)
    sold = r.random() < 0.6
    est["status"] = {
        "value": g.ESTIMATE_STATUS["Sold" if sold else "Dismissed"],
        "name": "Sold" if sold else "Dismissed",
    }
    if sold:
        est["soldOn"] = fmt(t)
        est["soldBy"] = w._static["technicians"][r.randrange(w.n["technicians"])].rec["id"]
    _touch(w, tr, "estimates", e, est, t)


def payment(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    cands = [
        i
        for i in _recent(w, "invoices", 400)
        if w.meta("invoices", i)[2] and float(w.get("invoices", i)["balance"] or 0) > 0
    ]
    if not cands:
        return
    inv = r.choice(cands)
    invoice = _cur(w, "invoices", inv)
    balance = float(invoice["balance"])
    amount = round(balance if r.random() < 0.7 else balance / 2, 2)
    p = w.new_index("payments")
    pay = g.payment(
        rng_for(w._h("payments", p)),
        ID_BASE["payments"] + p,
        (invoice["customer"]["id"], invoice["customer"]["name"]),
        (invoice["businessUnit"]["id"], invoice["businessUnit"]["name"]),
        invoice["id"],
        amount,
        t,
        t,
        True,
    )
    _create(w, tr, "payments", p, pay, t)
    invoice["balance"] = g.money(max(0.0, balance - amount))
    if invoice["balance"] == "0.00":
        invoice["paidOn"] = fmt(t)
    _touch(w, tr, "invoices", inv, invoice, t)
    c = w.index_of("customers", invoice["customer"]["id"])
    if c is not None:
        cust = _cur(w, "customers", c)
        cust["balance"] = round(max(0.0, cust["balance"] - amount), 2)
        _touch(w, tr, "customers", c, cust, t)


def deactivate(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    res = r.choice(("customer_contacts", "location_contacts", "appointment_assignments", "installed_equipment"))
    i = _pick_active(w, r, res)
    if i is None:
        return
    rec = _cur(w, res, i)
    rec["active"] = False
    if res == "installed_equipment":
        rec["status"] = "Replaced"
    _touch(w, tr, res, i, rec, t)


def merge(w: World, r: random.Random, t: int, tr: _Tracker) -> None:
    """A duplicate customer is merged into another: it turns inactive and points at the survivor."""
    loser, survivor = _pick_active(w, r, "customers"), _pick_active(w, r, "customers")
    if loser is None or survivor is None or loser == survivor:
        return
    rec = _cur(w, "customers", loser)
    rec["active"] = False
    rec["mergedToId"] = w.id_of("customers", survivor)
    _touch(w, tr, "customers", loser, rec, t)


_EVENTS = {
    "new_customer": new_customer,
    "new_job": new_job,
    "job_progress": job_progress,
    "estimate_created": estimate_created,
    "estimate_decided": estimate_decided,
    "payment": payment,
    "deactivate": deactivate,
    "merge": merge,
}
