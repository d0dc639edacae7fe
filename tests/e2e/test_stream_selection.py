"""Choosing streams: sync.streams_include and sync.streams_exclude, and a stream enabled later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli, sync_json


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=7)) as sb:
        yield sb


def _fetched(doc: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["fetched"] for s in doc["streams"]}


def test_a_stream_enabled_later_is_read_whole_and_nothing_else_again(sandbox: Any, db_dsn: str) -> None:
    include = {"STSYNC_SYNC__STREAMS_INCLUDE": "customers,locations,jobs", "STSYNC_SYNC__STREAMS_EXCLUDE": "jobs"}
    env = cli_env(sandbox.url, db_dsn, **include)
    code, first = sync_json(["full"], env)
    assert code == 0 and set(_fetched(first)) == {"customers", "locations"}
    listed = {r["stream"]: r["enabled"] for r in json.loads(run_cli(["streams", "list", "--json"], env).stdout)}
    assert {n for n, on in listed.items() if on} == {"customers", "locations"}

    code, quiet = sync_json(["incremental"], env)  # what a run with nothing new fetches
    assert code == 0
    env["STSYNC_SYNC__STREAMS_EXCLUDE"] = ""  # jobs enabled
    code, later = sync_json(["incremental"], env)
    assert code == 0
    fetched = _fetched(later)
    assert fetched["jobs"] == len(sandbox.world.dump()["jobs"])  # its first walk: the whole feed
    assert {n: fetched[n] for n in ("customers", "locations")} == _fetched(quiet)  # nothing else read again


def test_an_unknown_name_in_either_list_is_a_config_error(sandbox: Any, db_dsn: str) -> None:
    for key in ("STSYNC_SYNC__STREAMS_INCLUDE", "STSYNC_SYNC__STREAMS_EXCLUDE"):
        proc = run_cli(["sync", "incremental"], cli_env(sandbox.url, db_dsn, **{key: "customers,jbos"}))
        name = key.removeprefix("STSYNC_SYNC__").lower()
        assert proc.returncode == 78, proc.stderr
        assert f"bad value for 'sync.{name}': unknown stream 'jbos'" in proc.stderr
