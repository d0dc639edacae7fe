-- Bookkeeping for `stsync sync`: one log row per stream per run, feed checkpoints, quarantined records.

CREATE TABLE servicetitan.st_sync_log (
    id bigserial PRIMARY KEY,
    run_id uuid NOT NULL,
    stream text NOT NULL,
    sync_type text NOT NULL CHECK (sync_type IN ('full', 'incremental')),
    status text NOT NULL CHECK (status IN ('started', 'completed', 'failed', 'partial')),
    records_fetched bigint NOT NULL DEFAULT 0,
    records_created bigint NOT NULL DEFAULT 0,
    records_updated bigint NOT NULL DEFAULT 0,
    records_unchanged bigint NOT NULL DEFAULT 0,
    records_quarantined bigint NOT NULL DEFAULT 0,
    pages bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    duration_ms bigint,
    error text
);
CREATE INDEX ON servicetitan.st_sync_log (run_id);
CREATE INDEX ON servicetitan.st_sync_log (stream, started_at DESC);

-- Key/value checkpoints: '<stream>.continue_from' (export token after the last committed page),
-- '<stream>.high_water' (max modifiedOn committed), '<stream>.walk' (full walk in progress or done),
-- and 'lastJobPull' for the seed's job sync. Written in the same transaction as the page they describe.
CREATE TABLE servicetitan.sync_state (
    key text PRIMARY KEY,
    value text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE servicetitan.st_sync_quarantine (
    id bigserial PRIMARY KEY,
    stream text NOT NULL,
    st_id bigint,
    payload jsonb NOT NULL,
    reason text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    seen_count integer NOT NULL DEFAULT 1,
    resolved_at timestamptz
);
-- One open quarantine row per (stream, id); a record that later arrives valid resolves it.
CREATE UNIQUE INDEX st_sync_quarantine_open ON servicetitan.st_sync_quarantine (stream, st_id)
    WHERE resolved_at IS NULL AND st_id IS NOT NULL;
