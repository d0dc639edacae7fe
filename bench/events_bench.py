"""Benchmark events and workflows: what capture costs the sync, what an idle `events poll` costs, how fast a
backlog is matched and worked off, and how long a change takes to become an action. Figures, not pass/fail.

    .venv/bin/python bench/events_bench.py capture [--scale medium] [--rounds 5] [--full-scale large]
    .venv/bin/python bench/events_bench.py poll [--scale large]
    .venv/bin/python bench/events_bench.py backlog [--events 10000]
    .venv/bin/python bench/events_bench.py latency [--minutes 10]

- capture: two mirrors of one world on one PostgreSQL server, one with events.capture on and one off, each
  synced in full; then rounds of sandbox changes, each followed by `sync incremental` of both mirrors (in
  alternating order), median wall of each; then `sync full` re-reads of both (no record changed, so no
  event is written) on the --full-scale world. Goals: incremental ≤ 5 % slower, full ≤ 3 % slower.
- poll: `events poll` with nothing pending on a synced world with the example workflows loaded: the
  database time of its statements (in-process, summed round trips) and the CLI's wall (median of 7).
  Goals: ≤ 50 ms and ≤ 0.5 s.
- backlog: N pending job_completed events against 4 workflows (two enrol, two filter), matched and recorded
  by one poll; then their N … 2N steps posted to a local HTTP sink by the next. Goal: ≥ 2,000 events/s.
- latency: `sync incremental` and `events poll` each on its own 1-minute timer (different phases) for
  --minutes real minutes, with new jobs made in the sandbox at random moments; a workflow on job_created posts
  each job to a local sink. Change → action per job: p50, p95, max. Goal: p95 ≤ 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_commit, print_table, run_timed, start_sandbox
from stsync.db.migrations import migrate
from stsync.events.actions import Actions, ActionSettings
from stsync.events.definitions import read_workflows
from stsync.events.poll import PollSettings, poll
from stsync.events.service import store_workflows
from stsync.events.store import EventStore, open_events
from stsync.sandbox.postgres import EmbeddedPostgres
from tests.e2e.harness import STSYNC, cli_env
from tests.events.helpers import Clock, Sink

EXAMPLE = Path(__file__).resolve().parents[1] / "workflows.example.yaml"


def _sync(env: dict[str, str], kind: str) -> tuple[float, dict[str, Any]]:
    wall, _, out = run_timed([STSYNC, "sync", kind, "--json"], env)
    return wall, json.loads(out)


def _two_mirrors(pg: EmbeddedPostgres, sb: Any, scale: str) -> dict[str, dict[str, str]]:
    """Two mirrors of the sandbox's world on one server, events.capture on and off, each synced in full."""
    envs = {}
    for name, on in (("on", "true"), ("off", "false")):
        dsn = pg.create_database(f"{scale}_capture_{name}")
        migrate(dsn)
        envs[name] = cli_env(sb.url, dsn, STSYNC_EVENTS__CAPTURE=on)
        wall, doc = _sync(envs[name], "full")
        print(
            f"{scale}: first sync full, capture {name}: {wall:.1f} s, {doc['totals']['events']} events", file=sys.stderr
        )
    return envs


def capture(scale: str, rounds: int, full_scale: str) -> None:
    rows = []
    with EmbeddedPostgres() as pg, start_sandbox(scale) as sb:
        envs = _two_mirrors(pg, sb, scale)
        walls: dict[str, list[float]] = {"on": [], "off": []}
        events, changed = 0, 0
        for i in range(rounds):
            sb.advance(minutes=60, changes=True)
            for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
                wall, doc = _sync(envs[name], "incremental")
                walls[name].append(wall)
                if name == "on":
                    events += doc["totals"]["events"]
                    changed += doc["totals"]["created"] + doc["totals"]["updated"]
        on, off = statistics.median(walls["on"]), statistics.median(walls["off"])
        case = f"{scale}: sync incremental, 60 sandbox min ({changed // rounds:,} rows, {events // rounds:,} events)"
        rows.append([case, f"{off:.2f}", f"{on:.2f}", f"{(on / off - 1) * 100:+.1f} %", "≤ +5 %"])
    with EmbeddedPostgres() as pg, start_sandbox(full_scale) as sb:
        envs = _two_mirrors(pg, sb, full_scale)
        walls = {"on": [], "off": []}
        written = 0
        for i in range(2):
            for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
                wall, doc = _sync(envs[name], "full")
                walls[name].append(wall)
                written += doc["totals"]["events"] if name == "on" else 0
                print(f"{full_scale}: sync full re-read, capture {name}: {wall:.1f} s", file=sys.stderr)
        on, off = statistics.mean(walls["on"]), statistics.mean(walls["off"])
        rows.append([f"{full_scale}: sync full re-reading every record ({written} events written)", f"{off:.1f}",
                     f"{on:.1f}", f"{(on / off - 1) * 100:+.1f} %", "≤ +3 %"])  # fmt: skip
    print(f"\nstsync {git_commit()}: capture off vs on (incremental: median of {rounds}; full: mean of 2)\n")
    print_table(["case", "off s", "on s", "difference", "goal"], rows)


