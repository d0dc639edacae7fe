"""Opportunities, pipelines and custom-field definitions endpoints."""

from __future__ import annotations

from typing import Any

from stsync.sandbox.ghl.contacts import Ctx, Result
from stsync.sandbox.ghl.store import GhlError, Store, bad_request, unprocessable

_SEARCH_STATUS = ("open", "won", "lost", "abandoned", "all")


def pipelines(store: Store, ctx: Ctx) -> Result:
    loc = ctx.query_location()
    return 200, {"pipelines": store.pipelines[loc]}


def _stage(store: Store, loc: str, pipeline_id: str, stage_id: str | None) -> str:
    p = store.pipeline(loc, pipeline_id)
    if stage_id is None:
        return str(p["stages"][0]["id"])
    if stage_id not in {s["id"] for s in p["stages"]}:
        raise bad_request(f"Pipeline stage with id {stage_id} not found in pipeline {pipeline_id}")
    return stage_id


def _custom(store: Store, loc: str, o: dict[str, Any], items: list[dict[str, Any]] | None) -> None:
    values = store.custom_values(loc, "opportunity", items)
    if values:
        merged = {f["id"]: f["fieldValue"] for f in o["customFields"]} | values
        o["customFields"] = [{"id": k, "fieldValue": v} for k, v in merged.items()]


def create(store: Store, ctx: Ctx) -> Result:
    body = ctx.body_of("opportunities", "CreateDto")
    loc = ctx.location
    store.contact(loc, body["contactId"])
    stage = _stage(store, loc, body["pipelineId"], body.get("pipelineStageId"))
    if not store.opts.allow_multiple_opportunities:
        for existing in store.opportunities.values():
            if existing["contactId"] == body["contactId"] and existing["pipelineId"] == body["pipelineId"]:
                raise GhlError(
                    400,
                    {
                        "statusCode": 400,
                        "message": "Can not create duplicate opportunity for the contact.",
                        "code": "OPPORTUNITY_NO_DUPLICATE",
                        "meta": {"existingId": existing["id"]},
                        "error": "Bad Request",
                    },
                )
    o = store.create_opportunity(loc, body, stage)
    _custom(store, loc, o, body.get("customFields"))
    return 201, {"opportunity": store.serve_opportunity(o)}


def get(store: Store, ctx: Ctx) -> Result:
    return 200, {"opportunity": store.serve_opportunity(store.opportunity(ctx.location, ctx.params["id"]))}


def update(store: Store, ctx: Ctx) -> Result:
    o = store.opportunity(ctx.location, ctx.params["id"])
    body = ctx.body_of("opportunities", "UpdateOpportunityDto")
    now = store.now()
    pipeline_id = body.get("pipelineId", o["pipelineId"])
    if "pipelineId" in body or "pipelineStageId" in body:
        if "pipelineStageId" in body:
            want = body["pipelineStageId"]
        else:  # same pipeline keeps its stage; a new pipeline starts at its first stage
            want = o["pipelineStageId"] if pipeline_id == o["pipelineId"] else None
        stage = _stage(store, ctx.location, pipeline_id, want)
        if stage != o["pipelineStageId"] or pipeline_id != o["pipelineId"]:
            o["lastStageChangeAt"] = now
        o["pipelineId"], o["pipelineStageId"] = pipeline_id, stage
    if "status" in body and body["status"] != o["status"]:
        o["status"], o["lastStatusChangeAt"] = body["status"], now
    for k in ("name", "monetaryValue", "assignedTo"):
        if k in body:
            o[k] = body[k]
    _custom(store, ctx.location, o, body.get("customFields"))
    o["updatedAt"] = o["lastActionDate"] = now
    return 200, {"opportunity": store.serve_opportunity(o)}


def update_status(store: Store, ctx: Ctx) -> Result:
    o = store.opportunity(ctx.location, ctx.params["id"])
    body = ctx.body_of("opportunities", "UpdateStatusDto")
    now = store.now()
    if body["status"] != o["status"]:
        o["status"], o["lastStatusChangeAt"] = body["status"], now
    if body.get("lostReasonId"):
        o["lostReasonId"] = body["lostReasonId"]
    o["updatedAt"] = o["lastActionDate"] = now
    return 200, {"succeded": True}


def delete(store: Store, ctx: Ctx) -> Result:
    o = store.opportunity(ctx.location, ctx.params["id"])
    del store.opportunities[o["id"]]
    return 200, {"succeded": True}


def search(store: Store, ctx: Ctx) -> Result:
    """``GET /opportunities/search``: snake_case filters, ``limit`` (<= 100) with ``page`` or ``startAfterId``."""
    loc = ctx.query_location("location_id")
    q = ctx.query
    status = q.get("status")
    if status and status not in _SEARCH_STATUS:
        raise unprocessable([f"status must be one of the following values: {', '.join(_SEARCH_STATUS)}"])
    limit = ctx.int_query("limit", 20, 100)
    page = ctx.int_query("page", 1, 10**6)
    filters = {
        "pipelineId": q.get("pipeline_id"),
        "pipelineStageId": q.get("pipeline_stage_id"),
        "contactId": q.get("contact_id"),
        "assignedTo": q.get("assigned_to"),
        "id": q.get("id"),
        "status": status if status != "all" else None,
    }
    rows = [
        o
        for o in store.opportunities.values()
        if o["locationId"] == loc and all(v is None or o.get(k) == v for k, v in filters.items())
    ]
    if text := q.get("q"):
        rows = [o for o in rows if text.lower() in o["name"].lower()]
    total = len(rows)
    if after_id := q.get("startAfterId"):
        ids = [o["id"] for o in rows]
        rows = rows[ids.index(after_id) + 1 :] if after_id in ids else []
        page = 1
    start = (page - 1) * limit
    chunk = rows[start : start + limit]
    meta: dict[str, Any] = {"total": total, "currentPage": page}
    if page > 1:
        meta["prevPage"] = page - 1
    if start + limit < len(rows) and chunk:
        meta |= {"nextPage": page + 1, "startAfterId": chunk[-1]["id"], "startAfter": store.now_ms()}
        meta["nextPageUrl"] = f"/opportunities/search?location_id={loc}&limit={limit}&startAfterId={chunk[-1]['id']}"
    return 200, {"opportunities": [store.serve_opportunity(o) for o in chunk], "meta": meta, "aggregations": {}}


def custom_fields(store: Store, ctx: Ctx) -> Result:
    """``GET /locations/{locationId}/customFields?model=contact|opportunity|all`` (default: all)."""
    loc = ctx.params["locationId"]
    ctx.same_location(loc)
    model = ctx.query.get("model") or "all"
    if model not in ("contact", "opportunity", "all"):
        raise unprocessable(["model must be one of the following values: contact, opportunity, all"])
    fields = [f for f in store.custom_fields[loc] if model in ("all", f["model"])]
    return 200, {"customFields": fields}


def custom_field(store: Store, ctx: Ctx) -> Result:
    loc = ctx.params["locationId"]
    ctx.same_location(loc)
    for f in store.custom_fields[loc]:
        if f["id"] == ctx.params["id"]:
            return 200, {"customField": f}
    raise bad_request(f"Custom field with id {ctx.params['id']} not found")
