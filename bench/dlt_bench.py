"""Side by side: `stsync sync full` and a dlt `rest_api` pipeline mirroring the same sandbox export feeds
into the same PostgreSQL server. Prints figures, not pass/fail.

    .venv/bin/python bench/dlt_bench.py [--scale medium|large] [--tools stsync,dlt,floor]

With `floor` (the default includes it) the same run also measures the floor of bench/floor_bench.py:
PostgreSQL alone COPYing the same rows into the same tables, and the table gains stsync/floor.

One sandbox (in this process, prewarm cache complete before anything is timed) serves both tools the same
world (seed 42); one throwaway PostgreSQL server holds a fresh database per tool. Both tools run as child
processes, one after the other, timed from spawn to exit (interpreter start-up and imports included).

dlt runs as its users would run it: `rest_api` source on every export feed stsync mirrors, the built-in
JSON cursor paginator (`continueFrom` -> `from`, stops when `hasMore` is false), OAuth2 client
credentials plus the `ST-App-Key` header, `write_disposition="merge"`, `primary_key="id"`,
`max_table_nesting=0`, postgres destination with the COPY (csv) loader. dlt lives in its own virtualenv,
bench/.venv-dlt, which this script creates from bench/requirements-dlt.txt on first use; this same file is
the runner executed by that virtualenv's Python (`--run-dlt SPEC`), so it imports only the standard
library at module level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-dlt"
VENV_PY = VENV / "bin" / "python"
REQUIREMENTS = BENCH / "requirements-dlt.txt"
STAMP = VENV / "requirements.sha256"


# --- the dlt side (runs inside bench/.venv-dlt) ----------------------------------------------------------


def run_dlt(spec_file: str) -> None:
    """Run the dlt pipeline described by SPEC_FILE; print one JSON line with what it did."""
    started = time.monotonic()
    import dlt
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
    from dlt.sources.rest_api import rest_api_source

    imported = time.monotonic()
    spec = json.loads(Path(spec_file).read_text())
    auth = OAuth2ClientCredentials(
        access_token_url=spec["auth_url"],
        client_id=spec["client_id"],
        client_secret=spec["client_secret"],
    )
    config: Any = {
        "client": {
            "base_url": spec["base_url"],
            "headers": {"ST-App-Key": spec["app_key"]},
            "auth": auth,
            "paginator": {
                "type": "cursor",
                "cursor_path": "continueFrom",
                "cursor_param": "from",
                "has_more_path": "hasMore",
            },
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"data_selector": "data"},
        },
        "resources": [
            {"name": r["table"], "endpoint": {"path": r["path"], **({"params": r["params"]} if r["params"] else {})}}
            for r in spec["resources"]
        ],
    }
    source = rest_api_source(config, name="servicetitan", max_table_nesting=0)
    pipeline = dlt.pipeline(
        pipeline_name="stsync_dlt_bench",
        pipelines_dir=spec["pipelines_dir"],
        destination=dlt.destinations.postgres(credentials=spec["dsn"]),
        dataset_name=spec["dataset"],
    )
    pipeline.run(source, loader_file_format="csv")
    trace = pipeline.last_trace
    steps = {s.step: (s.finished_at - s.started_at).total_seconds() for s in trace.steps if s.finished_at is not None}
    tables = {r["table"] for r in spec["resources"]}
    # records extracted per table (normalize's row_counts over-count with the csv writer in dlt 1.31)
    ex = trace.last_extract_info
    extracted: dict[str, int] = {}
    for ms in ex.metrics.values():
        for m in ms:
            for t, tm in m["table_metrics"].items():
                extracted[t] = extracted.get(t, 0) + tm.items_count
    print(
        json.dumps(
            {
                "dlt_version": dlt.__version__,
                "import_s": imported - started,
                "steps_s": steps,
                "extracted": {t: n for t, n in extracted.items() if t in tables},
            }
        )
    )


# --- the benchmark (runs in the project's .venv) ---------------------------------------------------------


def ensure_venv() -> None:
    """Create bench/.venv-dlt and install bench/requirements-dlt.txt when missing or out of date."""
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if VENV_PY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return
    print(f"setting up {VENV.relative_to(BENCH.parent)} from {REQUIREMENTS.name} …", file=sys.stderr, flush=True)
    if not VENV_PY.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--isolated", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(want + "\n")


def count_rows(dsn: str, schema: str, tables: list[str]) -> dict[str, int]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn) as conn:
        return {
            t: conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(t))
            ).fetchone()[0]  # type: ignore[index]
            for t in tables
        }


def export_requests(sb: Any, since: int) -> int:
    return sum(1 for r in sb.requests[since:] if "/export/" in r["path"] and r["status"] == 200)


def bench_stsync(sb: Any, pg: Any) -> dict[str, Any]:
    from common import EXPORT_STREAMS, run_timed

    from stsync.db.migrations import migrate
    from tests.e2e.harness import STSYNC, cli_env

    dsn = pg.create_database("bench_stsync")
    migrate(dsn)
    env = cli_env(sb.url, dsn)
    env.pop("STSYNC_RETRY_NO_WAIT", None)
    before = len(sb.requests)
    wall, rss, out = run_timed([STSYNC, "sync", "full", "--json"], env, ok=(0, 1))
    summary = json.loads(out)
    names = {s.name for s in EXPORT_STREAMS}
    fetched = {s["name"]: s["fetched"] for s in summary["streams"]}
    rows = count_rows(dsn, "servicetitan", [s.table for s in EXPORT_STREAMS])
    return {
        "records": sum(n for name, n in fetched.items() if name in names),
        "records_all": summary["totals"]["fetched"],
        "rows": sum(rows.values()),
        "wall": wall,
        "rss": rss,
        "requests": len(sb.requests) - before,
        "export_requests": export_requests(sb, before),
        "exit_code": summary["exit_code"],
    }


def bench_dlt(sb: Any, pg: Any) -> dict[str, Any]:
    from common import EXPORT_STREAMS, export_path, run_timed

    from stsync.sandbox import APP_KEY, CLIENT_ID, CLIENT_SECRET

    dsn = pg.create_database("bench_dlt")
    with tempfile.TemporaryDirectory(prefix="dlt-bench-") as tmp:
        spec = {
            "base_url": sb.url,
            "auth_url": f"{sb.url}/connect/token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "app_key": APP_KEY,
            # dlt insists on a password; the throwaway server trusts loopback and ignores it
            "dsn": dsn.replace("@", ":unused@", 1),
            "dataset": "servicetitan",
            "pipelines_dir": str(Path(tmp) / "pipelines"),
            "resources": [
                {"table": s.table, "path": export_path(s), "params": dict(s.export_params)} for s in EXPORT_STREAMS
            ],
        }
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STSYNC_", "VIRTUAL_ENV", "PYTHON"))}
        env.update({"RUNTIME__DLTHUB_TELEMETRY": "false", "HOME": tmp})  # no ~/.dlt state, no telemetry
        before = len(sb.requests)
        wall, rss, out = run_timed(
            [str(VENV_PY), str(Path(__file__).resolve()), "--run-dlt", str(spec_file)], env, cwd=tmp
        )
    result = json.loads(out.decode().strip().splitlines()[-1])
    rows = count_rows(dsn, "servicetitan", [s.table for s in EXPORT_STREAMS])
    return {
        "records": sum(result["extracted"].values()),
        "rows": sum(rows.values()),
        "wall": wall,
        "rss": rss,
        "requests": len(sb.requests) - before,
        "export_requests": export_requests(sb, before),
        "steps": result["steps_s"],
        "import_s": result["import_s"],
        "version": result["dlt_version"],
    }


def bench_floor(sb: Any, pg: Any) -> dict[str, Any]:
    """The COPY floor of floor_bench.py on the same world (only the database work is timed)."""
    from floor_bench import migrate, prepare, run_copy

    tables, records = prepare(sb.world.dump())
    dsn = pg.create_database("floor_copy")
    migrate(dsn)
    seconds = run_copy(dsn, tables)
    return {"records": records, "rows": sum(t[3] for t in tables), "wall": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=["small", "medium", "large"])
    parser.add_argument(
        "--tools", default="stsync,dlt,floor", help="comma-separated: stsync, dlt, floor (default all three)"
    )
    parser.add_argument("--run-dlt", metavar="SPEC", help=argparse.SUPPRESS)  # the runner, inside .venv-dlt
    args = parser.parse_args()
    if args.run_dlt:
        run_dlt(args.run_dlt)
        return
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if "dlt" in tools:
        ensure_venv()

    sys.path.insert(0, str(BENCH))
    from common import git_commit, print_table, start_sandbox

    from stsync.sandbox.postgres import EmbeddedPostgres

    res: dict[str, dict[str, Any]] = {}
    with EmbeddedPostgres() as pg, start_sandbox(args.scale) as sb:
        for tool in tools:
            print(f"running {tool} …", file=sys.stderr, flush=True)
            runner = {"stsync": bench_stsync, "dlt": bench_dlt, "floor": bench_floor}[tool]
            res[tool] = runner(sb, pg)

    def cell(tool: str, key: str, fmt: str) -> str:
        return format(res[tool][key], fmt) if tool in res and key in res[tool] else "-"

    def ratio(a: str, b: str, key: str) -> str:
        if a in res and b in res and res[a].get(key) and res[b].get(key):
            return f"{res[a][key] / res[b][key]:.2f}"
        return "-"

    for r in res.values():
        r["rate"] = r["records"] / r["wall"]
    metrics = [
        ("records (export feeds)", "records", ",d", ""),
        ("rows in mirror tables", "rows", ",d", ""),
        ("wall seconds", "wall", ".2f", "dlt/stsync ≥ 3, stsync/floor ≤ 1.5"),
        ("records/s", "rate", ",.0f", "stsync ≥ 25,000"),
        ("peak RSS MB", "rss", ".0f", "stsync ≤ 150"),
        ("HTTP requests (all)", "requests", "d", ""),
    ]
    rows = [
        [
            label,
            cell("stsync", key, fmt),
            cell("dlt", key, fmt),
            cell("floor", key, fmt),
            target,
            ratio("dlt", "stsync", key),
            ratio("stsync", "floor", key) if key == "wall" else "-",
        ]
        for label, key, fmt, target in metrics
    ]
    print(
        f"\nscale {args.scale}, commit {git_commit()}, {os.cpu_count()} CPUs"
        + (f", dlt {res['dlt']['version']}" if "dlt" in res else "")
    )
    print_table(["metric", "stsync", "dlt", "floor (COPY)", "target", "dlt/stsync", "stsync/floor"], rows)
    if "dlt" in res:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in res["dlt"]["steps"].items())
        print(f"dlt phases: import {res['dlt']['import_s']:.1f} s, {steps}")
    if "stsync" in res:
        print(
            f"stsync: {res['stsync']['records_all']:,} records incl. list endpoints, exit {res['stsync']['exit_code']}"
        )


if __name__ == "__main__":
    main()
