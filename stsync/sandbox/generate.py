"""Record builders: one plain function per resource, returning the dict ServiceTitan would serve.

Builders are cheap on purpose (plain dicts, a reseeded shared Random, preformatted timestamps) because a
5000-record export page of the `large` world is generated on demand. Field names, nesting and quirks follow
the official OpenAPI schemas plus the real-world deviations listed in ``tests/sandbox/deviations.py``:
accounting money as strings, 7-digit fractions, zone-less invoice dates, nulls in some "required" fields.
Relations (which customer a location belongs to, ...) are decided by the caller and passed in.
"""

from __future__ import annotations

import random
from typing import Any

from stsync.sandbox.clock import DAY, HOUR, fmt, fmt_date, fmt_naive_midnight

FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Maria",
    "Wei",
    "Aisha",
    "Olga",
    "Kenji",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Nguyen",
    "Kim",
    "Patel",
    "O'Brien",
)
COMPANY = (
    "Property Management",
    "Holdings",
    "Realty",
    "Dental Group",
    "Apartments",
    "HOA",
    "Restaurant Group",
    "Storage",
    "Church",
    "School District",
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Pine St",
    "Elm St",
    "Sunset Blvd",
    "Lakeview Rd",
    "Hillcrest Ave",
    "Park Pl",
    "Willow Way",
    "River Rd",
)
CITIES = (
    ("Phoenix", "AZ", "850"),
    ("Mesa", "AZ", "852"),
    ("Tempe", "AZ", "852"),
    ("Scottsdale", "AZ", "852"),
    ("Glendale", "AZ", "853"),
    ("Chandler", "AZ", "852"),
    ("Gilbert", "AZ", "852"),
    ("Peoria", "AZ", "853"),
)
BUSINESS_UNITS = (
    (1314, "Sales & Service", True),
    (54670601, "Install", True),
    (4622, "Pool", True),
    (26143, "Plumbing", True),
    (880215, "HVAC Maintenance", True),
    (90011, "Electrical", False),
)
# Jobs spread over business units with these weights (same order as BUSINESS_UNITS).
BU_WEIGHTS = (35, 15, 10, 25, 15, 0)
JOB_TYPES = (
    ("Service Call", "Normal", 2),
    ("AC Repair", "High", 3),
    ("Furnace Repair", "High", 3),
    ("Maintenance Visit", "Low", 2),
    ("System Install", "Normal", 8),
    ("Drain Cleaning", "Normal", 2),
    ("Water Heater Install", "Normal", 4),
    ("Pool Pump Repair", "Normal", 2),
    ("Estimate Visit", "Low", 1),
    ("Leak Detection", "Urgent", 2),
    ("Warranty Call", "Low", 1),
    ("Legacy Job Type", "Normal", 1),
)
CAMPAIGNS = (
    "Google Ads",
    "Yelp",
    "Referral",
    "Repeat Customer",
    "Direct Mail",
    "Facebook",
    "Website",
    "Home Show",
    "Truck Wrap",
    "Old Radio Spot",
)
CALL_REASONS = (
    ("New Service", True),
    ("Follow Up", False),
    ("Billing Question", False),
    ("Cancel", False),
    ("Reschedule", False),
    ("Quote Request", True),
    ("Emergency", True),
    ("Wrong Number", False),
)
TAG_TYPES = (
    "VIP",
    "Member",
    "Do Not Call",
    "Dog on Premises",
    "Commercial",
    "Warranty",
    "Gate Code",
    "Senior Discount",
    "Needs Follow-up",
    "Old Tag",
)
CUSTOM_FIELDS = {
    "customers": (
        (12, "Preferred Contact", "Dropdown", ["Phone", "Email", "Text"]),
        (13, "Referral Source", "Text", None),
        (14, "Loyalty Points", "Numeric", None),
    ),
    "locations": (
        (21, "Gate Code", "Text", None),
        (22, "Property Type", "Dropdown", ["House", "Condo", "Office"]),
    ),
    "jobs": (
        (31, "PO Required", "Dropdown", ["Yes", "No"]),
        (32, "Permit Number", "Text", None),
        (33, "Crew Size", "Numeric", None),
    ),
}
EQUIPMENT = (
    ("Carrier", "Infinity 24", "AC Unit", 5400.0),
    ("Trane", "XR15", "Heat Pump", 6100.0),
    ("Rheem", "Performance 50", "Water Heater", 1350.0),
    ("Lennox", "SL280", "Furnace", 3900.0),
    ("Pentair", "IntelliFlo", "Pool Pump", 1650.0),
    ("Goodman", "GSX14", "AC Unit", 3700.0),
)
SKUS = (
    (7001, "SVC-DIAG", "Diagnostic Fee", "Service", 89.0),
    (7002, "SVC-TUNE", "Tune-up", "Service", 149.0),
    (7003, "MAT-FILTER", "Air Filter", "Material", 24.5),
    (7004, "MAT-CAP", "Capacitor", "Material", 65.0),
    (7005, "EQ-AC3T", "3 Ton AC Unit", "Equipment", 4200.0),
    (7006, "SVC-LABOR", "Labor Hour", "Service", 120.0),
    (7007, "MAT-PIPE", "PEX Pipe 10ft", "Material", 18.0),
    (7008, "EQ-WH50", "50 Gal Water Heater", "Equipment", 1150.0),
)
ESTIMATE_STATUS = {"Open": 0, "Sold": 1, "Dismissed": 2}
PAYMENT_TYPES = ((1, "Credit Card"), (2, "Check"), (3, "Cash"), (4, "ACH"))
ADMIN_ID = 1001  # the office user that "created" records


