"""Helpers for the GHL end-to-end tests: run the real CLI, compute the expected GHL state from the mirror
with SQL (independently of stsync.ghl.plan), and compare GHL sandbox dumps modulo generated ids and
timestamps."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from tests.e2e.harness import cli_env, run_cli
from tests.ghl.conftest import INSTALL, PLUMBING, POOL, SALES

WRITE_METHODS = ("POST", "PUT", "DELETE")


def env_for(st_url: str, dsn: str, config: Path, **extra: str) -> dict[str, str]:
    return cli_env(st_url, dsn, STSYNC_CONFIG=str(config), **extra)


def cli(args: list[str], env: dict[str, str], timeout: float = 300) -> Any:
    return run_cli(args, env, timeout=timeout)


def push_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    proc = cli(["ghl", "push", *args, "--json"], env)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-2000:]}") from None
    return proc.returncode, doc


def rows(dsn: str, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def one_line_error(proc: Any, code: int, *needles: str) -> str:
    """The run failed with `code`, no traceback, and its last stderr line is the error naming `needles`."""
    assert proc.returncode == code, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("stsync: error: "), last
    for needle in needles:
        assert needle in last, (needle, last)
    return last


# --- expectations from the mirror ---------------------------------------------------------------------

# Customers with an active job in an enabled api-mode business unit (Sales & Service, Install).
EXPECTED_CUSTOMERS = """
SELECT DISTINCT j.customer_id FROM servicetitan.st_jobs j
 WHERE j.active AND j.customer_id IS NOT NULL AND j.business_unit_id = ANY(%(bus)s)
