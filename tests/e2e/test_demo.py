"""`stsync demo` end to end through the real console script: mirror, GHL push, pipeline distribution."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import STSYNC, run_cli

# One row of the distribution table as Rich draws it when stdout is not a terminal.
ROW = re.compile(r"^│ (Sales|Install)\s+│ ([\w -]+?)\s+│ (\w+)\s+│\s+([\d,]+) │\s+([\d,]+) │$", re.MULTILINE)
PUSH = re.compile(r"^GHL (first|second) push: contacts created=(\d+) updated=(\d+) .*429s (\d+)$", re.MULTILINE)


def test_demo_pushes_to_the_ghl_sandbox_and_prints_the_pipeline_distribution() -> None:
    """The demo syncs, pushes twice and prints opportunities by pipeline, stage and status with nonzero
    counts in both pipelines, the contacts it created, webhook posts for Pool, and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    proc = run_cli(["demo"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "GHL sandbox: opportunities by pipeline, stage and status" in out
    assert "4622 Pool -> inbound webhook" in out and "26143 Plumbing -> Sales pipeline, disabled" in out

    rows = [
        (p, stage, status, int(a.replace(",", "")), int(b.replace(",", "")))
        for p, stage, status, a, b in ROW.findall(out)
    ]
    assert {p for p, *_ in rows} == {"Sales", "Install"}, out
    assert all(b > 0 for *_, b in rows), rows  # only combinations that exist are listed
    sales = {(stage, status) for p, stage, status, *_ in rows if p == "Sales"}
    assert ("Job Sold", "won") in sales, rows
    assert all(stage in {"Scheduled", "InProgress", "Hold", "Completed"} for p, stage, *_ in rows if p == "Install")

    total = re.search(r"^│ total\s+│\s+│\s+│\s+([\d,]+) │\s+([\d,]+) │$", out, re.MULTILINE)
    assert total is not None, out
    assert int(total.group(2).replace(",", "")) == sum(b for *_, b in rows) > 0

    pushes = {which: (int(c), int(u), int(n429)) for which, c, u, n429 in PUSH.findall(out)}
    assert pushes["first"][0] > 0  # contacts created by the first push
    assert pushes["second"][0] == 0  # nothing new to create: no duplicates on the second push
    assert pushes["first"][2] == pushes["second"][2] == 0
    assert re.search(r"webhook payloads received pool=[1-9]", out), out
    assert "ghl push again" in out  # its timing is reported


def test_sigterm_mid_demo_stops_its_postgresql(tmp_path: Any) -> None:
    """systemd stop or kill (SIGTERM) unwinds the demo like Ctrl-C: exit 143, and the throwaway PostgreSQL it
    started is stopped and removed instead of being left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env["COLUMNS"] = "400"  # one progress message per line
    proc = subprocess.Popen([STSYNC, "demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    dsn = None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        found = re.search(r"PostgreSQL ready at (\S+)", line)
        dsn = dsn or (found.group(1) if found else None)
        if "full sync" in line:
            break
    assert dsn is not None, seen
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, "".join(seen) + rest
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)
