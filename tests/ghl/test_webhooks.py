"""Webhook mode: a business unit routed to an inbound webhook-trigger URL gets each job's flat JSON once,
always with an email or a phone; a URL that answers 200 without an `id` is reported as dead and can be
fixed with `stsync bu set` and resubmitted with `stsync ghl retry --dead`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.ghl.conftest import LOCATION, POOL, default_units, write_config
from tests.ghl.scenario import cli, env_for, push_json, rows

POOL_JOBS = "SELECT st_id FROM servicetitan.st_jobs WHERE business_unit_id = %s AND active AND customer_id IS NOT NULL"
POSTS = "SELECT st_job_id, status, attempts, error FROM integrations.ghl_webhook_posts ORDER BY 1"


def test_jobs_are_posted_once_with_email_or_phone(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    url = ghl.webhook_url("pool")
    env = env_for(
        "http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, units=default_units(url))
    )
    code, doc = push_json(env, "opportunities")
    jobs = {r[0] for r in rows(mirror_dsn, POOL_JOBS, (POOL,))}
    payloads = ghl.dump()["webhooks"]["pool"]
    posts = {r[0]: r for r in rows(mirror_dsn, POSTS)}
    assert set(posts) == jobs
    posted = {j for j, r in posts.items() if r[1] == "posted"}
    assert {p["stJobId"] for p in payloads} == posted and len(payloads) == len(posted)
    for p in payloads:
        assert p.get("email") or p.get("phone"), p
        assert p["businessUnitId"] == POOL and p["source"] == "stsync"
        assert not any(isinstance(v, list | dict) for v in p.values()), p  # flat: GHL cannot map arrays
    unposted = {j: r for j, r in posts.items() if r[1] != "posted"}
    assert all(r[1] == "failed" and "no email or phone" in r[3] for r in unposted.values())
    assert code == (1 if unposted else 0) and doc["counts"]["webhooks"]["posted"] == len(posted)
    # never twice
    code, doc = push_json(env, "opportunities")
    assert code == 0 and len(ghl.dump()["webhooks"]["pool"]) == len(payloads)
    # pending view: only the jobs that cannot be posted are still pending
    pending = rows(
        mirror_dsn, "SELECT st_job_id FROM integrations.jobs_pending_ghl_sync WHERE business_unit_id = %s", (POOL,)
    )
    assert {r[0] for r in pending} == set(unposted)


def test_a_200_without_id_is_a_dead_url(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    dead_url = f"{ghl.url}/hooks/{LOCATION}/webhook-trigger/{uuid.uuid4()}"  # not a known trigger
    config = write_config(tmp_path, mirror_dsn, ghl.url, units=default_units(dead_url))
    env = env_for("http://127.0.0.1:9", mirror_dsn, config)
    proc = cli(["ghl", "push", "opportunities"], env)
    assert proc.returncode == 1, proc.stderr
    assert f"dead webhook URL: business unit {POOL} (Pool) answered without an id" in proc.stderr
    assert "webhooks[" in proc.stdout and "dead=1" in proc.stdout
    assert dead_url not in proc.stderr + proc.stdout  # the URL is a secret of sorts
    dead = [r for r in rows(mirror_dsn, POSTS) if r[1] == "dead"]
    assert len(dead) == 1 and "without an id" in dead[0][3]
    assert ghl.dump()["webhooks"] == {}
    assert "dead webhook" in cli(["ghl", "status"], env).stdout

    live = ghl.webhook_url("pool")
    assert cli(["bu", "set", str(POOL), "--webhook-url", live], env).returncode == 0
    proc = cli(["ghl", "retry", "--dead"], env)
    assert "webhook_posts=1" in proc.stdout
    posted = {r[0] for r in rows(mirror_dsn, POSTS) if r[1] == "posted"}
    assert dead[0][0] in posted
    assert {p["stJobId"] for p in ghl.dump()["webhooks"]["pool"]} == posted


def test_webhook_urls_appear_in_no_output_log_or_table(mirror_dsn: str, ghl: Any, tmp_path: Path) -> None:
    """A webhook-trigger URL is a secret: not in the push's output or its --debug log, not in `bu list`,
    `config show` or `ghl status`, and not in the post log (which keeps the business unit)."""
    url = ghl.webhook_url("pool")
    secret = url.split("/hooks/", 1)[1]
    env = env_for(
        "http://127.0.0.1:9", mirror_dsn, write_config(tmp_path, mirror_dsn, ghl.url, units=default_units(url))
    )
    push = cli(["--debug", "ghl", "push"], env)
    assert push.returncode in (0, 1), push.stderr[-2000:]
    assert ghl.dump()["webhooks"]["pool"], "the run posted to the webhook"
    assert "POST 127.0.0.1" in push.stderr and "/******** 200" in push.stderr, "debug request lines"
    outputs = [push.stdout + push.stderr]
    for args in (["bu", "list"], ["bu", "list", "--json"], ["config", "show"], ["ghl", "status"]):
        proc = cli(args, env)
        assert proc.returncode in (0, 1), (args, proc.stderr)
        outputs.append(proc.stdout + proc.stderr)
    for output in outputs:
        assert secret not in output
    assert "********" in outputs[3], "config show names the masked URL"
    stored = rows(mirror_dsn, "SELECT row_to_json(w)::text FROM integrations.ghl_webhook_posts w")
    assert stored and not any(secret in r[0] for r in stored)
