"""`--debug` on a successful sync: a record per HTTP request (method, host and path, status, time), and no
secret in any of them."""

from __future__ import annotations

import re

from stsync.sandbox import Sandbox, SandboxOptions
from tests.e2e.harness import cli_env, run_cli
from tests.sandbox_creds import APP_KEY, CLIENT_SECRET


def test_debug_shows_request_lines_without_secrets(db_dsn: str) -> None:
    with Sandbox.start(SandboxOptions(scale="small", seed=3)) as sb:
        env = cli_env(sb.url, db_dsn, STSYNC_LOGGING__FORMAT="text")
        proc = run_cli(["--debug", "sync", "reference"], env)
        host = sb.url.removeprefix("http://")
    assert proc.returncode == 0, proc.stderr[-2000:]
    requests = [ln for ln in proc.stderr.splitlines() if ln.startswith("DEBUG stsync.http: ")]
    assert any(re.search(rf"POST {re.escape(host)}/connect/token 200 \d+ms$", ln) for ln in requests), requests
    gets = [ln for ln in requests if " GET " in f" {ln.split(': ', 1)[1]}"]
    assert gets and all(re.search(rf"GET {re.escape(host)}/\S+/v2/tenant/\d+/\S+ 200 \d+ms$", ln) for ln in gets)
    for secret in (CLIENT_SECRET, APP_KEY):
        assert secret not in proc.stderr + proc.stdout
    assert "Bearer" not in proc.stderr and "?" not in "".join(requests), "no header, no query string"
