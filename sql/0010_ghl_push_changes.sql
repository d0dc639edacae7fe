-- A push reads only what changed since the location's last complete push. The merge sets last_synced_at
-- only when a record changed (or was first seen), so it is the mirror's change time; these indexes make
-- "changed since" a range scan on every table the push reads.
CREATE INDEX ON servicetitan.st_customers (last_synced_at);
CREATE INDEX ON servicetitan.st_customer_contacts (last_synced_at);
CREATE INDEX ON servicetitan.st_locations (last_synced_at);
CREATE INDEX ON servicetitan.st_location_contacts (last_synced_at);
CREATE INDEX ON servicetitan.st_jobs (last_synced_at);
CREATE INDEX ON servicetitan.st_appointments (last_synced_at);
CREATE INDEX ON servicetitan.st_appointment_assignments (last_synced_at);
CREATE INDEX ON servicetitan.st_estimates (last_synced_at);

-- Bookkeeping rows a push must look at although the mirror did not change: retries due, pulled links and
-- contacts and opportunities that `ghl retry --dead` resubmitted.
CREATE INDEX ON integrations.ghl_contacts (location_id, next_retry_at) WHERE sync_status IN ('failed', 'pending', 'dead');
CREATE INDEX ON integrations.ghl_opportunities (location_id, next_retry_at) WHERE sync_status IN ('failed', 'pending', 'dead');
CREATE INDEX ON integrations.ghl_webhook_posts (next_retry_at) WHERE status = 'failed';

-- Per location: the mirror's changes up to changes_through have been pushed, with these settings (a digest of
-- the stage mapping, protected stages and business-unit routing; when it differs, the next push compares all).
CREATE TABLE integrations.ghl_push_state (
    location_id text PRIMARY KEY,
    changes_through timestamptz NOT NULL,
    settings_digest text NOT NULL,
    full_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
