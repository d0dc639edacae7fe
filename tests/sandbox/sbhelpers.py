"""Helpers for the sandbox tests: a minimal authenticated client and the endpoint lists."""

from __future__ import annotations

from typing import Any

import httpx

from stsync.sandbox import Sandbox
from stsync.sandbox.resources import TABLE
from tests.sandbox_creds import APP_KEY, TENANT, token_form

BATCH = 37


def prefix(module: str, tenant: int = TENANT) -> str:
    return f"/{module}/v2/tenant/{tenant}"


class Api:
    """A minimal authenticated client: the contract, not the mirror's client."""

    def __init__(self, sb: Sandbox, transport: bool = False) -> None:
        self.sb = sb
        self.http = httpx.Client(base_url=sb.url, transport=sb.transport() if transport else None, timeout=10)
        self.token = self.new_token()

    def new_token(self) -> str:
        r = self.http.post("/connect/token", data=token_form())
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "ST-App-Key": APP_KEY}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers)

    def walk_export(self, path: str, start: str | None = None, **params: Any) -> tuple[list[dict], str, int]:
        """Follow a feed until hasMore is false: (records, last continueFrom, calls)."""
        out: list[dict] = []
        token = start
        calls = 0
        while True:
            q = dict(params)
            if token is not None:
                q["from"] = token
            r = self.get(path, **q)
            assert r.status_code == 200, r.text
            body = r.json()
            calls += 1
            out += body["data"]
            token = body["continueFrom"]
            if not body["hasMore"]:
                return out, token, calls
            assert calls < 10_000

    def walk_list(self, path: str, **params: Any) -> tuple[list[dict], int | None]:
        out: list[dict] = []
        page = 1
        total = None
        while True:
            r = self.get(path, page=page, includeTotal="true", **params)
            assert r.status_code == 200, r.text
            body = r.json()
            total = body["totalCount"]
            out += body["data"]
            if not body["hasMore"]:
                return out, total
            page += 1


def list_params(res: Any) -> dict[str, str]:
    """Parameters that make a list endpoint return everything it can."""
    q: dict[str, str] = {}
    if res.active_param == "active":
        q["active"] = "Any"
    elif res.active_param == "activeState":
        q["activeState"] = "All"
    if res.requires_one_of:
        q["modifiedOnOrAfter"] = "2000-01-01"
    return q


def export_params(res: Any) -> dict[str, str]:
    return {"active": "Any"} if res.export_active_default != "n/a" else {}


LIST_ENDPOINTS = [(r, f"{prefix(r.module)}/{r.list_path}") for r in TABLE if r.list_path]
EXPORT_ENDPOINTS = [(r, f"{prefix(r.module)}/{p}") for r in TABLE for p in r.export_paths]
