-- Where `stsync ghl pull` has got to in a location: it pages through the contacts, then the opportunities,
-- and commits each page's links together with the cursor of the next page, so a killed pull resumes there.
CREATE TABLE integrations.ghl_pull_state (
    location_id text PRIMARY KEY,
    phase text NOT NULL CHECK (phase IN ('contacts', 'opportunities', 'done')),
    cursor jsonb,  -- the next page: {"searchAfter": […]} or {"startAfterId": …, "startAfter": …}; null = first
    seen integer NOT NULL DEFAULT 0,  -- records of the phase read so far
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
