-- Named queries of the GHL push, loaded by name with stsync.sqlfile.load("ghl").

-- name: try_lock
SELECT pg_try_advisory_lock(20260523, hashtext('stsync.ghl.push')) AS locked;

-- name: seed_business_unit
-- The config seeds business units once; `stsync bu set|enable|disable` owns them afterwards.
INSERT INTO integrations.business_units (st_business_unit_id, name, sync_enabled, mode, pipeline, webhook_url)
VALUES (%(id)s, %(name)s, %(sync_enabled)s, %(mode)s, %(pipeline)s, %(webhook_url)s)
ON CONFLICT (st_business_unit_id) DO NOTHING;

-- name: list_business_units
SELECT bu.st_business_unit_id AS id, bu.name, bu.sync_enabled, bu.mode, bu.pipeline, bu.webhook_url, bu.updated_at,
       (SELECT count(*) FROM servicetitan.st_jobs j WHERE j.business_unit_id = bu.st_business_unit_id AND j.active) AS jobs
  FROM integrations.business_units bu
 ORDER BY bu.st_business_unit_id;

-- name: set_business_unit
UPDATE integrations.business_units
   SET name = coalesce(%(name)s, name),
       sync_enabled = coalesce(%(sync_enabled)s, sync_enabled),
       mode = coalesce(%(mode)s, mode),
       pipeline = coalesce(%(pipeline)s, pipeline),
       webhook_url = coalesce(%(webhook_url)s, webhook_url),
       updated_at = now()
 WHERE st_business_unit_id = %(id)s
RETURNING st_business_unit_id;

-- name: push_through
-- Where the next push may start reading changes: a write still under way in another transaction stamped its
-- rows with its start time, so "changed since" must not pass the oldest open transaction.
SELECT least(now(), min(xact_start)) AS through FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL;

-- name: push_state
SELECT changes_through, settings_digest, full_at FROM integrations.ghl_push_state WHERE location_id = %(location_id)s;

-- name: save_push_state
INSERT INTO integrations.ghl_push_state AS s (location_id, changes_through, settings_digest, full_at)
VALUES (%(location_id)s, %(through)s, %(digest)s, CASE WHEN %(full)s THEN now() END)
ON CONFLICT (location_id) DO UPDATE
   SET changes_through = EXCLUDED.changes_through, settings_digest = EXCLUDED.settings_digest,
       full_at = coalesce(EXCLUDED.full_at, s.full_at), updated_at = now();

-- name: routing
-- What of the business units' routing decides the push's plan (part of its settings digest).
SELECT st_business_unit_id AS id, sync_enabled, mode, pipeline, webhook_url
  FROM integrations.business_units ORDER BY st_business_unit_id;

-- name: push_customers
-- Every customer with an active job in an enabled business unit, recent work first.
SELECT j.customer_id
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled
 WHERE j.active AND j.customer_id IS NOT NULL
 GROUP BY j.customer_id
 ORDER BY max(coalesce(j.st_modified_on, j.st_created_on)) DESC NULLS LAST, j.customer_id;

-- name: push_customers_changed
-- The customers whose desired GHL state may differ since %(since)s: a mirror row that feeds it changed (the
-- merge stamps last_synced_at only on a change), or its bookkeeping has a retry due, a pulled link or a dead letter
-- resubmitted by `ghl retry --dead` (attempted_hash cleared). Index range scans only: nothing here reads a
-- table whole, so with nothing changed it costs the same on any tenant.
SELECT st_id AS customer_id FROM servicetitan.st_customers WHERE last_synced_at >= %(since)s
UNION SELECT customer_id FROM servicetitan.st_customer_contacts WHERE last_synced_at >= %(since)s
UNION SELECT customer_id FROM servicetitan.st_locations WHERE last_synced_at >= %(since)s
UNION SELECT l.customer_id FROM servicetitan.st_location_contacts lc
        JOIN servicetitan.st_locations l ON l.st_id = lc.location_id
       WHERE lc.last_synced_at >= %(since)s
