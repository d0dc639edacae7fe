"""Crashes: `stsync ghl push` killed with SIGKILL at many points, then rerun until done, never duplicates
a contact or an opportunity, and ends in the same GHL state as a clean run (modulo ids and timestamps).

Kill points are counted in GHL requests the sandbox has seen from the running push; a small latency
fault on every GHL call makes a push last long enough to be caught between any two requests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stsync.sandbox.ghl import GhlSandbox
from tests.e2e.harness import STSYNC, wait_for
from tests.ghl.conftest import ghl_options, write_config
from tests.ghl.scenario import duplicates, env_for, normalized, push_json, rows, write_requests
from tests.ghl.test_request_budget import ONE_CHANGE

LATENCY = {"latency": {"ms": 3}}


@pytest.fixture
def sandboxes() -> Iterator[Callable[..., GhlSandbox]]:
    started: list[GhlSandbox] = []

    def start(**kw: Any) -> GhlSandbox:
        g = GhlSandbox.start(ghl_options(**kw))
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


def clean_run(dsn: str, g: GhlSandbox, tmp_path: Path) -> dict[str, Any]:
    env = env_for("http://127.0.0.1:9", dsn, write_config(tmp_path, dsn, g.url))
    code, doc = push_json(env)
    assert code == 0, doc
    return normalized(g.dump())


def kill_at(env: dict[str, str], g: GhlSandbox, after: int, *args: str) -> bool:
    """Start a push and SIGKILL it once the sandbox has seen `after` more requests; False if it finished first."""
    base = len(g.requests)
    proc = subprocess.Popen([STSYNC, "ghl", "push", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(g.requests) >= base + after or proc.poll() is not None, 120, f"{after} requests")
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            return False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()


def crash_until_done(dsn: str, g: GhlSandbox, tmp_path: Path, points: list[int]) -> int:
    """Kill a push at each point (requests into that run), then finish it; the number of kills that hit."""
    env = env_for("http://127.0.0.1:9", dsn, write_config(tmp_path, dsn, g.url))
    hits = sum(kill_at(env, g, n) for n in points)
    assert duplicates(g.dump()) == []
    # The day's request count survives the kills: each killed run loses at most its change in progress.
    counted = rows(dsn, "SELECT coalesce(sum(requests), 0) FROM integrations.ghl_daily_requests")[0][0]
    api = len([r for r in g.requests if not r["path"].startswith("/hooks/")])
    assert api - ONE_CHANGE * hits <= counted <= api
    code, doc = push_json(env)
    assert code == 0, doc
    g.clear_requests()
    code, doc = push_json(env)
    assert code == 0 and write_requests(g.requests) == [], doc
    return hits


@pytest.mark.parametrize("multiple", [False, True], ids=["one-opportunity-per-pipeline", "duplicates-allowed"])
def test_sigkill_at_ten_points_then_rerun_equals_a_clean_run(
    multiple: bool, mirror_copies: Callable[[], str], sandboxes: Callable[..., GhlSandbox], tmp_path: Path
) -> None:
    """Ten kills in a row, each some requests into a new run (the first inside the pipeline/field lookups,
    then through contacts and opportunities), then a run to the end: no duplicates, same state as clean. Where
    the location allows several opportunities per contact and pipeline, GHL's OPPORTUNITY_NO_DUPLICATE does not
    save a create killed before its bookkeeping: the committed claim (create_started_at) must."""
    want = clean_run(mirror_copies(), sandboxes(allow_multiple_opportunities=multiple), tmp_path)
    g = sandboxes(faults=LATENCY, allow_multiple_opportunities=multiple)
    hits = crash_until_done(mirror_copies(), g, tmp_path, [1, 2, 4, 8, 12, 16, 20, 24, 16, 12])
    assert hits == 10
    assert normalized(g.dump()) == want


def test_sigkill_at_five_random_points_of_runs_capped_by_max_requests(
    mirror_copies: Callable[[], str], sandboxes: Callable[..., GhlSandbox], tmp_path: Path
) -> None:
    """A first push spread over runs of --max-requests 30, five of them killed at a random request, then run
    on until nothing remains: no duplicates, the same state as one clean run."""
    seed = random.randrange(1 << 32)
    # Every run could make 30 requests; the five together stay short of a whole push (about 120 requests).
    points = sorted(random.Random(seed).sample(range(1, 26), 5))
    want = clean_run(mirror_copies(), sandboxes(), tmp_path)
    g = sandboxes(faults=LATENCY)
    dsn = mirror_copies()
    env = env_for("http://127.0.0.1:9", dsn, write_config(tmp_path, dsn, g.url))
    assert [kill_at(env, g, n, "--max-requests", "30") for n in points] == [True] * 5, f"seed {seed}"
    for _ in range(30):
        code, doc = push_json(env, "--max-requests", "30")
        assert code == 0, (seed, doc)
        if not doc["stopped"]:
            break
    assert not doc["stopped"], f"seed {seed}: still {doc['remaining']} changes left"
    assert duplicates(g.dump()) == [], f"seed {seed}"
    g.clear_requests()
    code, doc = push_json(env)
    assert code == 0 and write_requests(g.requests) == [], (seed, doc)
    assert normalized(g.dump()) == want, f"seed {seed}"


@pytest.mark.slow
@pytest.mark.parametrize("point", [2, 10, 30, 55, 80, 110, 140, 170, 210, 250])
def test_one_sigkill_then_rerun_equals_a_clean_run(
    point: int, mirror_copies: Callable[[], str], sandboxes: Callable[..., GhlSandbox], tmp_path: Path
) -> None:
    """One kill at each of ten points spread over a whole first push, each on a fresh mirror and GHL."""
    want = clean_run(mirror_copies(), sandboxes(), tmp_path)
    g = sandboxes(faults=LATENCY)
    crash_until_done(mirror_copies(), g, tmp_path, [point])
    assert normalized(g.dump()) == want
