"""The on-disk ServiceTitan token cache: what it keeps, what it refuses to trust, and how the client uses it."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
import respx

from stsync.config import load_config
from stsync.servicetitan.client import ServiceTitanClient
from stsync.servicetitan.tokens import STALE_AFTER, CachedToken, TokenCache, default_directory
from tests.test_client import AUTH, EXPORT, PAGE, _client, no_waits

__all__ = ["no_waits"]  # the retry-wait switch of the client tests, used here as the same autouse fixture


def _cache(directory: Path, secret: str = "secret-value", auth: str = AUTH) -> TokenCache:
    return TokenCache(directory, auth, "cid", secret)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_stored_token_is_loaded_by_the_next_run_from_a_private_file(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    _cache(directory).store(CachedToken("T1", time.time() + 900))
    loaded = _cache(directory).load(margin=60)
    assert loaded is not None and loaded.value == "T1"
    (path,) = directory.iterdir()
    assert _mode(directory) == 0o700 and _mode(path) == 0o600
    assert "T1" not in repr(loaded) and "secret-value" not in path.name


def test_a_token_about_to_expire_is_not_handed_out(tmp_path: Path) -> None:
    _cache(tmp_path).store(CachedToken("T1", time.time() + 30))
    assert _cache(tmp_path).load(margin=60) is None


def test_other_credentials_or_another_identity_server_miss(tmp_path: Path) -> None:
    _cache(tmp_path).store(CachedToken("T1", time.time() + 900))
    assert _cache(tmp_path, secret="rotated-secret").load(margin=60) is None
    assert _cache(tmp_path, auth="https://auth-integration.example.test").load(margin=60) is None


def test_a_file_others_can_read_is_ignored_then_replaced_by_a_private_one(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.store(CachedToken("T1", time.time() + 900))
    cache.path.chmod(0o644)
    assert cache.load(margin=60) is None
    cache.store(CachedToken("T2", time.time() + 900))
    assert _mode(cache.path) == 0o600
    loaded = cache.load(margin=60)
    assert loaded is not None and loaded.value == "T2"


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"access_token": "T"}', b'{"expires_at": 9e12}', b"[1]"])
def test_a_damaged_file_is_a_miss(tmp_path: Path, content: bytes) -> None:
    cache = _cache(tmp_path)
    cache.path.write_bytes(content)
    cache.path.chmod(0o600)
    assert cache.load(margin=60) is None


def test_a_symlink_in_place_of_the_file_is_not_followed(tmp_path: Path) -> None:
    elsewhere = _cache(tmp_path / "elsewhere")
    elsewhere.store(CachedToken("T1", time.time() + 900))
    cache = _cache(tmp_path / "cache")
    cache.directory.mkdir()
    cache.path.symlink_to(elsewhere.path)
    assert cache.load(margin=60) is None


def test_an_unwritable_directory_turns_the_cache_off_without_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stsync.servicetitan")
    (tmp_path / "a-file").write_text("")
    cache = _cache(tmp_path / "a-file" / "cache")  # a directory cannot be made under a file, even by root
    cache.store(CachedToken("T1", time.time() + 900))
    cache.store(CachedToken("T2", time.time() + 900))
    assert cache.load(margin=60) is None
    lines = [r.getMessage() for r in caplog.records if "token cache" in r.getMessage()]
    assert len(lines) == 1 and "cannot write" in lines[0] and "T1" not in lines[0]


def test_discard_removes_the_refused_token_but_not_a_newer_one(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.store(CachedToken("T1", time.time() + 900))
    cache.discard("T0")  # another run's replacement is kept
    assert cache.load(margin=60) is not None
    cache.discard("T1")
    assert not cache.path.exists()


def test_storing_removes_long_expired_files_of_other_credentials(tmp_path: Path) -> None:
    old, recent = _cache(tmp_path, secret="old"), _cache(tmp_path, secret="recent")
    old.store(CachedToken("T-old", time.time() - STALE_AFTER))
    recent.store(CachedToken("T-recent", time.time() + 900))
    long_ago = time.time() - STALE_AFTER - 60
    os.utime(old.path, (long_ago, long_ago))
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("kept")
    os.utime(unrelated, (long_ago, long_ago))
    _cache(tmp_path).store(CachedToken("T1", time.time() + 900))
    assert not old.path.exists()
    assert recent.path.exists() and unrelated.exists()


def test_default_directory_prefers_systemd_then_xdg_then_home() -> None:
    assert default_directory({"CACHE_DIRECTORY": "/var/cache/stsync:/x", "HOME": "/h"}) == Path("/var/cache/stsync")
    assert default_directory({"XDG_CACHE_HOME": "/xdg", "HOME": "/h"}) == Path("/xdg/stsync")
    assert default_directory({"XDG_CACHE_HOME": "relative", "HOME": "/h"}) == Path("/h/.cache/stsync")
    assert default_directory({}) is None


def test_config_turns_the_cache_off_or_moves_it(tmp_path: Path) -> None:
    env = {"HOME": "/home/op"}
    assert load_config(None, env).servicetitan.token_cache_path(env) == Path("/home/op/.cache/stsync")
    moved = {**env, "STSYNC_SERVICETITAN__TOKEN_CACHE_DIR": str(tmp_path)}
    assert load_config(None, moved).servicetitan.token_cache_path(moved) == tmp_path
    off = {**moved, "STSYNC_SERVICETITAN__TOKEN_CACHE": "false"}
    assert load_config(None, off).servicetitan.token_cache_path(off) is None


# --- the client ---------------------------------------------------------------------------------


def _run(client: ServiceTitanClient) -> None:
    async def go() -> None:
        async with client:
            await client.authenticate()
            await client.export_page("crm", "export/customers", None, False, {})

    asyncio.run(go())


def _token_route(mock: respx.MockRouter, *values: str) -> respx.Route:
    return mock.post(f"{AUTH}/connect/token").mock(
        side_effect=[httpx.Response(200, json={"access_token": v, "expires_in": 900}) for v in values]
    )


@respx.mock
def test_the_next_run_sends_the_cached_token_without_asking_for_one(tmp_path: Path) -> None:
    token = _token_route(respx.mock, "A", "B")
    api = respx.get(EXPORT).mock(return_value=httpx.Response(200, json=PAGE))
    _run(_client(token_cache_dir=tmp_path))
    _run(_client(token_cache_dir=tmp_path))
    assert token.call_count == 1
    assert [c.request.headers["Authorization"] for c in api.calls] == ["Bearer A", "Bearer A"]


@respx.mock
def test_a_cached_token_the_api_refuses_is_replaced_in_memory_and_on_disk(tmp_path: Path) -> None:
    _cache(tmp_path).store(CachedToken("revoked", time.time() + 900))
    token = _token_route(respx.mock, "fresh")
    api = respx.get(EXPORT).mock(side_effect=[httpx.Response(401), httpx.Response(200, json=PAGE)])
    _run(_client(token_cache_dir=tmp_path))
    assert token.call_count == 1
    assert [c.request.headers["Authorization"] for c in api.calls] == ["Bearer revoked", "Bearer fresh"]
    cached = _cache(tmp_path).load(margin=60)
    assert cached is not None and cached.value == "fresh"
