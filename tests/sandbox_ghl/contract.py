"""Response-schema lookup in the official specs, with the sandbox's listed deviations applied."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS30Validator

from stsync.sandbox.ghl import specs


def _inline(spec: str, node: Any, depth: int = 0) -> Any:
    if depth > 40:
        return {}  # recursive schemas: deep enough for every body the sandbox serves
    if isinstance(node, dict):
        if "$ref" in node:
            file, _, frag = node["$ref"].partition("#")
            target = "common" if file.endswith("common-schemas.json") else spec
            name = frag.rsplit("/", 1)[-1]
            return _inline(target, specs.schema(target, name, specs.RESPONSE_PATCHES), depth + 1)
        return {k: _inline(spec, v, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(spec, v, depth) for v in node]
    return node


def response_schema(spec: str, path: str, method: str, status: int) -> dict[str, Any]:
    op = specs.load(spec)["paths"][path][method.lower()]
    raw = op["responses"][str(status)]["content"]["application/json"]["schema"]
    return _inline(spec, raw)


def assert_matches(spec: str, path: str, method: str, status: int, body: Any) -> None:
    """`body` validates against the spec's response schema for (path, method, status)."""
    OAS30Validator(response_schema(spec, path, method, status)).validate(body)
