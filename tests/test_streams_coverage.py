"""Every export feed in the committed ServiceTitan specs is a declared stream or listed, with its reason, as not
mirrored; and nothing is declared or listed that the specs do not publish."""

from __future__ import annotations

import json
from importlib import resources

from stsync.sync.streams import NOT_MIRRORED, STREAMS

SPECS = resources.files("stsync.sandbox") / "specs" / "servicetitan"


def _module(spec: dict[str, object], filename: str) -> str:
    """The module a spec serves: the path segment before /v2 of its server URL (telecom's names only a host)."""
    url = str(spec["servers"][0]["url"])  # type: ignore[index]
    parts = url.rstrip("/").split("/")
    return parts[-2] if len(parts) > 4 and parts[-1] == "v2" else filename.removesuffix(".json").removesuffix("-v2")


def _published() -> set[tuple[str, str]]:
    feeds = set()
    for entry in SPECS.iterdir():
        if not entry.name.endswith(".json"):
            continue
        spec = json.loads(entry.read_text(encoding="utf-8"))
        module = _module(spec, entry.name)
        for path, operations in spec["paths"].items():
            tail = path.split("/tenant/{tenant}/", 1)[-1]
            if "get" in operations and "export" in tail.split("/"):
                feeds.add((module, tail))
    return feeds


def test_every_published_export_feed_is_mirrored_or_left_out_with_a_reason() -> None:
    published = _published()
    declared = {(s.module, s.export_path) for s in STREAMS if s.export_path is not None}
    assert len(published) == 55  # 54 feeds, and the estimates' legacy path
    assert sorted(published - declared - set(NOT_MIRRORED)) == []  # a feed nobody decided about
    assert sorted(declared - published) == []  # a stream reading a path the specs do not publish
    assert sorted(set(NOT_MIRRORED) - published) == []
    assert sorted(declared & set(NOT_MIRRORED)) == []
    assert all(reason.strip() for reason in NOT_MIRRORED.values())
