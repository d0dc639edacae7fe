"""Helpers shared by the benchmark scripts in bench/ (run with the project's .venv)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stsync.sandbox import Sandbox, SandboxOptions  # noqa: E402
from stsync.sync.streams import STREAMS, FeedKind, Stream  # noqa: E402

TENANT = SandboxOptions().tenant
EXPORT_STREAMS: tuple[Stream, ...] = tuple(s for s in STREAMS if s.feed is FeedKind.EXPORT)


def export_path(stream: Stream, tenant: int = TENANT) -> str:
    """The export feed's path on the sandbox (and on ServiceTitan)."""
    return f"/{stream.module}/v2/tenant/{tenant}/{stream.export_path}"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start_sandbox(scale: str, seed: int = 42, warm_timeout: float = 900, export_batch_size: int = 5000) -> Sandbox:
    """Start the sandbox in this process and wait until its prewarm cache is complete, so no benchmarked
    client pays for (or competes with) the background warm-up on the machine's cores."""
    sb = Sandbox.start(SandboxOptions(scale=scale, seed=seed, export_batch_size=export_batch_size))
    if sb.cache is not None:
        started = time.monotonic()
        while not sb.cache.progress()["done"]:
            if time.monotonic() - started > warm_timeout:
                sb.stop()
                raise SystemExit(f"sandbox prewarm of the {scale} world did not finish in {warm_timeout:.0f} s")
            time.sleep(0.2)
        print(f"sandbox {scale}: prewarm done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return sb


# Forks the measured command from a small, fresh interpreter and reports its wall time and peak RSS.
# ru_maxrss survives exec: a child forked straight from a benchmark process that holds a large sandbox
# world starts with that process's resident set, and its "peak RSS" was the benchmark's, not stsync's.
_LAUNCHER = """
import os, subprocess, sys, time
started = time.monotonic()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.monotonic() - started
with open(sys.argv[1], "w") as f:
    f.write(f"{wall} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_timed(
    argv: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,), cwd: str | None = None
) -> tuple[float, float, bytes]:
    """Run ARGV; return its wall seconds, its own peak RSS in MB and its stdout. ARGV is started by a small
    launcher process (see _LAUNCHER), so neither this process's memory nor the sandbox's workers are
    counted. Exits with the child's stderr tail on an exit code not in OK."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r", suffix=".rss") as figures:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, figures.name, *argv], env=env, stdout=subprocess.PIPE, stderr=err, cwd=cwd
        )
        out, _ = proc.communicate()
        if proc.returncode not in ok:
            err.seek(0)
            raise SystemExit(
                f"{' '.join(argv[:3])} … exited {proc.returncode}: {err.read().decode(errors='replace')[-3000:]}"
            )
        measured = figures.read().split()
        if len(measured) != 2:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv[:3])} … gave no figures: {err.read().decode(errors='replace')[-3000:]}")
        wall, maxrss_kb = measured
    return float(wall), int(maxrss_kb) / 1024, out


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A GitHub-flavoured markdown table (readable as plain text too)."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            + " |"
        )

    print(line(header))
    print("|" + "|".join(("-" * (w + 1) + ("-" if i == 0 else ":")) for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))
    sys.stdout.flush()
