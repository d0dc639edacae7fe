"""Desired GHL state from mirror rows: contact fields, the opportunity stage rules, and change detection.

Pure functions over rows (no I/O), so the rules are testable on their own; also when an item is due
(``due``) and how long a failed one waits (``backoff``).

Stage rules, in stsync's stage names (``stsync.ghl.stages``; ``ghl.pipelines`` maps them to the location's):
Sales-type pipelines, per job: job → contacted; job with an appointment → appointment_scheduled; open
estimate → proposal_sent (value = largest open estimate's subtotal + tax); a Sold estimate → sold, status won
(value = sum of sold estimates); only Dismissed estimates → lost, status lost.
Install pipeline (``ghl.install_pipeline``): stage from the job status (Scheduled/Dispatched → scheduled,
in_progress, hold, completed → status won; Canceled → canceled, status abandoned).
One opportunity per (customer, pipeline); in a Sales pipeline the customer's most advanced job drives it
(latest on ties), in the Install pipeline the latest job. A protected stage is never left for a less advanced
one (lost may still become sold; sold never becomes lost).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from stsync.ghl import stages

# Contact custom field that carries the ServiceTitan customer id (finds contacts without email or phone).
CUSTOMER_ID_FIELD = "ServiceTitan Customer ID"
_INSTALL_STAGE = {
    "Scheduled": "scheduled",
    "Dispatched": "scheduled",
    "InProgress": "in_progress",
    "Working": "in_progress",
    "Hold": "hold",
    "Completed": "completed",
    "Canceled": "canceled",
}


def stage_order(pipeline_kind: str) -> tuple[str, ...]:
    """stsync's stages of a kind of pipeline, in the order an opportunity advances."""
    return tuple(stages.DEFAULTS[pipeline_kind])


def digest(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]


def e164(raw: str | None) -> str | None:
    """A North-American phone as E.164 (+1XXXXXXXXXX); other digit strings as +digits; None if empty."""
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return "+" + digits if len(digits) >= 7 else None


def contact_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """GHL contact fields of one customer row (name, email, phone, address); None values dropped."""
    name = " ".join(str(row.get("name") or "").split())
    first, _, last = name.partition(" ")
    fields = {
        "name": name or None,
        "firstName": first or None,
        "lastName": last or None,
        "email": (row.get("email") or "").strip().lower() or None,
        "phone": e164(row.get("phone")),
        "address1": row.get("street") or None,
        "city": row.get("city") or None,
        "state": row.get("state") or None,
        "postalCode": row.get("zip") or None,
        "source": "stsync",
    }
    if fields["address1"] or fields["city"]:
        fields["country"] = "US"
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class JobState:
    """Where one job stands: its stage, status and value."""

    job_id: int
    stage: str
    status: str
    value: Decimal | None
    rank: int
    technicians: str | None


