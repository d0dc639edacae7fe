"""Every served body validates against the official OpenAPI schema of its endpoint (plus deviations.py)."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import pytest
from deviations import (
    EXTRA_FIELDS,
    NULLABLE_DESPITE_SPEC,
    TIMESTAMP_7_DIGITS,
    TIMESTAMP_ZONELESS,
    ZONELESS_FIELDS,
)
from openapi_schema_validator import OAS30Validator
from sbhelpers import EXPORT_ENDPOINTS, LIST_ENDPOINTS, Api, export_params, list_params, prefix

from tests.sandbox_creds import APP_KEY, TENANT

# The official ServiceTitan specs, copied byte-identical into the package (see stsync/sandbox/resources.py).
SPECS = resources.files("stsync.sandbox") / "specs" / "servicetitan"
SPEC_FILE = {
    "crm": "crm-v2.json",
    "jpm": "jpm-v2.json",
    "dispatch": "dispatch-v2.json",
    "sales": "salestech-v2.json",
    "accounting": "accounting-v2.json",
    "equipmentsystems": "equipment-systems-v2.json",
    "settings": "settings-v2.json",
    "marketing": "marketing-v2.json",
    "jbce": "jbce-v2.json",
    "pricebook": "pricebook-v2.json",
    "memberships": "memberships-v2.json",
    "timesheets": "timesheets-v2.json",
    "payroll": "payroll-v2.json",
}


def _nullable_compositions(node: Any) -> Any:
    """OAS 3.0 `nullable: true` next to `oneOf`/`allOf` means the property may be null; the validator only
    honours `nullable` next to `type`, so spell it out (a reading of the spec, not a deviation)."""
    if isinstance(node, dict):
        node = {k: _nullable_compositions(v) for k, v in node.items()}
        if node.get("nullable") and "type" not in node and ("oneOf" in node or "allOf" in node):
            inner = {k: v for k, v in node.items() if k != "nullable"}
            return {"anyOf": [inner, {"enum": [None]}]}
        return node
    if isinstance(node, list):
        return [_nullable_compositions(v) for v in node]
    return node


@cache
def _spec(module: str) -> dict[str, Any]:
    spec = json.loads((SPECS / SPEC_FILE[module]).read_text())
    spec["components"] = _nullable_compositions(spec["components"])
    schemas = spec["components"]["schemas"]
    for name, fields in NULLABLE_DESPITE_SPEC.items():
        if name in schemas:
            props = schemas[name]["properties"]
            for f in fields:
                props[f] = {"anyOf": [copy.deepcopy(props[f]), {"enum": [None]}]}
    for name, fields in EXTRA_FIELDS.items():
        if name in schemas:
            for f in fields:
                schemas[name]["properties"][f] = {}
    return spec


def _validator(module: str, path: str, status: str) -> OAS30Validator:
    spec = _spec(module)
    rel = path.split(f"/tenant/{TENANT}", 1)[1]
    op = spec["paths"][f"/tenant/{{tenant}}{rel}"]["get"]
    schema = op["responses"][status]["content"]["application/json"]["schema"]
    return OAS30Validator({**schema, "components": spec["components"]})


def _check_timestamps(node: Any, key: str = "") -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _check_timestamps(v, k)
    elif isinstance(node, list):
        for v in node:
            _check_timestamps(v, key)
    elif isinstance(node, str) and len(node) >= 19 and node[4] == "-" and node[10:11] == "T":
        ok = TIMESTAMP_7_DIGITS.match(node) or (key in ZONELESS_FIELDS and TIMESTAMP_ZONELESS.match(node))
        assert ok, f"{key}={node!r} has an unexpected timestamp shape"


def _validate(module: str, path: str, body: dict[str, Any], status: str = "200") -> None:
    errors = sorted(_validator(module, path, status).iter_errors(body), key=str)
    assert not errors, f"{path}: {len(errors)} schema errors, first: {errors[0].message} at {list(errors[0].path)}"
    _check_timestamps(body)


@pytest.mark.parametrize(("res", "path"), LIST_ENDPOINTS, ids=[p for _, p in LIST_ENDPOINTS])
def test_list_bodies_match_spec(shared: Any, res: Any, path: str) -> None:
    """Every record of every list endpoint, and its envelope, validates against the endpoint's schema."""
    api = Api(shared)
    rows, _ = api.walk_list(path, pageSize=500, **list_params(res))
    assert rows
    _validate(
        res.module,
        path,
        {"page": 1, "pageSize": len(rows), "hasMore": False, "totalCount": None, "data": rows},
    )
    r = api.get(path, pageSize=3, **list_params(res))
    _validate(res.module, path, r.json())


@pytest.mark.parametrize(("res", "path"), EXPORT_ENDPOINTS, ids=[p for _, p in EXPORT_ENDPOINTS])
def test_export_bodies_match_spec(shared: Any, res: Any, path: str) -> None:
    """Every record of every export feed, and its envelope, validates against the endpoint's schema."""
    api = Api(shared)
    rows, token, _ = api.walk_export(path, **export_params(res))
    assert rows
    _validate(res.module, path, {"hasMore": False, "continueFrom": token, "data": rows})
    _validate(res.module, path, api.get(path, **export_params(res)).json())


def test_changed_records_still_match_spec(fresh: Any) -> None:
    """Records created or changed by advance validate too (new jobs, invoices with items, merges...)."""
    api = Api(fresh)
    fresh.advance(minutes=240)
    fresh.advance(minutes=30, changes=False)
    for res, path in EXPORT_ENDPOINTS:
        rows, token, _ = api.walk_export(path, start="2026-06-01T12:00:00Z", **export_params(res))
        _validate(res.module, path, {"hasMore": False, "continueFrom": token, "data": rows})


@pytest.mark.parametrize(
    "query",
    [
        {"pageSize": "6000"},
        {"page": "0"},
        {"active": "Maybe"},
        {"ids": ",".join(str(i) for i in range(60))},
        {"sort": "+Color"},
        {"modifiedOnOrAfter": "yesterday"},
    ],
)
def test_list_validation_errors_are_api_error_responses(shared: Any, query: dict[str, str]) -> None:
    """Bad list parameters give 400 with the ApiErrorResponse envelope the spec declares."""
    api = Api(shared)
    path = f"{prefix('crm')}/customers"
    r = api.get(path, **query)
    assert r.status_code == 400
    _validate("crm", path, r.json(), "400")
    assert r.json()["errors"]


@pytest.mark.parametrize("token", ["garbage!!", "djE6am9iczoxMDox", "2026-13-45"])
def test_export_bad_from_is_400(shared: Any, token: str) -> None:
    """A malformed or foreign continuation token (or an impossible date) is a 400 ApiErrorResponse."""
    api = Api(shared)
    path = f"{prefix('crm')}/export/customers"
    r = api.get(path, **{"from": token})
    assert r.status_code == 400
    _validate("crm", path, r.json(), "400")


def test_auth_and_routing_errors_use_the_envelope(shared: Any) -> None:
    """401/403/404 bodies carry the same ApiErrorResponse envelope."""
    api = Api(shared)
    path = f"{prefix('crm')}/customers"
    for r in (
        api.http.get(path, headers={"ST-App-Key": APP_KEY}),
        api.http.get(path, headers={**api.headers, "ST-App-Key": "wrong"}),
        api.get(f"{prefix('crm')}/nope"),
    ):
        assert r.status_code in (401, 403, 404)
        _validate("crm", path, r.json(), "400")  # same schema as the declared 400/404 bodies