def money(x: float) -> str:
    """Accounting amounts are JSON strings with two decimals."""
    return f"{x:.2f}"


def person(r: random.Random) -> tuple[str, str]:
    return r.choice(FIRST), r.choice(LAST)


def address(r: random.Random, quirks: bool = True) -> dict[str, Any]:
    city, state, zip3 = r.choice(CITIES)
    street: str | None = f"{r.randrange(100, 9999)} {r.choice(STREETS)}"
    # Real exports carry null street/city now and then although the schema calls them required.
    if quirks and r.random() < 0.02:
        street = None
    return {
        "street": street,
        "unit": None if r.random() < 0.85 else f"Apt {r.randrange(1, 40)}",
        "city": None if quirks and r.random() < 0.01 else city,
        "state": state,
        "zip": f"{zip3}{r.randrange(10, 99)}",
        "country": "USA",
        "latitude": round(33.3 + r.random() * 0.4, 6),
        "longitude": round(-112.3 + r.random() * 0.6, 6),
    }


def phone(r: random.Random) -> str:
    return f"602{r.randrange(2000000, 9999999)}"


def customer(
    r: random.Random,
    id_: int,
    created: int,
    modified: int,
    active: bool,
    merged_to: int | None,
    balance: float,
) -> dict[str, Any]:
    first, last = person(r)
    commercial = r.random() < 0.15
    name = f"{last} {r.choice(COMPANY)}" if commercial else f"{first} {last}"
    ctype: str | None = "Commercial" if commercial else "Residential"
    if r.random() < 0.02:
        ctype = None  # undocumented but observed: CustomerType arrives null
    cf = [{"typeId": 12, "name": "Preferred Contact", "value": r.choice(("Phone", "Email", "Text"))}]
    return {
        "id": id_,
        "active": active,
        "name": name,
        "type": ctype,
        "address": address(r),
        "customFields": cf,
        "balance": round(balance, 2),
        "taxExempt": commercial and r.random() < 0.2,
        "tagTypeIds": [] if r.random() < 0.7 else [400 + r.randrange(0, 9)],
        "doNotMail": r.random() < 0.05,
        "doNotService": False,
        "nationalAccount": commercial and r.random() < 0.1,
        "createdOn": fmt(created),
        "createdById": ADMIN_ID,
        "modifiedOn": fmt(modified),
        "mergedToId": merged_to,
        "paymentTermId": None,
        "creditLimit": None,
        "creditLimitBalance": None,
        "externalData": None if r.random() < 0.3 else [],
    }


