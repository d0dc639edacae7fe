"""A no-change `stsync sync incremental` at several git revisions, side by side on one machine state: has a
change made the recurring run cost more?

    .venv/bin/python bench/revisions_bench.py [--scale medium] [--rounds 11] [--instructions] REV [REV …]

Each revision is checked out into its own temporary worktree with its own environment (``scripts/dev sync``,
from that revision's lock). One throwaway PostgreSQL, migrated by this checkout, and one sandbox serve them
all; the last revision runs one full sync, then each round runs every revision once in turn, so a busy
moment of the machine falls on all of them alike. Per revision it prints the median wall and CPU seconds
(with the fastest and slowest run).

On a small shared machine a run's wall and CPU time vary by ±100 ms from one run to the next, more than
most changes cost. ``--instructions`` adds one run per revision under valgrind's callgrind and prints the
instructions it executed: the same figure on every try for the same code and world, whatever else the
machine is doing, so a difference of a few per cent shows and can be bisected.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_table, start_sandbox  # noqa: E402
from stsync.db.migrations import migrate  # noqa: E402
from stsync.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from tests.e2e.harness import cli_env  # noqa: E402

NO_CHANGE = ["sync", "incremental", "--json"]


def check_out(rev: str, into: Path) -> Path:
    """A worktree of REV with its own environment; returns its console script."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), rev], check=True)
    subprocess.run(["scripts/dev", "sync"], cwd=into, check=True, stdout=subprocess.DEVNULL)
    return into / ".venv" / "bin" / "stsync"


def timed(script: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run."""
    started = time.monotonic()
    proc = subprocess.Popen([str(script), *NO_CHANGE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        assert proc.stderr is not None
        raise SystemExit(f"{script} {' '.join(NO_CHANGE)} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def instructions(script: Path, env: dict[str, str]) -> int:
    """Instructions one run executes, counted by callgrind (the console script run by its own Python)."""
    python = script.with_name("python")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(python), str(script), *NO_CHANGE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    collected = [line for line in proc.stderr.splitlines() if "Collected" in line]
    if proc.returncode != 0 or not collected:
        raise SystemExit(f"callgrind run of {script} failed: {proc.stderr[-2000:]}")
    return int(collected[0].split(":")[1].replace(",", ""))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revs", nargs="+", metavar="REV", help="git revisions to compare (branch, tag, commit)")
    parser.add_argument("--scale", default="medium", help="sandbox world (default medium)")
    parser.add_argument("--rounds", type=int, default=11, help="timed runs of every revision (default 11)")
    parser.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")

    trees = Path(tempfile.mkdtemp(prefix="stsync-revisions-"))
    scripts: dict[str, Path] = {}
    try:
        for i, rev in enumerate(args.revs):
            scripts[rev] = check_out(rev, trees / str(i))
        walls: dict[str, list[float]] = {rev: [] for rev in scripts}
        cpus: dict[str, list[float]] = {rev: [] for rev in scripts}
        counted: dict[str, int] = {}
        with EmbeddedPostgres() as pg, start_sandbox(args.scale) as sb:
            migrate(pg.dsn)
            env = cli_env(sb.url, pg.dsn)
            subprocess.run(
                [str(scripts[args.revs[-1]]), "sync", "full", "--json"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            for _ in range(args.rounds):
                for rev, script in scripts.items():
                    wall, cpu = timed(script, env)
                    walls[rev].append(wall)
                    cpus[rev].append(cpu)
            if args.instructions:
                counted = {rev: instructions(script, env) for rev, script in scripts.items()}
    finally:
        for i in range(len(scripts)):
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees / str(i))], check=False)
        shutil.rmtree(trees, ignore_errors=True)

    first = args.revs[0]
    rows = []
    for rev in scripts:
        row = [rev, spread(walls[rev]), spread(cpus[rev])]
        if counted:
            row.append(f"{counted[rev] / 1e6:,.0f} M ({counted[rev] / counted[first] - 1:+.1%})")
        rows.append(row)
    print(f"no-change `stsync sync incremental`, {args.scale} world, {args.rounds} interleaved runs per revision")
    header = ["revision", "wall, median (min-max)", "CPU, median (min-max)"]
    print_table([*header, f"instructions (vs {first})"] if counted else header, rows)


if __name__ == "__main__":
    main()
