"""Determinism, persistence and realism of the sandbox world."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from stsync.sandbox import Sandbox, SandboxOptions, scale_totals
from stsync.sandbox.cache import _gen_chunk
from stsync.sandbox.world import BIG, World, counts_for


def _bytes(sb: Sandbox) -> bytes:
    return orjson.dumps(sb.world.dump(), option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS)


def test_same_seed_same_world_and_same_changes() -> None:
    """Two servers with the same seed dump byte-identical worlds, and advance identically."""
    with Sandbox.start(SandboxOptions(seed=5)) as a, Sandbox.start(SandboxOptions(seed=5)) as b:
        assert _bytes(a) == _bytes(b)
        sa, sb_ = a.advance(90), b.advance(90)
        assert sa == sb_
        assert _bytes(a) == _bytes(b)
    with Sandbox.start(SandboxOptions(seed=6)) as c:
        assert _bytes(c) != _bytes(a)


def test_state_dir_persists_changes_and_clock(tmp_path: Path) -> None:
    """With a state dir, advances survive a restart (the world is replayed deterministically)."""
    with Sandbox.start(SandboxOptions(state_dir=tmp_path)) as a:
        a.advance(120)
        a.advance(20, changes=False)
        before, now = _bytes(a), a.world.now
    with Sandbox.start(SandboxOptions(state_dir=tmp_path)) as b:
        assert _bytes(b) == before and b.world.now == now


def test_world_relations_and_distributions() -> None:
    """Relations hold (jobs -> locations -> customers, appointments -> jobs, ...); named BUs are used;
    estimates have all three statuses; merged customers point at a survivor."""
    with Sandbox.start() as sb:
        d = sb.world.dump()
    bus = {b["id"]: b["name"] for b in d["business_units"].values()}
    assert {
        1314: "Sales & Service",
        54670601: "Install",
        4622: "Pool",
        26143: "Plumbing",
    }.items() <= bus.items()
    assert {j["businessUnitId"] for j in d["jobs"].values()} >= {1314, 54670601, 4622, 26143}
    for j in d["jobs"].values():
        assert d["locations"][j["locationId"]]["customerId"] == j["customerId"]
        assert j["invoiceId"] in d["invoices"]
        assert all(e in d["estimates"] for e in j["estimateIds"])
    for a in d["appointments"].values():
        assert d["jobs"][a["jobId"]]["customerId"] == a["customerId"]
    for s in d["appointment_assignments"].values():
        assert s["appointmentId"] in d["appointments"] and s["technicianId"] in d["technicians"]
    for p in d["payments"].values():
        assert all(x["appliedTo"] in d["invoices"] for x in p["appliedTo"])
    for it in d["invoice_items"].values():
        assert it["invoiceId"] in d["invoices"]
    assert Counter(e["status"]["name"] for e in d["estimates"].values()).keys() == {
        "Open",
        "Sold",
        "Dismissed",
    }
    merged = [c for c in d["customers"].values() if c["mergedToId"]]
    assert merged and all(not c["active"] and c["mergedToId"] in d["customers"] for c in merged)
    assert isinstance(next(iter(d["invoices"].values()))["total"], str)  # accounting money is a string
    assert "customers:12" in d["custom_field_types"]


def test_scale_totals() -> None:
    """small is about 2k records, medium about 100k, large about 1M."""
    t = scale_totals()
    assert 1_500 < t["small"] < 2_500 and 80_000 < t["medium"] < 120_000 and 900_000 < t["large"] < 1_100_000
    assert sum(counts_for("large").values()) == t["large"]


def test_large_world_is_lazy() -> None:
    """A large world starts without generating records, and any slice can be served on demand."""
    w = World(42, "large")
    assert w.record_count() == scale_totals()["large"]
    rec = w.get("invoices", 99_999)
    assert rec["id"] == 90_099_999 and rec["job"]["id"] == 50_099_999


def test_advance_makes_realistic_changes() -> None:
    """An advance creates customers and jobs, progresses jobs, decides estimates, takes payments,
    deactivates records and merges a customer, all timestamped inside the window."""
    with Sandbox.start() as sb:
        s = sb.advance(240)
        d = sb.world.dump()
    assert {
        "customers",
        "jobs",
        "appointments",
        "appointment_assignments",
        "payments",
        "invoices",
        "estimates",
    } <= set(s["created"])
    assert s["updated"]
    for res, ids in {**s["updated"]}.items():
        for i in ids:
            assert s["from"] < d[res][i]["modifiedOn"] <= s["to"]
    assert any(c["mergedToId"] and c["modifiedOn"] > s["from"] for c in d["customers"].values())


def test_prewarmed_bytes_equal_inline_bytes() -> None:
    """The worker-built cache serves exactly the bytes inline generation would (small world: one chunk)."""
    w = World(9, "small")
    for res in BIG:
        if res == "invoice_items":
            continue
        chunks = _gen_chunk(9, "small", res, 0)
        for (name, _c), raws in chunks.items():
            assert raws == [w.raw(name, i) for i in range(w.n[name])], name