def location(
    r: random.Random,
    id_: int,
    customer_id: int,
    created: int,
    modified: int,
    active: bool,
    merged_to: int | None,
    cust_name: str | None = None,
) -> dict[str, Any]:
    return {
        "taxZoneId": None,
        "id": id_,
        "customerId": customer_id,
        "active": active,
        "name": cust_name or f"{r.choice(LAST)} Residence",
        "address": address(r),
        "customFields": []
        if r.random() < 0.8
        else [{"typeId": 21, "name": "Gate Code", "value": str(r.randrange(1000, 9999))}],
        "createdOn": fmt(created),
        "createdById": ADMIN_ID,
        "modifiedOn": fmt(modified),
        "mergedToId": merged_to,
        "zoneId": 500 + r.randrange(0, 6),
        "taxExempt": False,
        "tagTypeIds": [] if r.random() < 0.85 else [403],
        "externalData": None if r.random() < 0.3 else [],
    }


def contact(
    r: random.Random, id_: int, owner_key: str, owner_id: int, created: int, modified: int, active: bool
) -> dict[str, Any]:
    kind = r.choice(("Phone", "Phone", "MobilePhone", "Email", "Email", "Fax"))
    if kind == "Email":
        first, last = person(r)
        value = f"{first.lower()}.{last.lower().replace(chr(39), '')}{r.randrange(1, 99)}@example.com"
    else:
        value = phone(r)
    return {
        "id": id_,
        "type": kind,
        "value": value,
        "memo": None if r.random() < 0.8 else "office",
        "phoneSettings": {"phoneNumber": value if kind != "Email" else "", "doNotText": r.random() < 0.1},
        "modifiedOn": fmt(modified),
        "createdOn": fmt(created),
        "preferences": {
            "jobRemindersEnabled": True,
            "marketingUpdatesEnabled": r.random() < 0.5,
            "invoiceStatementNotification": r.random() < 0.3,
        },
        owner_key: owner_id,
        "active": active,
    }


def job(
    r: random.Random,
    id_: int,
    customer_id: int,
    location_id: int,
    bu_id: int,
    job_type_id: int,
    campaign_id: int,
    status: str,
    created: int,
    modified: int,
    completed: int | None,
    appts: list[int],
    invoice_id: int,
    estimate_ids: list[int],
    total: float | None,
    sold_by: int | None,
) -> dict[str, Any]:
    return {
        "summary": "<p>"
        + r.choice(
            (
                "No cooling",
                "Annual maintenance",
                "Leaking pipe",
                "Install quote",
                "Pool pump noise",
                "Breaker trips",
            )
        )
        + "</p>",
        "customFields": [] if r.random() < 0.7 else [{"typeId": 31, "name": "PO Required", "value": "No"}],
        "externalData": None if r.random() < 0.3 else [],
        "id": id_,
        "jobNumber": str(id_),
        "projectId": None,
        "customerId": customer_id,
        "locationId": location_id,
        "jobStatus": status,
        "completedOn": fmt(completed) if completed is not None else None,
        "businessUnitId": bu_id,
        "jobTypeId": job_type_id,
        "priority": r.choice(("Normal", "Normal", "Normal", "High", "Low", "Urgent")),
        "campaignId": campaign_id,
        "appointmentCount": len(appts),
        "firstAppointmentId": appts[0] if appts else 0,
        "lastAppointmentId": appts[-1] if appts else 0,
        "recallForId": None,
        "warrantyId": None,
        "jobGeneratedLeadSource": None,
        "noCharge": r.random() < 0.03,
        "notificationsEnabled": True,
        "createdOn": fmt(created),
        "createdById": ADMIN_ID,
        "modifiedOn": fmt(modified),
        "tagTypeIds": [],
        "leadCallId": None,
        "partnerLeadCallId": None,
        "bookingId": None,
        "soldById": sold_by,
        "customerPo": "",
        "invoiceId": invoice_id,
        "membershipId": None,
        "total": total,
        "createdFromEstimateId": None,
        "estimateIds": estimate_ids,
        "active": True,
    }


