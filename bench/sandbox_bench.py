"""Sandbox speed figures: `serve --scale large` start-up, 5000-record export pages, a 5000-record list page.

Run: .venv/bin/python bench/sandbox_bench.py   (prints figures; no pass/fail)
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stsync.sandbox import APP_KEY, CLIENT_ID, CLIENT_SECRET, SandboxOptions  # noqa: E402

TENANT = SandboxOptions().tenant


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(client: httpx.Client) -> str:
    r = client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    r.raise_for_status()
    return r.json()["access_token"]


def pages(client: httpx.Client, headers: dict[str, str], path: str, n: int) -> list[float]:
    """Time n consecutive export pages (following continueFrom), in ms."""
    times = []
    frm = None
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path, params={"from": frm} if frm else {}, headers=headers)
        body = r.content
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:200]
        doc = httpx.Response(200, content=body).json()
        assert len(doc["data"]) == 5000
        frm = doc["continueFrom"]
    return times


def show(label: str, times: list[float]) -> None:
    print(f"  {label:<44} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms   (n={len(times)})")


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stsync",
            "sandbox",
            "serve",
            "--scale",
            "large",
            "--port",
            str(port),
            "--rate-limit",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=url, timeout=60)
        while True:
            try:
                tok = token(client)
                break
            except httpx.TransportError:
                time.sleep(0.02)
            if time.perf_counter() - t0 > 60:
                raise SystemExit("sandbox did not answer within 60 s")
        first = time.perf_counter() - t0
        print(f"serve --scale large: first successful answer (token) after {first:.2f} s")
        h = {"Authorization": f"Bearer {tok}", "ST-App-Key": APP_KEY}
        base = f"/crm/v2/tenant/{TENANT}"
        t = time.perf_counter()
        r = client.get(f"{base}/customers", params={"pageSize": 50}, headers=h)
        print(
            f"first API answer (customers list, 50 rows): {(time.perf_counter() - t) * 1000:.1f} ms "
            f"(status {r.status_code}), {time.perf_counter() - t0:.2f} s after start"
        )
        print("cold (right after start, pre-serialisation still running in worker processes):")
        show("export/customers 5000-record pages", pages(client, h, f"{base}/export/customers", 5))
        show("export/jobs 5000-record pages", pages(client, h, f"/jpm/v2/tenant/{TENANT}/export/jobs", 5))
        while not client.get("/_sandbox/health").json()["cache"]["done"]:
            time.sleep(0.5)
        print(f"warm (pre-serialisation finished {time.perf_counter() - t0:.1f} s after start):")
        for label, path in (
            ("export/customers", f"{base}/export/customers"),
            ("export/jobs", f"/jpm/v2/tenant/{TENANT}/export/jobs"),
            ("export/invoices", f"/accounting/v2/tenant/{TENANT}/export/invoices"),
            ("export/invoice-items", f"/accounting/v2/tenant/{TENANT}/export/invoice-items"),
        ):
            show(f"{label} 5000-record pages", pages(client, h, path, 8))
        lt = []
        for p in range(1, 6):
            t = time.perf_counter()
            r = client.get(f"{base}/customers", params={"pageSize": 5000, "page": p, "active": "Any"}, headers=h)
            lt.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and len(r.json()["data"]) == 5000
        show("customers list pageSize=5000 (pages 1-5)", lt)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