class _TimedStore(EventStore):
    """An EventStore that adds up the time of each statement's round trip (the poll's database time)."""

    spent = 0.0
    statements = 0

    async def _timed(self, call: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.spent += time.perf_counter() - started
            self.statements += 1

    async def rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self._timed(super().rows(name, params))

    async def count(self, name: str, params: dict[str, Any] | None = None) -> int:
        return await self._timed(super().count(name, params))


async def _load_example(dsn: str) -> None:
    async with open_events(dsn) as store:
        await store_workflows(store, read_workflows(EXAMPLE), str(EXAMPLE))


async def _idle_poll(dsn: str) -> tuple[float, int]:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        store = _TimedStore(conn)
        async with Actions(ActionSettings(), store) as actions:
            result = await poll(store, PollSettings(), actions)
        assert result.events == 0 and not result.steps, result
        return store.spent, store.statements
    finally:
        await conn.close()


def idle(scale: str) -> None:
    with EmbeddedPostgres() as pg, start_sandbox(scale) as sb:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        wall, doc = _sync(env, "full")
        print(f"{scale}: sync full {wall:.1f} s ({doc['totals']['fetched']:,} records)", file=sys.stderr)
        asyncio.run(_load_example(pg.dsn))
        sb.advance(minutes=60, changes=True)
        _sync(env, "incremental")
        # Works off what the incremental captured; without GHL or SMTP settings its steps are dead letters (exit 1).
        run_timed([STSYNC, "events", "poll"], env, ok=(0, 1))
        database = [asyncio.run(_idle_poll(pg.dsn)) for _ in range(7)]
        walls = [run_timed([STSYNC, "events", "poll"], env)[0] for _ in range(7)]
        with psycopg.connect(pg.dsn) as conn:
            n = conn.execute("SELECT count(*) FROM automation.events").fetchone()
    spent = statistics.median(d[0] for d in database) * 1000
    rows = [
        [f"{scale}: events poll, nothing pending ({n[0] if n else 0:,} events stored)", "database time",
         f"{spent:.1f} ms ({database[0][1]} statements)", "≤ 50 ms"],
        [f"{scale}: stsync events poll, nothing pending", "wall (process)", f"{statistics.median(walls):.2f} s",
         "≤ 0.5 s"],
    ]  # fmt: skip
    print(f"\nstsync {git_commit()}: an idle poll (median of 7)\n")
    print_table(["case", "what", "figure", "goal"], rows)


BACKLOG_WORKFLOWS = """
workflows:
  - name: big-completed
    trigger: job_completed
    conditions: ["has(entity.total) && entity.total != null"]
    steps:
      - {wait: 1m, action: http.post, url_env: SINK_URL, body: {job: "{{ entity.id }}"}}
  - name: completed-any
    trigger: job_completed
    steps:
      - {wait: 1m, action: http.post, url_env: SINK_URL, body: {job: "{{ entity.id }}", n: "{{ entity.job_number }}"}}
  - name: never-a
    trigger: job_completed
    conditions: ["entity.total < 0.0"]
    steps: [{action: log, message: never}]
  - name: never-b
    trigger: job_completed
    conditions: ["entity.job_status == 'NoSuchStatus'"]
    steps: [{action: log, message: never}]
"""


def backlog(n: int) -> None:
    with EmbeddedPostgres() as pg, start_sandbox("medium") as sb, tempfile.TemporaryDirectory() as tmp:
        migrate(pg.dsn)
        env = cli_env(sb.url, pg.dsn)
        _sync(env, "full")
        path = Path(tmp) / "w.yaml"
        path.write_text(BACKLOG_WORKFLOWS)

        async def go() -> list[list[str]]:
            async with open_events(pg.dsn) as store:
                await store_workflows(store, read_workflows(path), str(path))
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                made = conn.execute(
                    "INSERT INTO automation.events (entity, st_id, event_type, version, occurred_at, new_values) "
                    "SELECT 'jobs', st_id, 'job_completed', 'bench', now(), "
                    "jsonb_build_object('job_status', job_status) FROM servicetitan.st_jobs ORDER BY st_id LIMIT %s",
                    (n,),
                ).rowcount
            sink = Sink()
            clock = Clock()
            try:
                async with open_events(pg.dsn) as store:
                    settings = ActionSettings(env={"SINK_URL": sink.url + "/hook"})
                    async with Actions(settings, store) as actions:
                        started = time.perf_counter()
                        matched = await poll(store, PollSettings(), actions, clock)
                        match_s = time.perf_counter() - started
                        clock.advance(minutes=2)
                        started = time.perf_counter()
                        ran = await poll(store, PollSettings(), actions, clock)
                        steps_s = time.perf_counter() - started
            finally:
                sink.close()
            assert matched.events == made and ran.steps["ok"] == len(sink.requests), (matched, ran)
            verdicts = sum(matched.verdicts.values())
            return [
                [f"{made:,} pending events, 4 workflows: matched and recorded ({verdicts:,} verdicts: "
                 + ", ".join(f"{k} {v:,}" for k, v in sorted(matched.verdicts.items())) + ")",
                 f"{match_s:.2f} s", f"{made / match_s:,.0f} events/s", "≥ 2,000 events/s"],
                [f"their {ran.steps['ok']:,} steps posted to a local HTTP sink", f"{steps_s:.2f} s",
                 f"{ran.steps['ok'] / steps_s:,.0f} steps/s", ""],
            ]  # fmt: skip

        rows = asyncio.run(go())
    print(f"\nstsync {git_commit()}: a backlog (medium world)\n")
    print_table(["case", "wall", "rate", "goal"], rows)


LATENCY_WORKFLOW = """
workflows:
  - name: new-job-post
    trigger: job_created
    steps:
      - {action: http.post, url_env: SINK_URL, body: {job: "{{ entity.id }}"}}
"""


def latency(minutes: int, scale: str) -> None:
    with EmbeddedPostgres() as pg, start_sandbox(scale) as sb, tempfile.TemporaryDirectory() as tmp:
        migrate(pg.dsn)
        sink = Sink()
        env = cli_env(sb.url, pg.dsn, SINK_URL=sink.url + "/hook")
        _sync(env, "full")
        path = Path(tmp) / "w.yaml"
        path.write_text(LATENCY_WORKFLOW)
        asyncio.run(_load_example_file(pg.dsn, path))
        made: dict[int, float] = {}
        stop = threading.Event()
        rng = random.Random(7)

        def timer(argv: list[str], phase: float) -> None:
            start = time.monotonic() + phase
            k = 0
            while not stop.is_set():
                due = start + 60 * k
                if stop.wait(max(0.0, due - time.monotonic())):
                    return
                subprocess.run(
                    [STSYNC, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
                )
                k += 1

        threads = [threading.Thread(target=timer, args=(["sync", "incremental"], 0.0)),
                   threading.Thread(target=timer, args=(["events", "poll"], 23.0))]  # fmt: skip
        for t in threads:
            t.start()
        ends = time.monotonic() + minutes * 60
        while time.monotonic() < ends - 130:  # the last changes have two timer periods to arrive
            time.sleep(rng.uniform(5, 25))
            summary = sb.advance(minutes=1, changes=True)
            at = time.monotonic()
            for job in summary["created"].get("jobs", []):
                made.setdefault(int(job), at)
        time.sleep(max(0.0, ends - time.monotonic()))
        stop.set()
        for t in threads:
            t.join()
        arrived: dict[int, float] = {}
        for r in sink.requests:
            arrived.setdefault(int(r["body"]["job"]), r["at"])
        sink.close()
    delays = sorted(arrived[j] - made[j] for j in made if j in arrived)
    missing = len([j for j in made if j not in arrived])
    q = statistics.quantiles(delays, n=20) if len(delays) >= 2 else [0.0] * 19
    case = f"{scale}: change → action, 1-minute timers ({len(delays)} new jobs over {minutes} min, {missing} lost)"
    rows = [[case, f"{statistics.median(delays):.0f} s", f"{q[18]:.0f} s", f"{max(delays):.0f} s", "p95 ≤ 120 s"]]
    print(f"\nstsync {git_commit()}: change → action\n")
    print_table(["case", "p50", "p95", "max", "goal"], rows)


async def _load_example_file(dsn: str, path: Path) -> None:
    async with open_events(dsn) as store:
        await store_workflows(store, read_workflows(path), str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("capture")
    p.add_argument("--scale", default="medium")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--full-scale", default="large")
    p = sub.add_parser("poll")
    p.add_argument("--scale", default="large")
    p = sub.add_parser("backlog")
    p.add_argument("--events", type=int, default=10_000)
    p = sub.add_parser("latency")
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--scale", default="small")
    args = parser.parse_args()
    if args.what == "capture":
        capture(args.scale, args.rounds, args.full_scale)
    elif args.what == "poll":
        idle(args.scale)
    elif args.what == "backlog":
        backlog(args.events)
    else:
        latency(args.minutes, args.scale)


if __name__ == "__main__":
    main()