def appointment(
    r: random.Random,
    id_: int,
    job_id: int,
    customer_id: int,
    number: str,
    start: int,
    status: str,
    created: int,
    modified: int,
    active: bool,
) -> dict[str, Any]:
    end = start + (1 + r.randrange(0, 4)) * HOUR
    rec = {
        "id": id_,
        "jobId": job_id,
        "appointmentNumber": number,
        "start": fmt(start),
        "end": fmt(end),
        "arrivalWindowStart": fmt(start),
        "arrivalWindowEnd": fmt(start + 2 * HOUR),
        "status": status,
        "specialInstructions": None if r.random() < 0.8 else "Call before arrival",
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "customerId": customer_id,
        "unused": False,
        "createdById": ADMIN_ID,
        "isConfirmed": r.random() < 0.7,
        "active": active,
    }
    if r.random() < 0.3:
        # Undeclared field seen on live tenants (PROBE snapshots); clients must tolerate extras.
        rec["appointmentSummaries"] = []
    return rec


def assignment(
    id_: int,
    tech_id: int,
    tech_name: str,
    job_id: int,
    appt_id: int,
    status: str,
    created: int,
    modified: int,
    active: bool,
) -> dict[str, Any]:
    return {
        "id": id_,
        "technicianId": tech_id,
        "technicianName": tech_name,
        "assignedById": ADMIN_ID,
        "assignedOn": fmt(created),
        "status": status,
        "isPaused": False,
        "jobId": job_id,
        "appointmentId": appt_id,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "active": active,
    }


def estimate(
    r: random.Random,
    id_: int,
    item_base: int,
    job_id: int,
    location_id: int,
    customer_id: int,
    bu: tuple[int, str],
    status: str,
    created: int,
    modified: int,
    sold_on: int | None,
    sold_by: int | None,
    active: bool,
) -> dict[str, Any]:
    items = []
    subtotal = 0.0
    for k in range(1 + r.randrange(0, 3)):
        sku_id, code, name, kind, price = r.choice(SKUS)
        qty = float(1 + r.randrange(0, 3))
        subtotal += qty * price
        items.append(
            {
                "id": item_base + k,
                "sku": {
                    "id": sku_id,
                    "name": code,
                    "displayName": name,
                    "type": kind,
                    "soldHours": 1.0 if kind == "Service" else 0.0,
                    "generalLedgerAccountId": 4000,
                    "generalLedgerAccountName": "Sales Income",
                    "modifiedOn": fmt(created - 30 * DAY),
                },
                "skuAccount": "4000",
                "description": f"<p>{name}</p>",
                "membershipTypeId": None,
                "qty": qty,
                "unitRate": price,
                "total": round(qty * price, 2),
                "unitCost": round(price * 0.4, 2),
                "totalCost": round(qty * price * 0.4, 2),
                "itemGroupName": "",
                "itemGroupRootId": None,
                "createdOn": fmt(created),
                "modifiedOn": fmt(created),
                "chargeable": True,
                "invoiceItemId": None,
                "budgetCodeId": None,
            }
        )
    return {
        "id": id_,
        "jobId": job_id,
        "projectId": None,
        "locationId": location_id,
        "customerId": customer_id,
        "name": r.choice(("Good", "Better", "Best", "Repair Option", "Replacement")),
        "jobNumber": str(job_id),
        "status": {"value": ESTIMATE_STATUS[status], "name": status},
        "reviewStatus": "None",
        "summary": "",
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "soldOn": fmt(sold_on) if sold_on is not None else None,
        "soldBy": sold_by,
        "active": active,
        "items": items,
        "externalLinks": [],
        "subtotal": round(subtotal, 2),
        "tax": round(subtotal * 0.08, 2),
        "businessUnitId": bu[0],
        "businessUnitName": bu[1],
        "isRecommended": r.random() < 0.3,
        "budgetCodeId": None,
        "isChangeOrder": False,
        "proposalTagName": None,
    }