UNION SELECT customer_id FROM servicetitan.st_jobs WHERE last_synced_at >= %(since)s
UNION SELECT j.customer_id FROM servicetitan.st_appointments a JOIN servicetitan.st_jobs j ON j.st_id = a.job_id
       WHERE a.last_synced_at >= %(since)s
UNION SELECT j.customer_id FROM servicetitan.st_appointment_assignments aa
        JOIN servicetitan.st_jobs j ON j.st_id = aa.job_id
       WHERE aa.last_synced_at >= %(since)s
UNION SELECT j.customer_id FROM servicetitan.st_estimates e JOIN servicetitan.st_jobs j ON j.st_id = e.job_id
       WHERE e.last_synced_at >= %(since)s
UNION SELECT st_customer_id FROM integrations.ghl_contacts
       WHERE location_id = %(location_id)s AND sync_status IN ('failed', 'pending', 'dead')
         AND (sync_status = 'pending' OR next_retry_at <= now() AND (sync_status = 'failed' OR attempted_hash IS NULL))
UNION SELECT st_customer_id FROM integrations.ghl_opportunities
       WHERE location_id = %(location_id)s AND sync_status IN ('failed', 'pending', 'dead')
         AND (sync_status = 'pending' OR next_retry_at <= now() AND (sync_status = 'failed' OR attempted_hash IS NULL))
UNION SELECT j.customer_id FROM integrations.ghl_webhook_posts w JOIN servicetitan.st_jobs j ON j.st_id = w.st_job_id
       WHERE w.status = 'failed' AND w.next_retry_at <= now();

-- name: push_customers_of
-- Of the customers %(ids)s, those with an active job in an enabled business unit, recent work first.
SELECT j.customer_id
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled
 WHERE j.active AND j.customer_id = ANY(%(ids)s::bigint[])
 GROUP BY j.customer_id
 ORDER BY max(coalesce(j.st_modified_on, j.st_created_on)) DESC NULLS LAST, j.customer_id;

-- name: desired_contacts
-- Of the customers %(ids)s, those with an active job in an enabled business unit of one mode, with their first
-- email and phone; when the customer has none of its own, the first of its service locations' contacts.
SELECT c.st_id AS customer_id, c.name, c.street, c.city, c.state, c.zip,
       coalesce(
         (SELECT cc.value FROM servicetitan.st_customer_contacts cc
           WHERE cc.customer_id = c.st_id AND cc.active AND cc.type = 'Email' AND coalesce(cc.value, '') <> ''
           ORDER BY cc.st_id LIMIT 1),
         (SELECT lc.value FROM servicetitan.st_location_contacts lc
            JOIN servicetitan.st_locations l ON l.st_id = lc.location_id AND l.active
           WHERE l.customer_id = c.st_id AND lc.active AND lc.type = 'Email' AND coalesce(lc.value, '') <> ''
           ORDER BY l.st_id, lc.st_id LIMIT 1)) AS email,
       coalesce(
         (SELECT cc.value FROM servicetitan.st_customer_contacts cc
           WHERE cc.customer_id = c.st_id AND cc.active AND cc.type IN ('MobilePhone', 'Phone')
             AND coalesce(cc.value, '') <> ''
           ORDER BY (cc.type = 'MobilePhone') DESC, cc.st_id LIMIT 1),
         (SELECT lc.value FROM servicetitan.st_location_contacts lc
            JOIN servicetitan.st_locations l ON l.st_id = lc.location_id AND l.active
           WHERE l.customer_id = c.st_id AND lc.active AND lc.type IN ('MobilePhone', 'Phone')
             AND coalesce(lc.value, '') <> ''
           ORDER BY (lc.type = 'MobilePhone') DESC, l.st_id, lc.st_id LIMIT 1)) AS phone
  FROM servicetitan.st_customers c
 WHERE c.st_id = ANY(%(ids)s::bigint[])
   AND c.st_id IN (SELECT j.customer_id
                     FROM servicetitan.st_jobs j
                     JOIN integrations.business_units bu
                       ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled AND bu.mode = %(mode)s
                    WHERE j.active AND j.customer_id = ANY(%(ids)s::bigint[]))
 ORDER BY c.st_id;

