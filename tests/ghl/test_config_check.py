"""`stsync config check` tries what the config says against both sandboxes: a wrong app key (only a call shows
it), a refused GHL token and every stage the location lacks each get one line naming the key, exit 78;
`--offline` calls nothing; `--for ghl` passes a config that only pushes to GHL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from stsync.sandbox.ghl import GhlSandbox
from tests.ghl.conftest import ghl_options, write_config
from tests.ghl.scenario import cli, env_for

STAGES = {"proposal_sent": "Estimate Sent", "sold": "Won", "lost": "Lost"}


@pytest.fixture(scope="module")
def st() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small")) as sb:
        yield sb


@pytest.fixture(scope="module")
def location() -> Iterator[Any]:
    pipelines = {"Sales": ("New Lead", "Contacted", "Appointment Scheduled", *STAGES.values())}
    with GhlSandbox.start(ghl_options(pipelines=pipelines)) as g:
        yield g


def _failed(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if ": failed: " in line]


def _env(tmp_path: Path, db_dsn: str, st: Any, location: Any, **extra: str) -> dict[str, str]:
    config = write_config(tmp_path, db_dsn, location.url, units=[], pipelines={"Sales": {"stages": STAGES}})
    return env_for(st.url, db_dsn, config, **extra)


def test_a_good_config_passes_every_call(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    proc = cli(["config", "check"], _env(tmp_path, db_dsn, st, location))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("servicetitan token: ok", "servicetitan api: ok", "ghl location: ok", "ghl stages: ok"):
        assert line in proc.stdout
    assert _failed(proc.stdout) == []


def test_a_wrong_app_key_is_caught_by_the_call(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    proc = cli(["config", "check"], _env(tmp_path, db_dsn, st, location, STSYNC_SERVICETITAN__APP_KEY="ak1.wrong"))
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert "servicetitan token: ok" in proc.stdout  # the token does not know the app key
    (line,) = _failed(proc.stdout)
    assert line.startswith("servicetitan api: failed: ") and "HTTP 403" in line and "servicetitan.app_key" in line
    assert "ak1.wrong" not in proc.stdout + proc.stderr


def test_a_wrong_ghl_token_is_one_line(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    proc = cli(["config", "check"], _env(tmp_path, db_dsn, st, location, STSYNC_GHL__TOKEN="pit-wrong-token"))
    assert proc.returncode == 78, proc.stdout + proc.stderr
    (line,) = _failed(proc.stdout)
    assert line.startswith("ghl location: failed: GHL refused the token ") and "check ghl.token" in line
    assert "pit-wrong-token" not in proc.stdout + proc.stderr


def test_every_stage_the_location_lacks_is_its_own_line(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    stages = {**STAGES, "sold": "Job Won", "lost": "Gone"}
    config = write_config(tmp_path, db_dsn, location.url, units=[], pipelines={"Sales": {"stages": stages}})
    env = env_for(st.url, db_dsn, config, STSYNC_SERVICETITAN__APP_KEY="ak1.wrong")
    proc = cli(["config", "check"], env)
    assert proc.returncode == 78, proc.stdout + proc.stderr
    failed = _failed(proc.stdout)
    assert [line.split(": failed: ")[0] for line in failed] == ["servicetitan api", "ghl stages", "ghl stages"]
    assert "'Gone'" in failed[1] and "ghl.pipelines.Sales.stages.lost" in failed[1]
    assert "'Job Won'" in failed[2] and "ghl.pipelines.Sales.stages.sold" in failed[2]


def test_offline_calls_nothing(tmp_path: Path, db_dsn: str) -> None:
    config = write_config(tmp_path, "postgresql://u@127.0.0.1:9/x", "http://127.0.0.1:9", units=[])
    env = env_for("http://127.0.0.1:9", db_dsn, config, STSYNC_DATABASE__URL="postgresql://u@127.0.0.1:9/x")
    proc = cli(["config", "check", "--offline"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # anything tried would be refused (69)
    assert "servicetitan config: ok: every key set (not called: --offline)" in proc.stdout
    assert "database: ok: 127.0.0.1:9/x (not connected: --offline)" in proc.stdout
    missing = cli(["config", "check", "--offline"], {**env, "STSYNC_GHL__TOKEN": ""})
    assert missing.returncode == 78 and "ghl location: failed: missing secret 'ghl.token'" in missing.stdout


def test_a_config_that_only_pushes_to_ghl_passes_for_ghl(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    env = {k: v for k, v in _env(tmp_path, db_dsn, st, location).items() if not k.startswith("STSYNC_SERVICETITAN__")}
    proc = cli(["config", "check", "--for", "ghl"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "servicetitan" not in proc.stdout
    everything = cli(["config", "check"], env)
    assert (
        everything.returncode == 0
        and "servicetitan: ok: skipped: servicetitan.client_id is not set" in everything.stdout
    )
    for_sync = cli(["config", "check", "--for", "sync"], env)
    assert for_sync.returncode == 78
    assert _failed(for_sync.stdout) == ["servicetitan config: failed: missing required key 'servicetitan.tenant_id'"]


def test_health_check_api_makes_the_same_calls(tmp_path: Path, db_dsn: str, st: Any, location: Any) -> None:
    good = cli(["health", "--check-api"], _env(tmp_path, db_dsn, st, location))
    assert "OK servicetitan api: " in good.stdout and "OK ghl location: " in good.stdout, good.stdout + good.stderr
    env = _env(tmp_path, db_dsn, st, location, STSYNC_SERVICETITAN__APP_KEY="ak1.wrong", STSYNC_GHL__TOKEN="pit-bad")
    bad = cli(["health", "--check-api"], env)
    assert bad.returncode == 2
    assert "CRITICAL servicetitan api: ServiceTitan refused access" in bad.stdout
    assert "CRITICAL ghl location: GHL refused the token" in bad.stdout
    assert "ak1.wrong" not in bad.stdout + bad.stderr and "pit-bad" not in bad.stdout + bad.stderr
