-- GoHighLevel push: business-unit routing, what was pushed (by hash), retries and dead letters.
-- Rows of integrations.business_units are seeded from the config (ghl.business_units) by stsync,
-- never by this file: ids and pipelines differ per tenant.

CREATE TABLE integrations.business_units (
    st_business_unit_id bigint PRIMARY KEY,
    name text NOT NULL,
    sync_enabled boolean NOT NULL DEFAULT false,
    mode text NOT NULL DEFAULT 'api' CHECK (mode IN ('api', 'webhook')),
    pipeline text,                        -- GHL pipeline name or id (api mode)
    webhook_url text,                     -- inbound webhook-trigger URL (webhook mode)
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (mode <> 'webhook' OR webhook_url IS NOT NULL),
    CHECK (mode <> 'api' OR pipeline IS NOT NULL)
);

-- One GHL contact per ServiceTitan customer.
CREATE TABLE integrations.ghl_contacts (
    st_customer_id bigint PRIMARY KEY,
    ghl_contact_id text,
    location_id text NOT NULL,
    pushed_hash text,                     -- hash of the fields last accepted by GHL
    attempted_hash text,                  -- hash of the fields of the last failed attempt
    sync_status text NOT NULL DEFAULT 'pending' CHECK (sync_status IN ('pending', 'synced', 'failed', 'dead')),
    error text,
    attempts integer NOT NULL DEFAULT 0,
    next_retry_at timestamptz,
    last_pushed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Not unique: two ServiceTitan customers sharing an email or phone are one GHL contact.
CREATE INDEX ON integrations.ghl_contacts (location_id, ghl_contact_id);
CREATE INDEX ON integrations.ghl_contacts (sync_status);

-- One opportunity per (customer, pipeline): GHL's default is one opportunity per contact per pipeline
-- (OPPORTUNITY_NO_DUPLICATE), so every job of the customer in that pipeline maps to it; the latest
-- job (st_job_id) drives its stage.
CREATE TABLE integrations.ghl_opportunities (
    st_customer_id bigint NOT NULL,
    pipeline_id text NOT NULL,
    pipeline text,                        -- the business unit's pipeline setting it was routed by
    st_job_id bigint,
    st_business_unit_id bigint,
    ghl_opportunity_id text,
    location_id text NOT NULL,
    stage_id text,
    stage_name text,
    status text,
    monetary_value numeric,
    pushed_hash text,
    attempted_hash text,
    sync_status text NOT NULL DEFAULT 'pending' CHECK (sync_status IN ('pending', 'synced', 'failed', 'dead')),
    error text,
    attempts integer NOT NULL DEFAULT 0,
    next_retry_at timestamptz,
    last_pushed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_customer_id, pipeline_id)
);
CREATE INDEX ON integrations.ghl_opportunities (location_id, ghl_opportunity_id);
CREATE INDEX ON integrations.ghl_opportunities (st_job_id);
CREATE INDEX ON integrations.ghl_opportunities (sync_status);

-- Webhook mode: a job is posted at most once. The row is written ('sending') before the POST, so a
-- crash mid-post leaves an 'unknown' outcome rather than a second post.
CREATE TABLE integrations.ghl_webhook_posts (
    st_job_id bigint PRIMARY KEY,
    st_business_unit_id bigint NOT NULL,
    url text NOT NULL,
    status text NOT NULL CHECK (status IN ('sending', 'posted', 'failed', 'dead')),
    http_status integer,
    response text,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    next_retry_at timestamptz,
    posted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON integrations.ghl_webhook_posts (status);

-- Jobs of enabled business units whose GHL side is not (yet) in sync.
CREATE VIEW integrations.jobs_pending_ghl_sync AS
SELECT j.st_id AS st_job_id, j.customer_id AS st_customer_id, j.business_unit_id, bu.name AS business_unit,
       bu.mode, j.job_status,
       CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending')
            ELSE coalesce(o.sync_status, 'pending') END AS sync_status,
       coalesce(w.error, o.error, c.error) AS error
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled
  LEFT JOIN integrations.ghl_contacts c ON c.st_customer_id = j.customer_id
  LEFT JOIN integrations.ghl_opportunities o ON o.st_customer_id = j.customer_id AND o.pipeline = bu.pipeline
  LEFT JOIN integrations.ghl_webhook_posts w ON w.st_job_id = j.st_id
 WHERE j.active
   AND CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending') <> 'posted'
            ELSE coalesce(o.sync_status, 'pending') <> 'synced' END;

CREATE VIEW integrations.sync_statistics AS
SELECT 'contacts' AS kind, sync_status AS status, count(*) AS n, max(last_pushed_at) AS last_pushed_at
  FROM integrations.ghl_contacts GROUP BY sync_status
UNION ALL
SELECT 'opportunities', sync_status, count(*), max(last_pushed_at)
  FROM integrations.ghl_opportunities GROUP BY sync_status
UNION ALL
SELECT 'webhook_posts', status, count(*), max(posted_at)
  FROM integrations.ghl_webhook_posts GROUP BY status;