"""

# One row per (customer, pipeline): the job that drives the opportunity, its stage, status, value and
# technicians, by the rules. Sales: sold estimate > dismissed > open > appointment > contacted
# (most advanced job wins, latest job on ties); Install: the latest job, stage from its status.
EXPECTED_OPPORTUNITIES = """
WITH jobs AS (
  SELECT j.st_id, j.customer_id, j.st_created_on, j.job_status,
         CASE WHEN j.business_unit_id = %(install)s THEN 'Install' ELSE 'Sales' END AS pipeline,
         (SELECT count(*) FROM servicetitan.st_estimates e WHERE e.job_id = j.st_id AND e.active
             AND e.status = 'Sold') AS n_sold,
         (SELECT count(*) FROM servicetitan.st_estimates e WHERE e.job_id = j.st_id AND e.active
             AND e.status = 'Open') AS n_open,
         (SELECT count(*) FROM servicetitan.st_estimates e WHERE e.job_id = j.st_id AND e.active
             AND e.status = 'Dismissed') AS n_lost,
         (SELECT sum(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FROM servicetitan.st_estimates e
           WHERE e.job_id = j.st_id AND e.active AND e.status = 'Sold') AS sold_total,
         (SELECT max(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FROM servicetitan.st_estimates e
           WHERE e.job_id = j.st_id AND e.active AND e.status = 'Open') AS open_total,
         (SELECT max(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FROM servicetitan.st_estimates e
           WHERE e.job_id = j.st_id AND e.active AND e.status = 'Dismissed') AS lost_total,
         EXISTS (SELECT 1 FROM servicetitan.st_appointments a WHERE a.job_id = j.st_id AND a.active) AS has_appt,
         (SELECT string_agg(DISTINCT aa.technician_name, ', ' ORDER BY aa.technician_name)
            FROM servicetitan.st_appointment_assignments aa
           WHERE aa.job_id = j.st_id AND aa.active AND aa.technician_name IS NOT NULL) AS techs
    FROM servicetitan.st_jobs j
   WHERE j.active AND j.customer_id IS NOT NULL AND j.business_unit_id = ANY(%(bus)s)
), staged AS (
  SELECT *,
         CASE WHEN pipeline = 'Install' THEN
                CASE job_status WHEN 'InProgress' THEN 'InProgress' WHEN 'Working' THEN 'InProgress'
                                WHEN 'Hold' THEN 'Hold' WHEN 'Completed' THEN 'Completed' ELSE 'Scheduled' END
              WHEN n_sold > 0 THEN 'Job Sold' WHEN n_open > 0 THEN 'Proposal Sent'
              WHEN n_lost > 0 THEN 'Estimate Lost' WHEN has_appt THEN 'Appointment Scheduled'
              ELSE 'Contacted' END AS stage,
         CASE WHEN pipeline = 'Install' THEN
                CASE job_status WHEN 'Completed' THEN 'won' WHEN 'Canceled' THEN 'abandoned' ELSE 'open' END
              WHEN n_sold > 0 THEN 'won' WHEN n_open > 0 THEN 'open' WHEN n_lost > 0 THEN 'lost'
              ELSE 'open' END AS status,
         CASE WHEN pipeline = 'Install' THEN sold_total
              WHEN n_sold > 0 THEN sold_total WHEN n_open > 0 THEN open_total WHEN n_lost > 0 THEN lost_total
              END AS value,
         CASE WHEN pipeline = 'Install' THEN 0
              WHEN n_sold > 0 THEN 5 WHEN n_open > 0 THEN 3 WHEN n_lost > 0 THEN 4 WHEN has_appt THEN 2
              ELSE 1 END AS rank
    FROM jobs
)
SELECT DISTINCT ON (customer_id, pipeline) customer_id, pipeline, st_id AS job_id, stage, status,
       round(value, 2) AS value, techs
  FROM staged
 ORDER BY customer_id, pipeline, rank DESC, st_created_on DESC NULLS LAST, st_id DESC
"""

API_UNITS = [SALES, INSTALL]


def expected_customers(dsn: str, bus: list[int] = API_UNITS) -> set[int]:
    return {r[0] for r in rows(dsn, EXPECTED_CUSTOMERS, {"bus": bus})}


def expected_opportunities(dsn: str, bus: list[int] = API_UNITS) -> dict[tuple[int, str], dict[str, Any]]:
    out = {}
    for cid, pipeline, job_id, stage, status, value, techs in rows(
        dsn, EXPECTED_OPPORTUNITIES, {"bus": bus, "install": INSTALL}
    ):
        out[(cid, pipeline)] = {
            "job_id": job_id,
            "stage": stage,
            "status": status,
            "value": float(value) if value is not None else None,
            "techs": techs,
        }
    return out


# --- GHL sandbox dumps ----------------------------------------------------------------------------------


def field_names(dump: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f"{f['model']}:{f['name']}" for fs in dump["custom_fields"].values() for f in fs}


def stage_names(dump: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    pipelines = {p["id"]: p["name"] for p in dump["pipelines"]}
    stages = {s["id"]: s["name"] for p in dump["pipelines"] for s in p["stages"]}
    return pipelines, stages


def contact_customer(contact: dict[str, Any], fields: dict[str, str]) -> str | None:
    """The ServiceTitan customer id stsync wrote into the contact's custom field, if any."""
    for f in contact.get("customFields") or []:
        if fields.get(f["id"]) == "contact:ServiceTitan Customer ID":
            return str(f["value"])
    return None


def opportunity_view(dump: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GHL opportunities by id, with pipeline/stage names and custom fields by name."""
    fields = field_names(dump)
    pipelines, stages = stage_names(dump)
    out = {}
    for oid, o in dump["opportunities"].items():
        out[oid] = {
            "contactId": o["contactId"],
            "pipeline": pipelines[o["pipelineId"]],
            "stage": stages[o["pipelineStageId"]],
            "status": o["status"],
            "value": float(o.get("monetaryValue") or 0),
            "name": o["name"],
            "custom": {fields[f["id"]]: f["fieldValue"] for f in o.get("customFields") or []},
        }
    return out


_VOLATILE = {
    "id",
    "dateAdded",
    "dateUpdated",
    "createdAt",
    "updatedAt",
    "lastStatusChangeAt",
    "lastStageChangeAt",
    "lastActionDate",
    "traceId",
}


def normalized(dump: dict[str, Any]) -> dict[str, Any]:
    """A dump with generated ids and timestamps replaced by stable keys: contacts by (email, phone, name),
    opportunities by (contact key, pipeline name), stages and custom fields by name."""
    fields = field_names(dump)
    pipelines, stages = stage_names(dump)
    key = {}
    contacts = []
    for cid, c in dump["contacts"].items():
        key[cid] = (c.get("emailLowerCase") or "", c.get("phone") or "", c.get("name") or "")
        body = {k: v for k, v in c.items() if k not in _VOLATILE}
        body["customFields"] = sorted((fields[f["id"]], str(f["value"])) for f in c.get("customFields") or [])
        contacts.append(json.dumps(body, sort_keys=True, default=str))
    opps = []
    for o in dump["opportunities"].values():
        body = {
            k: v
            for k, v in o.items()
            if k not in _VOLATILE | {"contact", "contactId", "pipelineId", "pipelineStageId", "customFields"}
        }
        body["contact"] = key[o["contactId"]]
        body["pipeline"] = pipelines[o["pipelineId"]]
        body["stage"] = stages[o["pipelineStageId"]]
        body["customFields"] = sorted((fields[f["id"]], str(f["fieldValue"])) for f in o.get("customFields") or [])
        opps.append(json.dumps(body, sort_keys=True, default=str))
    return {
        "contacts": sorted(contacts),
        "opportunities": sorted(opps),
        "webhooks": {k: sorted(json.dumps(p, sort_keys=True) for p in v) for k, v in dump["webhooks"].items()},
    }


def duplicates(dump: dict[str, Any]) -> list[str]:
    """Contacts sharing an email or phone, and contacts with two opportunities in one pipeline."""
    problems = []
    emails = Counter(c.get("emailLowerCase") for c in dump["contacts"].values() if c.get("emailLowerCase"))
    phones = Counter(c.get("phone") for c in dump["contacts"].values() if c.get("phone"))
    problems += [f"email {e} x{n}" for e, n in emails.items() if n > 1]
    problems += [f"phone {p} x{n}" for p, n in phones.items() if n > 1]
    fields = field_names(dump)
    st_ids = Counter(contact_customer(c, fields) for c in dump["contacts"].values())
    problems += [f"customer {k} x{n}" for k, n in st_ids.items() if k and n > 1]
    opps = Counter((o["contactId"], o["pipelineId"]) for o in dump["opportunities"].values())
    problems += [f"opportunity {k} x{n}" for k, n in opps.items() if n > 1]
    return problems


def write_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] in WRITE_METHODS]


__all__ = ["INSTALL", "PLUMBING", "POOL", "SALES"]


def check_against_mirror(dsn: str, dump: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """Item 1: one contact per expected customer, each opportunity in the right pipeline/stage/status/value.

    Returns GHL's opportunities by (customer, pipeline name)."""
    assert duplicates(dump) == []
    fields = field_names(dump)
    want_customers = expected_customers(dsn)
    by_customer = {int(contact_customer(c, fields) or 0): cid for cid, c in dump["contacts"].items()}
    assert set(by_customer) == want_customers
    assert len(dump["contacts"]) == len(want_customers)
    recorded = dict(rows(dsn, "SELECT st_customer_id, ghl_contact_id FROM integrations.ghl_contacts"))
    assert {k: recorded.get(k) for k in by_customer} == by_customer

    opps = opportunity_view(dump)
    got = {}
    for o in opps.values():
        customer = [k for k, v in by_customer.items() if v == o["contactId"]]
        assert len(customer) == 1
        got[(customer[0], o["pipeline"])] = o
    assert len(got) == len(opps)
    want = expected_opportunities(dsn)
    assert set(got) == set(want)
    wrong = {}
    for k, w in want.items():
        g = got[k]
        have = (
            g["stage"],
            g["status"],
            g["value"] if w["value"] is not None else None,
            g["custom"].get("opportunity:Technicians"),
        )
        if have != (w["stage"], w["status"], w["value"], w["techs"]):
            wrong[k] = (have, w)
    assert wrong == {}
    return got
