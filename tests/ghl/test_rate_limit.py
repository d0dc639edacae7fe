"""Rate limit: a whole push with the client's default pace (98 requests in any 10 s) against the sandbox's
real 100 / 10 s per location is never answered 429. Real time (~30 s at ~9.6 requests/s), so it is a slow
variant; the speed itself is measured, not asserted, by bench/ghl_bench.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stsync.config import GhlConfig
from stsync.ghl.service import push
from stsync.sandbox.ghl import GhlSandbox
from tests.ghl.conftest import config_at, ghl_options, write_config


@pytest.mark.slow
def test_default_limiter_never_sees_a_429(mirror_dsn: str, tmp_path: Path) -> None:
    with GhlSandbox.start(ghl_options(rate_limit=100)) as g:
        config = config_at(write_config(tmp_path, mirror_dsn, g.url, requests_per_10s=GhlConfig().requests_per_10s))
        result = asyncio.run(push(config, "all"))
        assert int(result.exit_code) == 0
        assert result.requests > 100 and g.count_429 == 0