def job_state(row: Mapping[str, Any], kind: str) -> JobState:
    techs = row.get("technicians") or None
    if kind == "install":
        status_text = str(row.get("job_status") or "Scheduled")
        stage = _INSTALL_STAGE.get(status_text, "scheduled")
        status = "won" if status_text == "Completed" else "abandoned" if status_text == "Canceled" else "open"
        return JobState(row["job_id"], stage, status, _money(row.get("sold_total")), 0, techs)
    if row.get("n_sold"):
        stage, status, value = "sold", "won", row.get("sold_total")
    elif row.get("n_open"):
        stage, status, value = "proposal_sent", "open", row.get("open_total")
    elif row.get("n_dismissed"):
        stage, status, value = "lost", "lost", row.get("lost_total")
    elif row.get("has_appointment"):
        stage, status, value = "appointment_scheduled", "open", None
    else:
        stage, status, value = "contacted", "open", None
    return JobState(row["job_id"], stage, status, _money(value), progress(stage, "sales"), techs)


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class OpportunityWant:
    """The desired opportunity of one customer in one pipeline."""

    customer_id: int
    customer_name: str
    business_unit_id: int
    pipeline: str  # the business unit's pipeline setting (name or id)
    kind: str  # 'sales' | 'install'
    job: JobState
    job_ids: tuple[int, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.customer_name or f"ServiceTitan customer {self.customer_id}"

    def doc(self, stage: str, status: str) -> dict[str, Any]:
        """What is pushed; its hash decides whether anything changed."""
        return {
            "pipeline": self.pipeline,
            "stage": stage,
            "status": status,
            "value": str(self.job.value) if self.job.value is not None else None,
            "name": self.name,
            "technicians": self.job.technicians,
        }


def opportunity_wants(
    rows: Iterable[Mapping[str, Any]], kind_of: Callable[[str], str], names: Mapping[int, str]
) -> list[OpportunityWant]:
    """Group job rows (ordered oldest first) by (customer, pipeline) and pick the job that drives each;
    ``kind_of`` says whether a pipeline is a sales or an install pipeline."""
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["customer_id"], row["pipeline"]), []).append(row)
    wants = []
    for (customer_id, pipeline), jobs in groups.items():
        kind = kind_of(pipeline)
        states = [(job_state(j, kind), j) for j in jobs]
        # max() keeps the first of equals, so iterate newest first: latest job wins ties.
        best, row = max(reversed(states), key=lambda s: s[0].rank)
        wants.append(
            OpportunityWant(
                customer_id=customer_id,
                customer_name=names.get(customer_id, ""),
                business_unit_id=row["business_unit_id"],
                pipeline=pipeline,
                kind=kind,
                job=best,
                job_ids=tuple(j["job_id"] for j in jobs),
            )
        )
    return wants


def progress(stage: str, kind: str) -> int:
    """How far an opportunity has come, for "never backward": a lost estimate can still be won later, a sale
    is never lost again, and neither goes back to an earlier stage. -1 for a stage of another kind."""
    order = stage_order(kind)
    return order.index(stage) if stage in order else -1


def protect(
    desired_stage: str,
    desired_status: str,
    current_stage: str | None,
    current_status: str | None,
    kind: str,
    protected: Sequence[str],
) -> tuple[str, str]:
    """The stage/status to push: a protected current stage is never left for a less advanced one."""
    if not current_stage or current_stage not in protected:
        return desired_stage, desired_status
    if progress(desired_stage, kind) < progress(current_stage, kind):
        return current_stage, current_status or desired_status
    return desired_stage, desired_status


def webhook_payload(
    job: Mapping[str, Any], contact: Mapping[str, Any], state: JobState, bu_name: str
) -> dict[str, Any]:
    """The flat JSON posted to a webhook-trigger URL (no arrays: GHL cannot map them)."""
    payload = {
        "source": "stsync",
        "stJobId": job["job_id"],
        "jobNumber": job.get("job_number"),
        "jobStatus": job.get("job_status"),
        "businessUnitId": job["business_unit_id"],
        "businessUnit": bu_name,
        "stCustomerId": job["customer_id"],
        "stage": stages.SALES[state.stage],  # the default stage names, as these payloads always carried
        "status": state.status,
        "monetaryValue": float(state.value) if state.value is not None else None,
        "technicians": state.technicians,
        **contact,
    }
    return {k: v for k, v in payload.items() if v is not None}


def due(row: Mapping[str, Any] | None, digest: str, now: datetime) -> str | None:
    """Why an item must be pushed now ('new', 'changed', 'pending', 'retry'), or None."""
    if row is None:
        return "new"
    status = row["sync_status"]
    if status == "pending":
        return "pending"
    if status == "synced":
        return None if row["pushed_hash"] == digest else "changed"
    if row["attempted_hash"] != digest:
        return "changed"
    if status == "failed" and row["next_retry_at"] is not None and row["next_retry_at"] <= now:
        return "retry"
    return None


def backoff(attempts: int) -> str:
    """Wait before the next attempt after ``attempts`` failures: 2, 4, 8 … minutes, at most a day."""
    return f"{min(2 ** max(attempts, 1) * 60, 86400)} seconds"