def invoice_item(
    r: random.Random,
    id_: int,
    invoice_id: int,
    order: int,
    bu: tuple[int, str],
    created: int,
    modified: int,
    active: bool,
    tech_id: int | None,
) -> dict[str, Any]:
    sku_id, code, name, kind, price = r.choice(SKUS)
    qty = float(1 + r.randrange(0, 2))
    return {
        "id": id_,
        "description": f"<p>{name}</p>",
        "quantity": f"{qty:.2f}",
        "cost": money(price * 0.4),
        "totalCost": money(qty * price * 0.4),
        "budgetCodeId": None,
        "inventoryLocationId": None,
        "inventoryLocation": None,
        "price": money(price),
        "type": kind,
        "skuName": code,
        "skuId": sku_id,
        "total": money(qty * price),
        "inventory": kind == "Material",
        "taxable": kind != "Service",
        "isChargeable": True,
        "generalLedgerAccount": {
            "id": 4000,
            "name": "Sales Income",
            "number": "4000",
            "type": "Income",
            "detailType": "Sales",
        },
        "costOfSaleAccount": None,
        "assetAccount": None,
        "membershipTypeId": 0,
        "itemGroup": None,
        "displayName": name,
        "soldHours": 1.0 if kind == "Service" else 0.0,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "serviceDate": fmt(created),
        "order": order,
        "businessUnit": {"id": bu[0], "name": bu[1]},
        "createdById": ADMIN_ID,
        "displayInAmount": True,
        "importId": None,
        "exportId": None,
        "inventoryStatus": None,
        "addOn": False,
        "memberPrice": None,
        "technicianId": tech_id,
        "installedEquipmentId": None,
        "estimateItemId": None,
        "active": active,
        "invoiceId": invoice_id,
    }


def invoice_total(items: list[dict[str, Any]]) -> float:
    return sum(float(it["total"]) for it in items if it["active"])


def invoice(
    r: random.Random,
    id_: int,
    job_id: int,
    cust: tuple[int, str],
    loc_id: int,
    bu: tuple[int, str],
    created: int,
    modified: int,
    items: list[dict[str, Any]],
    paid: float,
    paid_on: int | None,
    active: bool,
) -> dict[str, Any]:
    sub = invoice_total(items)
    tax = round(sub * 0.08, 2)
    total = sub + tax
    embedded = [{k: v for k, v in it.items() if k not in ("active", "invoiceId")} for it in items if it["active"]]
    addr = {
        "street": f"{r.randrange(100, 9999)} {r.choice(STREETS)}",
        "unit": None,
        "city": "Phoenix",
        "state": "AZ",
        "zip": "85004",
        "country": "USA",
    }
    return {
        "summary": None,
        "items": embedded,
        "customFields": [],
        "active": active,
        "discountTotal": "0.00",
        "importId": None,
        "exportId": None,
        "materialSkuId": None,
        "membershipId": None,
        "paidOn": fmt(paid_on) if paid_on is not None else None,
        "invoiceConfiguration": "JobInvoice",
        "id": id_,
        "syncStatus": r.choice(("Pending", "Posted", "Exported")),
        "budgetCodeId": None,
        "referenceNumber": str(id_),
        "invoiceDate": fmt_naive_midnight(created),
        "dueDate": fmt_naive_midnight(created + 30 * DAY),
        "subTotal": money(sub),
        "salesTax": money(tax),
        "salesTaxCode": {"id": 9, "name": "Maricopa", "taxRate": 0.08},
        "taxZoneId": None,
        "total": money(total),
        "balance": money(max(0.0, total - paid)),
        "invoiceType": None,
        "customer": {"id": cust[0], "name": cust[1]},
        "customerAddress": addr,
        "location": {"id": loc_id, "name": cust[1]},
        "locationAddress": addr,
        "businessUnit": {"id": bu[0], "name": bu[1]},
        "termName": "Net 30",
        "createdBy": "office",
        "batch": None,
        "depositedOn": None,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "adjustmentToId": None,
        "job": {"id": job_id, "number": str(job_id), "type": "Service Call"},
        "projectId": None,
        "royalty": None,
        "employeeInfo": None,
        "commissionEligibilityDate": None,
        "sentStatus": "Sent" if items else "NotSent",
        "reviewStatus": "Reviewed" if items else "NeedsReview",
        "assignedTo": None,
    }


