-- jobs_pending_ghl_sync said which location a row is about only through the customer's contact rows, so a
-- job whose customer had never been pushed to one of two locations was not listed as pending there. Now every
-- api-mode job has a row per location stsync has pushed to (webhook posts are per job, not per location).
DROP VIEW integrations.jobs_pending_ghl_sync;
CREATE VIEW integrations.jobs_pending_ghl_sync AS
WITH locations AS (
    SELECT location_id FROM integrations.ghl_push_state
    UNION
    SELECT DISTINCT location_id FROM integrations.ghl_contacts
)
SELECT j.st_id AS st_job_id, j.customer_id AS st_customer_id, j.business_unit_id, bu.name AS business_unit,
       bu.mode, j.job_status, l.location_id,
       CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending')
            ELSE coalesce(o.sync_status, 'pending') END AS sync_status,
       coalesce(w.error, o.error, c.error) AS error
  FROM servicetitan.st_jobs j
  JOIN integrations.business_units bu ON bu.st_business_unit_id = j.business_unit_id AND bu.sync_enabled
  LEFT JOIN locations l ON bu.mode = 'api'
  LEFT JOIN integrations.ghl_contacts c ON c.location_id = l.location_id AND c.st_customer_id = j.customer_id
  LEFT JOIN integrations.ghl_opportunities o
         ON o.location_id = l.location_id AND o.st_customer_id = j.customer_id AND o.pipeline = bu.pipeline
  LEFT JOIN integrations.ghl_webhook_posts w ON w.st_job_id = j.st_id AND bu.mode = 'webhook'
 WHERE j.active
   AND CASE WHEN bu.mode = 'webhook' THEN coalesce(w.status, 'pending') <> 'posted'
            ELSE coalesce(o.sync_status, 'pending') <> 'synced' END;
