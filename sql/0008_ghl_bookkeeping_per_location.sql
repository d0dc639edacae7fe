-- The push's bookkeeping is per GHL location: the same ServiceTitan customer has one contact (and one
-- opportunity per pipeline) in each location it was pushed to. Switching ghl.location_id (a test location,
-- then production) gives the new location a first push and keeps the old one's maps, digests and dead
-- letters for when it comes back. Webhook posts are per job and URL, not per location: unchanged.
ALTER TABLE integrations.ghl_contacts
    DROP CONSTRAINT ghl_contacts_pkey,
    ADD PRIMARY KEY (location_id, st_customer_id);
ALTER TABLE integrations.ghl_opportunities
    DROP CONSTRAINT ghl_opportunities_pkey,
    ADD PRIMARY KEY (location_id, st_customer_id, pipeline_id);

-- The views say which location each row is about.
DROP VIEW integrations.jobs_pending_ghl_sync;
CREATE VIEW integrations.jobs_pending_ghl_sync AS
SELECT j.st_id AS st_job_id, j.customer_id AS st_customer_id, j.business_unit_id, bu.name AS business_unit,
       bu.mode, j.job_status, c.location_id,
       CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending')
            ELSE coalesce(o.sync_status, 'pending') END AS sync_status,
       coalesce(w.error, o.error, c.error) AS error
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled
  LEFT JOIN integrations.ghl_contacts c ON c.st_customer_id = j.customer_id AND bu.mode = 'api'
  LEFT JOIN integrations.ghl_opportunities o
         ON o.location_id = c.location_id AND o.st_customer_id = j.customer_id AND o.pipeline = bu.pipeline
  LEFT JOIN integrations.ghl_webhook_posts w ON w.st_job_id = j.st_id
 WHERE j.active
   AND CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending') <> 'posted'
            ELSE coalesce(o.sync_status, 'pending') <> 'synced' END;

DROP VIEW integrations.sync_statistics;
CREATE VIEW integrations.sync_statistics AS
SELECT location_id, 'contacts' AS kind, sync_status AS status, count(*) AS n, max(last_pushed_at) AS last_pushed_at
  FROM integrations.ghl_contacts GROUP BY location_id, sync_status
UNION ALL
SELECT location_id, 'opportunities', sync_status, count(*), max(last_pushed_at)
  FROM integrations.ghl_opportunities GROUP BY location_id, sync_status
UNION ALL
SELECT NULL, 'webhook_posts', status, count(*), max(posted_at)
  FROM integrations.ghl_webhook_posts GROUP BY status;