-- name: desired_jobs
-- The active jobs of the customers %(ids)s in enabled business units of one mode, oldest first, with what decides
-- their stage.
SELECT j.st_id AS job_id, j.customer_id, j.business_unit_id, bu.name AS business_unit, bu.pipeline, bu.webhook_url,
       j.job_number, j.job_status,
       EXISTS (SELECT 1 FROM servicetitan.st_appointments a WHERE a.job_id = j.st_id AND a.active) AS has_appointment,
       e.n_sold, e.n_open, e.n_dismissed, e.sold_total, e.open_total, e.lost_total,
       t.technicians
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu
    ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled AND bu.mode = %(mode)s
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE e.status = 'Sold') AS n_sold,
               count(*) FILTER (WHERE e.status = 'Open') AS n_open,
               count(*) FILTER (WHERE e.status = 'Dismissed') AS n_dismissed,
               sum(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FILTER (WHERE e.status = 'Sold') AS sold_total,
               max(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FILTER (WHERE e.status = 'Open') AS open_total,
               max(coalesce(e.subtotal, 0) + coalesce(e.tax, 0)) FILTER (WHERE e.status = 'Dismissed') AS lost_total
          FROM servicetitan.st_estimates e
         WHERE e.job_id = j.st_id AND e.active) e ON true
  LEFT JOIN LATERAL (
        SELECT string_agg(DISTINCT aa.technician_name, ', ' ORDER BY aa.technician_name) AS technicians
          FROM servicetitan.st_appointment_assignments aa
         WHERE aa.job_id = j.st_id AND aa.active AND aa.technician_name IS NOT NULL) t ON true
 WHERE j.active AND j.customer_id = ANY(%(ids)s::bigint[])
 ORDER BY j.customer_id, j.st_created_on NULLS FIRST, j.st_id;

-- name: contact_rows
-- created_by_push only while no other customer shares the GHL contact: a shared one may hold their opportunities.
SELECT st_customer_id, ghl_contact_id, pushed_hash, attempted_hash, sync_status, attempts, next_retry_at,
       created_by_push AND NOT EXISTS (
           SELECT 1 FROM integrations.ghl_contacts o
            WHERE o.location_id = c.location_id AND o.ghl_contact_id = c.ghl_contact_id
              AND o.st_customer_id <> c.st_customer_id) AS created_by_push
  FROM integrations.ghl_contacts c
 WHERE location_id = %(location_id)s AND st_customer_id = ANY(%(ids)s::bigint[]);

-- name: opportunity_rows
SELECT st_customer_id, pipeline, pipeline_id, ghl_opportunity_id, stage_id, stage_name, status, pushed_hash, attempted_hash,
       sync_status, attempts, next_retry_at, create_started_at, stage_set_by
  FROM integrations.ghl_opportunities
 WHERE location_id = %(location_id)s AND st_customer_id = ANY(%(ids)s::bigint[]);

-- name: contact_synced
-- %(created)s: GHL created the contact for this push (its upsert said new); kept while the id stays the same.
INSERT INTO integrations.ghl_contacts AS c
       (st_customer_id, ghl_contact_id, location_id, pushed_hash, attempted_hash, sync_status, error, attempts,
        next_retry_at, last_pushed_at, created_by_push, dnd)
VALUES (%(customer_id)s, %(ghl_id)s, %(location_id)s, %(hash)s, %(hash)s, 'synced', NULL, 0, NULL, now(), %(created)s,
        %(dnd)s)
ON CONFLICT (location_id, st_customer_id) DO UPDATE
   SET dnd = coalesce(EXCLUDED.dnd, c.dnd),  -- the flag GHL's answer carried (none: as it was)
       created_by_push = CASE WHEN c.ghl_contact_id = EXCLUDED.ghl_contact_id THEN c.created_by_push OR EXCLUDED.created_by_push
                              ELSE EXCLUDED.created_by_push END,
       ghl_contact_id = EXCLUDED.ghl_contact_id, location_id = EXCLUDED.location_id,
       pushed_hash = EXCLUDED.pushed_hash, attempted_hash = EXCLUDED.attempted_hash, sync_status = 'synced',
       error = NULL, attempts = 0, next_retry_at = NULL, last_pushed_at = now(), updated_at = now();

-- name: contact_failed
-- attempts + 1; dead after max_attempts; %(retry_in)s NULL means "only when the data changes".
INSERT INTO integrations.ghl_contacts AS c
       (st_customer_id, location_id, attempted_hash, sync_status, error, attempts, next_retry_at)
VALUES (%(customer_id)s, %(location_id)s, %(hash)s,
        CASE WHEN 1 >= %(max_attempts)s THEN 'dead' ELSE 'failed' END, %(error)s, 1,
        now() + %(retry_in)s::interval)
ON CONFLICT (location_id, st_customer_id) DO UPDATE
   SET attempted_hash = EXCLUDED.attempted_hash,
       attempts = CASE WHEN c.attempted_hash IS DISTINCT FROM EXCLUDED.attempted_hash AND c.sync_status = 'dead'
                       THEN 1 ELSE c.attempts + 1 END,
       sync_status = CASE WHEN (CASE WHEN c.attempted_hash IS DISTINCT FROM EXCLUDED.attempted_hash
                                          AND c.sync_status = 'dead' THEN 1 ELSE c.attempts + 1 END) >= %(max_attempts)s
                          THEN 'dead' ELSE 'failed' END,
       error = EXCLUDED.error, next_retry_at = EXCLUDED.next_retry_at, updated_at = now();

-- name: opportunity_synced
INSERT INTO integrations.ghl_opportunities AS o
       (st_customer_id, pipeline_id, pipeline, st_job_id, st_business_unit_id, ghl_opportunity_id, location_id,
        stage_id, stage_name, status, monetary_value, pushed_hash, attempted_hash, sync_status, error, attempts,
        next_retry_at, last_pushed_at)
VALUES (%(customer_id)s, %(pipeline_id)s, %(pipeline)s, %(job_id)s, %(bu_id)s, %(ghl_id)s, %(location_id)s,
        %(stage_id)s, %(stage_name)s, %(status)s, %(value)s, %(hash)s, %(hash)s, 'synced', NULL, 0, NULL, now())
ON CONFLICT (location_id, st_customer_id, pipeline_id) DO UPDATE
   SET pipeline = EXCLUDED.pipeline, st_job_id = EXCLUDED.st_job_id, st_business_unit_id = EXCLUDED.st_business_unit_id,
       ghl_opportunity_id = EXCLUDED.ghl_opportunity_id, location_id = EXCLUDED.location_id,
       stage_id = EXCLUDED.stage_id, stage_name = EXCLUDED.stage_name, status = EXCLUDED.status,
       monetary_value = EXCLUDED.monetary_value, pushed_hash = EXCLUDED.pushed_hash,
       attempted_hash = EXCLUDED.attempted_hash, sync_status = 'synced', error = NULL, attempts = 0,
       next_retry_at = NULL, last_pushed_at = now(), updated_at = now(), create_started_at = NULL,
       -- a stage a workflow set stays the workflow's while the push keeps it
       stage_set_by = CASE WHEN o.stage_id IS NOT DISTINCT FROM EXCLUDED.stage_id THEN o.stage_set_by END;

-- name: opportunity_claim
-- Committed before an opportunity is created: a create that may have reached GHL unrecorded is looked up
-- before it is tried again.
INSERT INTO integrations.ghl_opportunities AS o
       (st_customer_id, pipeline_id, pipeline, st_job_id, st_business_unit_id, location_id, create_started_at)
VALUES (%(customer_id)s, %(pipeline_id)s, %(pipeline)s, %(job_id)s, %(bu_id)s, %(location_id)s, now())
ON CONFLICT (location_id, st_customer_id, pipeline_id) DO UPDATE
   SET create_started_at = now(), updated_at = now();

-- name: opportunity_failed
INSERT INTO integrations.ghl_opportunities AS o
       (st_customer_id, pipeline_id, pipeline, st_job_id, st_business_unit_id, location_id, attempted_hash,
        sync_status, error, attempts, next_retry_at)
VALUES (%(customer_id)s, %(pipeline_id)s, %(pipeline)s, %(job_id)s, %(bu_id)s, %(location_id)s, %(hash)s,
        CASE WHEN 1 >= %(max_attempts)s THEN 'dead' ELSE 'failed' END, %(error)s, 1,
        now() + %(retry_in)s::interval)
ON CONFLICT (location_id, st_customer_id, pipeline_id) DO UPDATE
   SET attempted_hash = EXCLUDED.attempted_hash, st_job_id = EXCLUDED.st_job_id,
       attempts = CASE WHEN o.attempted_hash IS DISTINCT FROM EXCLUDED.attempted_hash AND o.sync_status = 'dead'
                       THEN 1 ELSE o.attempts + 1 END,
       sync_status = CASE WHEN (CASE WHEN o.attempted_hash IS DISTINCT FROM EXCLUDED.attempted_hash
                                          AND o.sync_status = 'dead' THEN 1 ELSE o.attempts + 1 END) >= %(max_attempts)s
                          THEN 'dead' ELSE 'failed' END,
       error = EXCLUDED.error, next_retry_at = EXCLUDED.next_retry_at, updated_at = now();

-- name: webhook_rows
SELECT st_job_id, status, attempts, next_retry_at FROM integrations.ghl_webhook_posts
 WHERE st_job_id = ANY(%(job_ids)s::bigint[]);

-- name: webhook_claim
-- Written and committed before the POST: a crash mid-post never leads to a second post.
INSERT INTO integrations.ghl_webhook_posts AS w (st_job_id, st_business_unit_id, status, attempts)
VALUES (%(job_id)s, %(bu_id)s, 'sending', 1)
ON CONFLICT (st_job_id) DO UPDATE
   SET status = 'sending', st_business_unit_id = EXCLUDED.st_business_unit_id, attempts = w.attempts + 1, posted_at = now()
 WHERE w.status = 'failed'
RETURNING st_job_id;

-- name: webhook_done
UPDATE integrations.ghl_webhook_posts
   SET status = CASE WHEN %(status)s = 'failed' AND attempts >= %(max_attempts)s THEN 'dead' ELSE %(status)s END,
       http_status = %(http_status)s, response = %(response)s, error = %(error)s,
       next_retry_at = CASE WHEN %(status)s = 'failed' THEN now() + %(retry_in)s::interval END,
       posted_at = now()
 WHERE st_job_id = %(job_id)s;

-- name: webhook_failed_unposted
-- A job that cannot be posted at all (no email or phone): failed with the reason, retried only on request.
INSERT INTO integrations.ghl_webhook_posts (st_job_id, st_business_unit_id, status, error, attempts, next_retry_at)
VALUES (%(job_id)s, %(bu_id)s, 'failed', %(error)s, 0, NULL)
ON CONFLICT (st_job_id) DO UPDATE SET error = EXCLUDED.error, next_retry_at = NULL;

-- name: statistics
SELECT location_id, kind, status, n, last_pushed_at FROM integrations.sync_statistics
 ORDER BY location_id NULLS LAST, kind, status;

-- name: dead_letters
SELECT location_id, 'contact' AS kind, st_customer_id::text AS key, error, attempts, updated_at AS at
  FROM integrations.ghl_contacts WHERE sync_status = 'dead'
UNION ALL
SELECT location_id, 'opportunity', st_customer_id::text || '/' || coalesce(pipeline, pipeline_id), error, attempts,
       updated_at
  FROM integrations.ghl_opportunities WHERE sync_status = 'dead'
UNION ALL
SELECT NULL, 'webhook', st_job_id::text, error, attempts, posted_at
  FROM integrations.ghl_webhook_posts WHERE status = 'dead'
ORDER BY 1 NULLS LAST, 2, 3
LIMIT %(limit)s;

-- name: requeue_failed
-- The configured location's contacts and opportunities; webhook posts belong to no location.
WITH c AS (UPDATE integrations.ghl_contacts SET next_retry_at = now(), attempted_hash = NULL
            WHERE location_id = %(location_id)s AND (sync_status = 'failed' OR (%(dead)s AND sync_status = 'dead'))
           RETURNING 1),
     o AS (UPDATE integrations.ghl_opportunities SET next_retry_at = now(), attempted_hash = NULL
            WHERE location_id = %(location_id)s AND (sync_status = 'failed' OR (%(dead)s AND sync_status = 'dead'))
           RETURNING 1),
     w AS (UPDATE integrations.ghl_webhook_posts SET next_retry_at = now(), status = 'failed', attempts = 0
            WHERE status = 'failed' OR (%(dead)s AND status = 'dead') RETURNING 1)
SELECT (SELECT count(*) FROM c) AS contacts, (SELECT count(*) FROM o) AS opportunities,
       (SELECT count(*) FROM w) AS webhook_posts;

-- name: job_status
SELECT j.st_id AS job_id, j.customer_id, j.business_unit_id, j.job_status, bu.name AS business_unit,
       bu.sync_enabled, bu.mode, bu.pipeline,
       c.ghl_contact_id, c.sync_status AS contact_status, c.error AS contact_error,
       o.ghl_opportunity_id, o.st_job_id AS driving_job_id, o.stage_name, o.status AS opportunity_status,
       o.monetary_value, o.sync_status AS opportunity_sync_status, o.error AS opportunity_error,
       o.attempts AS opportunity_attempts, o.last_pushed_at,
       w.status AS webhook_status, w.error AS webhook_error, w.posted_at
  FROM servicetitan.st_jobs j
  LEFT JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id
  LEFT JOIN integrations.ghl_contacts c ON c.location_id = %(location_id)s AND c.st_customer_id = j.customer_id
  -- a job of a disabled or webhook-mode unit has no opportunity, even if its customer has one in that pipeline
  LEFT JOIN integrations.ghl_opportunities o
         ON o.location_id = %(location_id)s AND o.st_customer_id = j.customer_id AND o.pipeline = bu.pipeline
        AND bu.sync_enabled AND bu.mode = 'api'
  LEFT JOIN integrations.ghl_webhook_posts w ON w.st_job_id = j.st_id
 WHERE j.st_id = %(job_id)s;

-- name: requests_today
SELECT coalesce(sum(requests), 0) AS requests FROM integrations.ghl_daily_requests
 WHERE location_id = %(location_id)s AND day = (now() AT TIME ZONE 'UTC')::date;

-- name: add_requests
INSERT INTO integrations.ghl_daily_requests AS d (location_id, day, requests)
VALUES (%(location_id)s, (now() AT TIME ZONE 'UTC')::date, %(requests)s)
ON CONFLICT (location_id, day) DO UPDATE SET requests = d.requests + EXCLUDED.requests;

-- name: pull_state
SELECT phase, cursor, seen FROM integrations.ghl_pull_state WHERE location_id = %(location_id)s;

-- name: pull_start
-- A pull that has not begun or has finished starts at the first page; an unfinished one goes on.
INSERT INTO integrations.ghl_pull_state (location_id, phase) VALUES (%(location_id)s, 'contacts')
ON CONFLICT (location_id) DO UPDATE
   SET phase = 'contacts', cursor = NULL, seen = 0, started_at = now(), updated_at = now()
 WHERE integrations.ghl_pull_state.phase = 'done'
RETURNING phase;

-- name: pull_contacts_page
-- One page of `ghl pull`: link the page's matched contacts (rows already linked are left alone) and move the
-- cursor, in one statement so a kill loses nothing and repeats nothing.
WITH page AS (
    SELECT * FROM jsonb_to_recordset(%(links)s::jsonb) AS l(customer_id bigint, ghl_id text)
), linked AS (
    INSERT INTO integrations.ghl_contacts (st_customer_id, ghl_contact_id, location_id, sync_status)
    SELECT customer_id, ghl_id, %(location_id)s, 'pending' FROM page
    ON CONFLICT (location_id, st_customer_id) DO UPDATE
       SET ghl_contact_id = EXCLUDED.ghl_contact_id, updated_at = now()
     WHERE integrations.ghl_contacts.ghl_contact_id IS NULL
    RETURNING 1
), moved AS (
    UPDATE integrations.ghl_pull_state
       SET phase = %(phase)s, cursor = %(cursor)s::jsonb, seen = %(seen)s, updated_at = now()
     WHERE location_id = %(location_id)s
)
SELECT count(*) AS linked FROM linked;

-- name: pull_contacts_dnd
-- The page's do-not-disturb flags onto the contacts the bookkeeping links (workflows' opt-outs). After the
-- page's own statement: a kill between the two leaves flags a pull behind, never a link or a cursor.
UPDATE integrations.ghl_contacts c SET dnd = d.dnd, updated_at = now()
  FROM jsonb_to_recordset(%(flags)s::jsonb) AS d(ghl_id text, dnd boolean)
 WHERE c.location_id = %(location_id)s AND c.ghl_contact_id = d.ghl_id AND c.dnd IS DISTINCT FROM d.dnd;

