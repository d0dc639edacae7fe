"""`stsync bu list|set|enable|disable` (seeded from config once, owned by the commands afterwards),
`stsync jobs show`, and the `jobs_pending_ghl_sync` / `sync_statistics` views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.ghl.conftest import INSTALL, PLUMBING, POOL, SALES, default_units, write_config
from tests.ghl.scenario import cli, env_for, push_json, rows


def bu_list(env: dict[str, str]) -> dict[int, dict[str, Any]]:
    proc = cli(["bu", "list", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return {r["id"]: r for r in json.loads(proc.stdout)}


def test_business_units_seed_list_set_enable_disable(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    units = bu_list(env)
    assert set(units) == {SALES, INSTALL, POOL, PLUMBING}
    assert (units[SALES]["sync_enabled"], units[SALES]["mode"], units[SALES]["pipeline"]) == (True, "api", "Sales")
    assert (units[PLUMBING]["sync_enabled"], units[POOL]["mode"]) == (False, "webhook")
    assert units[SALES]["jobs"] > 0
    text = cli(["bu", "list"], env).stdout
    assert any(line.split()[:1] == [str(PLUMBING)] and "disabled" in line for line in text.splitlines())

    assert cli(["bu", "enable", str(PLUMBING)], env).stdout.strip() == f"business unit {PLUMBING} enabled"
    assert cli(["bu", "set", str(PLUMBING), "--pipeline", "Install", "--name", "Plumbing East"], env).returncode == 0
    assert cli(["bu", "disable", str(SALES)], env).returncode == 0
    units = bu_list(env)
    assert (units[PLUMBING]["sync_enabled"], units[PLUMBING]["pipeline"], units[PLUMBING]["name"]) == (
        True,
        "Install",
        "Plumbing East",
    )
    assert units[SALES]["sync_enabled"] is False

    # the config seeds only once: it does not undo the commands, but a new unit in it is added
    more = [*default_units(), {"id": 880215, "name": "Electrical", "pipeline": "Sales", "sync_enabled": False}]
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, units=more))
    units = bu_list(env)
    assert units[SALES]["sync_enabled"] is False and units[PLUMBING]["pipeline"] == "Install"
    assert units[880215]["name"] == "Electrical"

    # mistakes are usage errors naming the unit
    proc = cli(["bu", "enable", "999"], env)
    assert proc.returncode == 2 and "business unit 999 is not configured" in proc.stderr
    proc = cli(["bu", "set", str(SALES), "--mode", "fax"], env)
    assert proc.returncode == 2
    proc = cli(["bu", "set", str(PLUMBING), "--mode", "webhook"], env)  # no URL for it
    assert proc.returncode == 2 and "webhook mode needs --webhook-url" in proc.stderr, proc.stderr

    # a disabled unit's customers get nothing: Sales is off now, Plumbing routes to Install
    code, doc = push_json(env)
    assert code == 0, doc
    routed = rows(mirror_dsn, "SELECT DISTINCT st_business_unit_id FROM integrations.ghl_opportunities")
    assert {r[0] for r in routed} <= {INSTALL, PLUMBING}


def test_jobs_show_and_the_views(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url))
    jobs = rows(
        mirror_dsn,
        "SELECT min(st_id) FILTER (WHERE business_unit_id = %s), min(st_id) FILTER (WHERE business_unit_id = %s) "
        "FROM servicetitan.st_jobs WHERE active",
        (SALES, PLUMBING),
    )[0]
    sales_job, plumbing_job = jobs
    # before any push: every active job of an enabled unit is pending; nothing in the statistics
    assert cli(["bu", "list"], env).returncode == 0  # seeds the units
    pending = rows(
        mirror_dsn,
        "SELECT count(*), count(*) FILTER (WHERE sync_status = 'pending') FROM integrations.jobs_pending_ghl_sync",
    )[0]
    enabled_jobs = rows(
        mirror_dsn,
        "SELECT count(*) FROM servicetitan.st_jobs WHERE active AND business_unit_id = ANY(%s)",
        ([SALES, INSTALL],),
    )[0][0]
    assert pending == (enabled_jobs, enabled_jobs)
    assert rows(mirror_dsn, "SELECT * FROM integrations.sync_statistics") == []
    shown = cli(["jobs", "show", str(sales_job)], env)
    assert shown.returncode == 0 and "sync_enabled: True" in shown.stdout and "ghl_opportunity_id" not in shown.stdout

    assert push_json(env)[0] == 0
    assert rows(mirror_dsn, "SELECT count(*) FROM integrations.jobs_pending_ghl_sync")[0][0] == 0
    stats = {(k, s): n for loc, k, s, n, _ in rows(mirror_dsn, "SELECT * FROM integrations.sync_statistics")}
    assert stats == {
        ("contacts", "synced"): rows(mirror_dsn, "SELECT count(*) FROM integrations.ghl_contacts")[0][0],
        ("opportunities", "synced"): rows(mirror_dsn, "SELECT count(*) FROM integrations.ghl_opportunities")[0][0],
    }
    status = cli(["ghl", "status", "--json"], env)
    assert {(r["kind"], r["status"]) for r in json.loads(status.stdout)["statistics"]} == set(stats)

    doc = json.loads(cli(["jobs", "show", str(sales_job), "--json"], env).stdout)
    opp = rows(
        mirror_dsn,
        "SELECT ghl_opportunity_id, stage_name FROM integrations.ghl_opportunities o "
        "JOIN servicetitan.st_jobs j ON j.customer_id = o.st_customer_id WHERE j.st_id = %s AND o.pipeline = 'Sales'",
        (sales_job,),
    )[0]
    assert (doc["ghl_opportunity_id"], doc["stage_name"]) == opp
    assert doc["opportunity_sync_status"] == "synced" and doc["contact_status"] == "synced"
    assert opp[0] in ghl.dump()["opportunities"]
    text = cli(["jobs", "show", str(sales_job)], env).stdout
    assert f"ghl_opportunity_id: {opp[0]}" in text and "opportunity_sync_status: synced" in text

    doc = json.loads(cli(["jobs", "show", str(plumbing_job), "--json"], env).stdout)
    assert doc["sync_enabled"] is False and doc["ghl_opportunity_id"] is None
    proc = cli(["jobs", "show", "1"], env)
    assert proc.returncode == 2 and "job 1 is not in the mirror" in proc.stderr
