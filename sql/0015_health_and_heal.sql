-- `stsync health` and `--heal`.

-- A dead letter that `health --heal` has given its one automatic retry: it is not retried by heal again
-- (`stsync ghl retry --dead` still is, by hand).
ALTER TABLE integrations.ghl_contacts ADD COLUMN healed_at timestamptz;
ALTER TABLE integrations.ghl_opportunities ADD COLUMN healed_at timestamptz;
ALTER TABLE integrations.ghl_webhook_posts ADD COLUMN healed_at timestamptz;

-- A webhook-mode business unit's newest posts: whether its URL still takes them (a dead URL answers 404 or 410
-- to every post) is read per unit, newest first, without reading its whole history.
CREATE INDEX ghl_webhook_posts_unit_posted ON integrations.ghl_webhook_posts (st_business_unit_id, posted_at DESC);

-- Runs and pushes, newest first, for `stsync logs` and `stsync stats` (the log has an index per stream only).
CREATE INDEX st_sync_log_started_at ON servicetitan.st_sync_log (started_at DESC);

-- One row per `stsync ghl push` run (not dry runs), for `stsync logs` and `stsync stats`: written when the run
-- ends, with what it did; a run killed before that leaves none (its changes' bookkeeping is committed anyway).
CREATE TABLE integrations.ghl_push_log (
    id bigserial PRIMARY KEY,
    location_id text NOT NULL,
    what text NOT NULL,
    mode text NOT NULL,
    status text NOT NULL CHECK (status IN ('completed', 'partial', 'stopped', 'failed')),
    started_at timestamptz NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint NOT NULL,
    examined integer NOT NULL DEFAULT 0,
    changes integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    requests integer NOT NULL DEFAULT 0,
    counts jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text
);
CREATE INDEX ON integrations.ghl_push_log (started_at DESC);