def payment(
    r: random.Random,
    id_: int,
    cust: tuple[int, str],
    bu: tuple[int, str],
    invoice_id: int,
    amount: float,
    created: int,
    modified: int,
    active: bool,
) -> dict[str, Any]:
    type_id, type_name = r.choice(PAYMENT_TYPES)
    return {
        "active": active,
        "appliedTo": [
            {
                "appliedAmount": money(amount),
                "appliedBy": "office",
                "appliedId": id_ * 10 + 1,
                "appliedOn": fmt(created),
                "appliedTo": invoice_id,
                "appliedToReferenceNumber": str(invoice_id),
            }
        ],
        "authCode": None,
        "batch": None,
        "businessUnit": {"id": bu[0], "name": bu[1]},
        "checkNumber": str(r.randrange(1000, 9999)) if type_name == "Check" else None,
        "createdBy": "office",
        "createdOn": fmt(created),
        "customer": {"id": cust[0], "name": cust[1]},
        "customFields": [],
        "date": fmt_naive_midnight(created),
        "deposit": None,
        "generalLedgerAccount": {
            "id": 1200,
            "name": "Undeposited Funds",
            "number": "1200",
            "type": "Asset",
            "detailType": None,
        },
        "id": id_,
        "memo": None,
        "modifiedOn": fmt(modified),
        "referenceNumber": str(id_),
        "refundedPaymentId": None,
        "syncStatus": "Posted",
        "total": money(amount),
        "type": type_name,
        "typeId": str(type_id),
        "unappliedAmount": "0.00",
    }


def installed_equipment(
    r: random.Random, id_: int, location_id: int, customer_id: int, created: int, modified: int, active: bool
) -> dict[str, Any]:
    make, model, kind, cost = r.choice(EQUIPMENT)
    installed = created - r.randrange(0, 400) * DAY
    return {
        "id": id_,
        "active": active,
        "equipmentId": None,
        "locationId": location_id,
        "customerId": customer_id,
        "invoiceItemId": None,
        "name": f"{make} {kind}",
        "type": {"id": 600 + EQUIPMENT.index((make, model, kind, cost)), "name": kind},
        "installedOn": fmt(installed),
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "serialNumber": f"SN{r.randrange(10**8, 10**9)}",
        "barcodeId": None,
        "memo": "",
        "manufacturer": make,
        "model": model,
        "cost": cost,
        "status": "Installed" if active else "Replaced",
        "manufacturerWarrantyStart": fmt(installed),
        "manufacturerWarrantyEnd": fmt(installed + 3650 * DAY),
        "serviceProviderWarrantyStart": None,
        "serviceProviderWarrantyEnd": None,
        "tags": [],
        "actualReplacementDate": None,
        "predictedReplacementMonths": 180,
        "predictedReplacementDate": fmt_date(installed + 5400 * DAY),
    }


def business_unit(id_: int, name: str, active: bool, created: int, modified: int) -> dict[str, Any]:
    return {
        "id": id_,
        "active": active,
        "name": name,
        "officialName": f"Desert Comfort {name}",
        "email": "office@example.com",
        "currency": "USD",
        "phoneNumber": "6025550100",
        "invoiceHeader": None,
        "invoiceMessage": None,
        "defaultTaxRate": 0.08,
        "authorizationParagraph": None,
        "acknowledgementParagraph": None,
        "address": {
            "street": "100 Commerce Dr",
            "unit": None,
            "city": "Phoenix",
            "state": "AZ",
            "zip": "85004",
            "country": "USA",
            "latitude": None,
            "longitude": None,
            "isManualCoordinates": False,
            "isMilitary": False,
        },
        "materialSku": None,
        "quickbooksClass": None,
        "accountCode": None,
        "franchiseId": None,
        "conceptCode": None,
        "corporateContractNumber": None,
        "trade": None,
        "division": None,
        "tagTypeIds": [],
        "tenant": None,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "externalData": None,
    }


def technician(
    r: random.Random, id_: int, name: str, bu_id: int, created: int, modified: int, active: bool
) -> dict[str, Any]:
    first, last = name.split(" ", 1)
    return {
        "id": id_,
        "userId": id_ + 500000,
        "name": name,
        "roleIds": [2],
        "businessUnitId": bu_id,
        "mainZoneId": None,
        "zoneIds": [],
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "email": f"{first.lower()}.{id_}@example.com",
        "phoneNumber": phone(r),
        "loginName": f"tech{id_}",
        "home": None,
        "dailyGoal": 1500.0,
        "isManagedTech": False,
        "licenseType": None,
        "customFields": [],
        "active": active,
        "aadUserId": None,
        "burdenRate": 0.0,
        "team": r.choice(("Red", "Blue", None)),
        "jobFilter": None,
        "permissions": [],
        "accountLocked": False,
        "commissionRate": 0.0,
        "currentValue": None,
        "firstName": first,
        "lastName": last,
        "hourlyRate": float(25 + r.randrange(0, 15)),
        "jobId": None,
        "mobilePhone": None,
        "outboundCallerId": None,
        "payrollId": None,
        "payrollProfileId": None,
        "appoitmentId": None,
        "shiftStart": None,
        "shiftEnd": None,
        "soldByRate": 0.0,
        "startDate": fmt(created),
        "status": "Idle",
        "skills": [],
        "positions": None,
        "location": None,
        "bio": None,
        "memo": None,
    }


