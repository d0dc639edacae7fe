"""Every request the GHL client sends validates against the official OpenAPI request schema (unedited
copies in stsync/sandbox/ghl/specs/), checked here with openapi-schema-validator rather than the
sandbox's own validator; and the sandbox does reject an invalid body with 422."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openapi_schema_validator import OAS30Validator

from stsync.ghl.client import GhlRequestError
from stsync.ghl.service import make_client, pull, push
from stsync.sandbox.ghl.specs import load
from tests.ghl.conftest import config_at, write_config

SPECS = ("contacts", "opportunities", "locations", "custom-fields")


def operations() -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    """(method, path regex, spec name, operation) of every operation in the official files."""
    out = []
    for spec in SPECS:
        for path, ops in load(spec)["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path.rstrip("/")) + "/?$")
            for method, op in ops.items():
                out.append((method.upper(), pattern, spec, op))
    # literal paths first, so /contacts/upsert is not taken for /contacts/{contactId}
    return sorted(out, key=lambda o: o[1].pattern.count("[^/]+"))


def resolve(spec: str, s: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in s:
        s = load(spec)["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
    return s


def unknown_fields(spec: str, value: Any, s: dict[str, Any], path: str = "") -> list[str]:
    """Keys outside the schema's properties (what the real API answers 422 'should not exist' for)."""
    s = resolve(spec, s)
    if "anyOf" in s:
        trials = [unknown_fields(spec, value, alt, path) for alt in s["anyOf"]]
        return min(trials, key=len)
    if isinstance(value, list) and "items" in s:
        return [e for i, v in enumerate(value) for e in unknown_fields(spec, v, s["items"], f"{path}.{i}")]
    # An empty `properties` is the spec saying nothing (SearchBodyV2DTO: its body is documented only on
    # an external page, see ghl-api.md §2.1), not "no property allowed".
    if isinstance(value, dict) and s.get("properties"):
        bad = [f"{path}.{k}" for k in value if k not in s["properties"]]
        return bad + [
            e
            for k, v in value.items()
            if k in s["properties"]
            for e in unknown_fields(spec, v, s["properties"][k], f"{path}.{k}")
        ]
    return []


def problems(request: dict[str, Any]) -> list[str]:
    for method, pattern, spec, op in operations():
        if method != request["method"] or not pattern.match(request["path"]):
            continue
        out = []
        params = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
        out += [f"query {k} not in the spec" for k in request["query"] if k not in params]
        out += [f"query {k} missing" for k, p in params.items() if p.get("required") and k not in request["query"]]
        body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body_schema is None:
            return out + (["body sent to an operation without one"] if request["body"] is not None else [])
        doc = load(spec)
        validator = OAS30Validator({**body_schema, "components": doc["components"]})
        out += [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(request["body"])]
        out += [f"{k} should not exist" for k in unknown_fields(spec, request["body"], body_schema)]
        return out
    return ["no such operation in the official spec"]


def template(request: dict[str, Any]) -> str:
    for method, pattern, _, _ in operations():
        if method == request["method"] and pattern.match(request["path"]):
            return f"{method} {pattern.pattern}"
    return "?"


def test_every_request_of_pull_and_push_matches_the_official_request_schema(
    mirror_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    """Pull, a first push (creates), then a push of changed customers and estimates (updates, status
    changes, contacts without email or phone): no request outside the official request schemas, and
    no request rejected by the sandbox."""
    path = write_config(tmp_path, mirror_dsn, ghl.url, protected_stages=[])
    config = config_at(path)
    with psycopg.connect(mirror_dsn) as conn:  # one contact already in GHL, so the pull links something
        email = conn.execute(
            "SELECT value FROM servicetitan.st_customer_contacts WHERE type = 'Email' ORDER BY st_id LIMIT 1"
        ).fetchone()[0]

    async def scenario() -> None:
        async with make_client(config) as client:
            await client.upsert({"email": email, "firstName": "Existing"})
        await pull(config)
        assert int((await push(config)).exit_code) == 0
        with psycopg.connect(mirror_dsn) as conn:
            conn.execute("UPDATE servicetitan.st_customers SET last_synced_at = now(), name = name || ' Jr'")
            conn.execute(
                "UPDATE servicetitan.st_estimates SET last_synced_at = now(), status = CASE status WHEN 'Sold' THEN 'Open' "
                "WHEN 'Open' THEN 'Dismissed' ELSE 'Sold' END"
            )
        assert int((await push(config)).exit_code) == 0

    asyncio.run(scenario())
    api = [r for r in ghl.requests if not r["path"].startswith("/hooks/")]
    assert [r for r in api if r["status"] >= 400] == []
    bad = {f"{r['method']} {r['path']}": p for r in api if (p := problems(r))}
    assert bad == {}
    covered = {template(r) for r in api}
    for needed in (
        "POST ^/contacts/upsert/?$",
        "PUT ^/contacts/[^/]+/?$",
        "POST ^/contacts/search/?$",
        "POST ^/opportunities/?$",
        "PUT ^/opportunities/[^/]+/?$",
        "GET ^/opportunities/search/?$",
        "GET ^/opportunities/pipelines/?$",
        "GET ^/locations/[^/]+/customFields/?$",
    ):
        assert needed in covered, (needed, sorted(covered))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c.upsert({"email": "a@example.com", "favouriteColour": "red"}),
            "property favouriteColour should not exist",
        ),
        (lambda c: c.upsert({"email": "a@example.com", "firstName": 7}), "firstName must be a string"),
        (
            lambda c: c.create_opportunity({"pipelineId": "p", "status": "open", "contactId": "c"}),
            "name should not be empty",
        ),
        (
            lambda c: c.create_opportunity({"pipelineId": "p", "name": "n", "status": "all", "contactId": "c"}),
            "status must be one of",
        ),
    ],
)
def test_the_sandbox_rejects_an_invalid_body_with_422(ghl: Any, tmp_path: Path, call: Any, message: str) -> None:
    """A body outside the request DTO is refused as the real API does: 422 naming the property."""
    config = config_at(write_config(tmp_path, "postgresql://unused@127.0.0.1/x", ghl.url))

    async def run() -> GhlRequestError:
        async with make_client(config) as client:
            with pytest.raises(GhlRequestError) as info:
                await call(client)
            return info.value

    err = asyncio.run(run())
    assert err.status == 422
    assert any(message in m for m in err.body["message"]), err.body
