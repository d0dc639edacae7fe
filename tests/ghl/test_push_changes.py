"""A push reads only what changed in the mirror since the location's last complete push: after an incremental
sync it looks at the changed customers alone and leaves GHL exactly where a full comparison would; a write
still open when a push begins is read by the next one; a changed stage mapping compares everything again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stsync.sandbox import Sandbox, SandboxOptions
from tests.ghl.conftest import write_config
from tests.ghl.scenario import check_against_mirror, cli, env_for, push_json, rows


@pytest.fixture
def st() -> Iterator[Any]:
    with Sandbox.start(SandboxOptions(scale="small", seed=11)) as sb:
        yield sb


def test_after_an_incremental_only_the_changed_customers_are_examined(
    st: Any, db_dsn: str, ghl: Any, tmp_path: Path
) -> None:
    env = env_for(st.url, db_dsn, write_config(tmp_path, db_dsn, ghl.url))
    assert cli(["sync", "full"], env).returncode == 0
    code, first = push_json(env)
    assert code == 0 and first["mode"] == "full", first
    everyone = first["examined"]

    st.advance(minutes=240, changes=True)
    st.advance(minutes=20, changes=False)
    assert cli(["sync", "incremental"], env).returncode == 0
    code, later = push_json(env)
    assert code == 0 and later["mode"] == "changes" and later["since"], later
    assert 0 < later["examined"] < everyone
    assert later["planned_total"] > 0

    # Nothing was missed: a full comparison finds nothing left, and GHL matches the mirror.
    code, full = push_json(env, "--dry-run", "--full")
    assert code == 0 and full["mode"] == "full" and full["planned_total"] == 0, full["planned"]
    check_against_mirror(db_dsn, ghl.dump())


def test_a_write_open_when_the_push_began_is_read_by_the_next_push(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    code, first = push_json(env)
    assert code == 0, first
    customer = rows(mirror_dsn, "SELECT min(st_customer_id) FROM integrations.ghl_contacts")[0][0]
    # A sync's page transaction stamps its rows with its start time and commits after a push has begun.
    with psycopg.connect(mirror_dsn) as writer:
        writer.execute(
            "UPDATE servicetitan.st_customers SET last_synced_at = now(), name = name || ' Jr' WHERE st_id = %s",
            (customer,),
        )
        code, during = push_json(env)
        assert code == 0 and during["mode"] == "changes" and during["planned_total"] == 0, during
    code, after = push_json(env)
    assert code == 0, after
    assert after["counts"]["contacts"].get("updated") == 1, after
    assert f"contact update customer={customer} (changed)" in after["planned"]


def test_a_changed_stage_mapping_compares_every_customer(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    code, first = push_json(env)
    assert code == 0, first
    code, again = push_json(env)
    assert code == 0 and (again["mode"], again["examined"]) == ("changes", 0), again
    renamed = write_config(tmp_path, mirror_dsn, ghl.url, protected_stages=["sold"])
    code, changed = push_json(env_for("http://127.0.0.1:9", mirror_dsn, renamed), "--dry-run")
    assert code == 0 and changed["mode"] == "full" and changed["examined"] == first["examined"], changed
