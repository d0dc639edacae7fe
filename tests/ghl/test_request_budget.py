"""`ghl push --max-requests N` and `ghl.daily_request_budget`: a run stops cleanly (exit 0) before its next
change once the budget is reached, says what is left, and the next run goes on with no duplicate, ending
where one uninterrupted push ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stsync.config import GhlConfig
from stsync.sandbox.ghl import GhlSandbox
from tests.ghl.conftest import ghl_options, write_config
from tests.ghl.scenario import cli, duplicates, env_for, normalized, push_json, rows

BUDGET = 30
ONE_CHANGE = 6  # the most requests one change makes (lookups, create, update, custom fields)
PER_RUN = 3  # reads each run makes once: the pipelines and the contact and opportunity custom fields
IN_FLIGHT = GhlConfig().concurrency  # changes in flight when the cap is reached, each of which completes


def test_max_requests_stops_cleanly_and_the_next_runs_go_on(mirror_copies: Callable[[], str], tmp_path: Path) -> None:
    with GhlSandbox.start(ghl_options()) as clean:
        dsn = mirror_copies()
        code, whole = push_json(env_for("http://127.0.0.1:9", dsn, write_config(tmp_path, dsn, clean.url)))
        assert code == 0, whole
        want = normalized(clean.dump())
    assert whole["requests"] > 3 * BUDGET

    with GhlSandbox.start(ghl_options()) as ghl:
        dsn = mirror_copies()
        env = env_for("http://127.0.0.1:9", dsn, write_config(tmp_path, dsn, ghl.url))
        runs, total, left = 0, 0, whole["planned_total"]
        while True:
            code, doc = push_json(env, "--max-requests", str(BUDGET))
            assert code == 0, doc
            runs += 1
            total += doc["requests"]
            assert doc["requests"] <= BUDGET + IN_FLIGHT * ONE_CHANGE
            assert duplicates(ghl.dump()) == []
            if doc["stopped"] is None:
                break
            assert doc["stopped"] == f"--max-requests {BUDGET} reached"
            assert 0 < doc["remaining"] < left  # each run got somewhere
            left = doc["remaining"]
        assert runs > 3
        assert normalized(ghl.dump()) == want
        line = cli(["ghl", "push", "--max-requests", "1"], env).stdout  # nothing left: no stop, no request
        assert "nothing to push" in line and "stopped" not in line
    # Spreading the push costs only each further run's own reads: nothing is sent twice.
    assert whole["requests"] <= total <= whole["requests"] + PER_RUN * (runs - 1)


def test_the_daily_budget_spans_runs_and_a_spent_one_sends_nothing(mirror_dsn: str, tmp_path: Path) -> None:
    with GhlSandbox.start(ghl_options()) as ghl:
        env = env_for(
            "http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, daily_request_budget=BUDGET)
        )
        code, first = push_json(env)
        assert code == 0 and first["stopped"] and f"ghl.daily_request_budget ({BUDGET}) reached" in first["stopped"], (
            first
        )
        assert BUDGET <= first["requests"] <= BUDGET + IN_FLIGHT * ONE_CHANGE
        assert rows(mirror_dsn, "SELECT sum(requests) FROM integrations.ghl_daily_requests") == [(first["requests"],)]
        ghl.clear_requests()
        code, second = push_json(env)
        assert code == 0 and second["requests"] == 0 and second["remaining"] == first["remaining"], second
        assert ghl.requests == []