-- name: pull_opportunities_page
-- The opportunities of one page whose contact is linked, in a pipeline a business unit pushes to: linked to
-- that contact's customer (one per customer and pipeline), with the cursor moved in the same statement.
WITH page AS (
    SELECT * FROM jsonb_to_recordset(%(opportunities)s::jsonb)
           AS o(ghl_id text, contact_id text, pipeline_id text, pipeline text, stage_id text, stage_name text,
                status text, value numeric)
), matched AS (
    SELECT DISTINCT ON (c.st_customer_id, p.pipeline_id) c.st_customer_id, p.*
      FROM page p
      JOIN integrations.ghl_contacts c ON c.location_id = %(location_id)s AND c.ghl_contact_id = p.contact_id
     ORDER BY c.st_customer_id, p.pipeline_id, p.ghl_id
), linked AS (
    INSERT INTO integrations.ghl_opportunities
           (st_customer_id, pipeline_id, pipeline, ghl_opportunity_id, location_id, stage_id, stage_name, status,
            monetary_value, sync_status)
    SELECT st_customer_id, pipeline_id, pipeline, ghl_id, %(location_id)s, stage_id, stage_name, status, value,
           'pending'
      FROM matched
    ON CONFLICT (location_id, st_customer_id, pipeline_id) DO UPDATE
       SET ghl_opportunity_id = EXCLUDED.ghl_opportunity_id, stage_id = EXCLUDED.stage_id,
           stage_name = EXCLUDED.stage_name, status = EXCLUDED.status, updated_at = now()
     WHERE integrations.ghl_opportunities.ghl_opportunity_id IS NULL
    RETURNING 1
), moved AS (
    UPDATE integrations.ghl_pull_state
       SET phase = %(phase)s, cursor = %(cursor)s::jsonb, seen = %(seen)s, updated_at = now()
     WHERE location_id = %(location_id)s
)
SELECT (SELECT count(*) FROM matched) AS matched, (SELECT count(*) FROM linked) AS linked;

-- name: push_log
INSERT INTO integrations.ghl_push_log (location_id, what, mode, status, started_at, duration_ms, examined, changes,
                                       failed, requests, counts, error)
VALUES (%(location_id)s, %(what)s, %(mode)s, %(status)s, %(started_at)s,
        (extract(epoch FROM now() - %(started_at)s::timestamptz) * 1000)::bigint, %(examined)s, %(changes)s,
        %(failed)s, %(requests)s, %(counts)s::jsonb, %(error)s);