def employee(r: random.Random, id_: int, created: int, modified: int, active: bool) -> dict[str, Any]:
    first, last = person(r)
    return {
        "customFields": [],
        "permissions": [],
        "id": id_,
        "userId": id_ + 500000,
        "name": f"{first} {last}",
        "firstName": first,
        "lastName": last,
        "managerId": None,
        "role": r.choice(("CSR", "Dispatch", "Accounting", "GeneralOffice", "Admin")),
        "roleIds": [1],
        "businessUnitId": None,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
        "email": f"{first.lower()}.{id_}@example.com",
        "phoneNumber": None,
        "loginName": f"emp{id_}",
        "active": active,
        "aadUserId": None,
        "accountLocked": False,
        "home": None,
        "agentId": 0,
        "startDate": fmt(created),
        "terminationDate": None if active else fmt(modified),
        "hourlyRate": float(18 + r.randrange(0, 12)),
        "overtimeProfileId": None,
    }


def job_type(idx: int, id_: int, created: int, modified: int) -> dict[str, Any]:
    name, priority, hours = JOB_TYPES[idx]
    return {
        "id": id_,
        "name": name,
        "businessUnitIds": [BUSINESS_UNITS[idx % 5][0]],
        "skills": [],
        "tagTypeIds": [],
        "priority": priority,
        "duration": hours * 3600,
        "soldThreshold": None,
        "class": "Service" if idx % 3 else "Install",
        "summary": "",
        "noCharge": False,
        "enforceRecurringServiceEventSelection": False,
        "invoiceSignaturesRequired": False,
        "modifiedOn": fmt(modified),
        "createdOn": fmt(created),
        "externalData": [],
        "active": name != "Legacy Job Type",
        "isSmartDispatched": False,
    }


def campaign(idx: int, id_: int, created: int, modified: int) -> dict[str, Any]:
    name = CAMPAIGNS[idx]
    return {
        "id": id_,
        "name": name,
        "modifiedOn": fmt(modified),
        "createdOn": fmt(created),
        "active": name != "Old Radio Spot",
        "isDefaultCampaign": idx == 0,
        "category": {
            "id": 1 + idx % 3,
            "name": ("Online", "Offline", "Word of Mouth")[idx % 3],
            "active": True,
        },
        "source": None,
        "otherSource": None,
        "businessUnit": None,
        "medium": None,
        "otherMedium": None,
        "campaignPhoneNumbers": [],
    }


def call_reason(idx: int, id_: int, created: int, modified: int) -> dict[str, Any]:
    name, lead = CALL_REASONS[idx]
    return {
        "id": id_,
        "name": name,
        "isLead": lead,
        "active": name != "Wrong Number",
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
    }


def tag_type(idx: int, id_: int, created: int, modified: int) -> dict[str, Any]:
    name = TAG_TYPES[idx]
    return {
        "id": id_,
        "name": name,
        "color": ("#FF0000", "#00AA00", "#0000FF")[idx % 3],
        "code": name.upper().replace(" ", "_")[:10],
        "importance": "High" if idx < 2 else "Medium",
        "isConversionOpportunity": idx == 1,
        "allowToUseOnTimesheetActivity": False,
        "isVisibleOnDispatchBoard": True,
        "active": name != "Old Tag",
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
    }


def custom_field_type(entity: str, idx: int, created: int, modified: int) -> dict[str, Any]:
    id_, name, data_type, options = CUSTOM_FIELDS[entity][idx]
    return {
        "id": id_,
        "name": name,
        "dataType": data_type,
        "dataTypeOptions": options,
        "createdOn": fmt(created),
        "modifiedOn": fmt(modified),
    }
