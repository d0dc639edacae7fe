-- Named queries of `stsync health`, `state`, `logs` and `stats`, loaded by name with stsync.sqlfile.load("ops").
-- Health reads each table through an index: it runs every few minutes against a mirror of millions of rows.

-- name: health_streams
-- Per stream: its newest success and its newest finished run, each one probe of (stream, started_at DESC).
SELECT s.stream, ok.completed_at AS last_success, last.status AS last_status, last.error AS last_error,
       last.completed_at AS last_finished
  FROM unnest(%(streams)s::text[]) AS s(stream)
  LEFT JOIN LATERAL (SELECT l.completed_at FROM servicetitan.st_sync_log l
                      WHERE l.stream = s.stream AND l.status IN ('completed', 'partial')
                        AND l.sync_type IN ('full', 'incremental')  -- a backfill moves no cursor
                      ORDER BY l.started_at DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT l.status, l.error, l.completed_at FROM servicetitan.st_sync_log l
                      WHERE l.stream = s.stream AND l.status <> 'started' AND l.sync_type <> 'state'
                      ORDER BY l.started_at DESC LIMIT 1) last ON true;

-- name: health_quarantine
SELECT count(*) AS open, count(*) FILTER (WHERE first_seen > %(now)s::timestamptz - interval '24 hours') AS new_24h
  FROM servicetitan.st_sync_quarantine WHERE resolved_at IS NULL;

-- name: health_ghl
-- Dead letters (on the sync_status indexes), how far the push has read the mirror's changes, and the oldest
-- mirror change after that (on the last_synced_at indexes), and the oldest retry past due.
WITH through AS (
    SELECT changes_through FROM integrations.ghl_push_state WHERE location_id = %(location_id)s
)
SELECT (SELECT count(*) FROM integrations.ghl_contacts WHERE sync_status = 'dead') AS dead_contacts,
       (SELECT count(*) FROM integrations.ghl_opportunities WHERE sync_status = 'dead') AS dead_opportunities,
       (SELECT count(*) FROM integrations.ghl_webhook_posts WHERE status = 'dead') AS dead_webhook_posts,
       (SELECT changes_through FROM through) AS changes_through,
       (SELECT least(
            (SELECT min(last_synced_at) FROM servicetitan.st_customers WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_customer_contacts WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_locations WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_location_contacts WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_jobs WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_appointments WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_appointment_assignments
              WHERE last_synced_at > t.changes_through),
            (SELECT min(last_synced_at) FROM servicetitan.st_estimates WHERE last_synced_at > t.changes_through))
          FROM through t) AS oldest_unpushed,
       (SELECT least(
            (SELECT min(next_retry_at) FROM integrations.ghl_contacts
              WHERE location_id = %(location_id)s AND sync_status = 'failed' AND next_retry_at <= %(now)s),
            (SELECT min(next_retry_at) FROM integrations.ghl_opportunities
              WHERE location_id = %(location_id)s AND sync_status = 'failed' AND next_retry_at <= %(now)s))) AS oldest_retry_due;

-- name: health_dead_webhooks
-- Webhook-mode business units whose newest post, after its retries, is dead: their URL takes no posts.
SELECT bu.st_business_unit_id AS id, bu.name, p.http_status, p.error
  FROM integrations.business_units bu
 CROSS JOIN LATERAL (SELECT w.status, w.http_status, w.error FROM integrations.ghl_webhook_posts w
                      WHERE w.st_business_unit_id = bu.st_business_unit_id AND w.status IN ('posted', 'dead')
                      ORDER BY w.posted_at DESC LIMIT 1) p
 WHERE bu.mode = 'webhook' AND bu.sync_enabled AND p.status = 'dead'
 ORDER BY bu.st_business_unit_id;

-- name: health_events
-- The data of `stsync workflows status`, read through the partial indexes of migration 0014: the oldest event
-- not matched yet, steps late past %(late)s, leases run out, dead steps.
SELECT (SELECT detected_at FROM automation.events WHERE processed_at IS NULL ORDER BY id LIMIT 1) AS oldest_pending,
       (SELECT count(*) FROM automation.events WHERE processed_at IS NULL) AS pending,
       (SELECT min(due_at) FROM automation.workflow_steps WHERE state = 'waiting') AS oldest_due,
       (SELECT count(*) FROM automation.workflow_steps WHERE state = 'waiting' AND due_at <= %(late)s) AS late,
       (SELECT count(*) FROM automation.workflow_steps WHERE state = 'running' AND claimed_until < %(now)s)
           AS expired_leases,
       (SELECT count(*) FROM automation.workflow_steps WHERE state = 'dead') AS dead;

-- name: health_locks
-- Who holds stsync's run locks (stsync.sync.repository.RunLock, the push's): the advisory lock's key pair is
-- (20260523, hashtext(name)), which pg_locks shows as classid and objid (the int4 read as an unsigned oid).
WITH names(name, what) AS (VALUES (%(sync_lock)s, 'sync'), ('stsync.ghl.push', 'ghl push'))
SELECT n.what, a.pid, a.backend_start AS since, a.application_name
  FROM names n
  JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.classid = 20260523 AND l.objsubid = 2
                 AND l.objid = (hashtext(n.name)::bigint & 4294967295)::oid
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 ORDER BY n.what;

-- name: health_dead_runs
-- Log rows still 'started' (the partial index st_sync_log_started): a run under way, or one that died.
SELECT count(*) AS n, min(started_at) AS oldest FROM servicetitan.st_sync_log WHERE status = 'started';

-- name: heal_release_leases
-- Steps whose poll died holding them (the lease ran out): back to waiting, for the next `events poll`. An
-- attempt it had started is closed as 'unknown', as the poll's own reclaim does (the action may have happened).
WITH c AS (
    SELECT instance_id, step_no FROM automation.workflow_steps
     WHERE state = 'running' AND claimed_until < %(now)s
       FOR UPDATE SKIP LOCKED
),
lost AS (
    UPDATE automation.workflow_step_executions x
       SET finished_at = %(now)s, result = 'unknown', error = 'the poll running it stopped before recording the result'
      FROM c
     WHERE (x.instance_id, x.step_no) = (c.instance_id, c.step_no) AND x.finished_at IS NULL
    RETURNING 1
)
UPDATE automation.workflow_steps s
   SET state = 'waiting', claim_id = NULL, claimed_until = NULL
  FROM c WHERE (s.instance_id, s.step_no) = (c.instance_id, c.step_no)
RETURNING (SELECT count(*) FROM lost) AS lost;

-- name: heal_dead_letters
-- Each dead letter dead since before %(before)s gets one more round of attempts from the next `ghl push`, once:
-- healed_at marks it, and heal never requeues it again. Contacts and opportunities of the configured location;
-- webhook posts belong to no location.
WITH c AS (UPDATE integrations.ghl_contacts SET next_retry_at = %(now)s, attempted_hash = NULL, healed_at = %(now)s
            WHERE sync_status = 'dead' AND location_id = %(location_id)s AND healed_at IS NULL
              AND updated_at < %(before)s
           RETURNING 1),
     o AS (UPDATE integrations.ghl_opportunities SET next_retry_at = %(now)s, attempted_hash = NULL,
                  healed_at = %(now)s
            WHERE sync_status = 'dead' AND location_id = %(location_id)s AND healed_at IS NULL
              AND updated_at < %(before)s
           RETURNING 1),
     w AS (UPDATE integrations.ghl_webhook_posts SET status = 'failed', attempts = 0, next_retry_at = %(now)s,
                  healed_at = %(now)s
            WHERE status = 'dead' AND healed_at IS NULL AND posted_at < %(before)s
           RETURNING 1)
SELECT (SELECT count(*) FROM c) AS contacts, (SELECT count(*) FROM o) AS opportunities,
       (SELECT count(*) FROM w) AS webhook_posts;

-- name: gap_cutoffs
-- `stsync gap-analysis`: each stream's high-water mark (the newest modifiedOn committed).
SELECT key, value FROM servicetitan.sync_state WHERE key = ANY(%(keys)s);

-- name: gap_mirror_count
-- The mirror's records of one stream ({scope}) created before its high-water mark rounded down to a whole
-- second, and that second (the end of every window of the deep walk).
WITH mark AS (SELECT floor(extract(epoch FROM %(mark)s::timestamptz))::bigint AS cutoff)
SELECT (SELECT count(*) FROM servicetitan.{table}
         WHERE deleted_at IS NULL AND servicetitan.created_second(full_data, st_created_on) < mark.cutoff {scope}),
       mark.cutoff
  FROM mark;

-- name: gap_mirror_ids
-- The same records' ids and creation seconds, in creation order, for the deep walk's windows.
SELECT st_id, c.second
  FROM servicetitan.{table}, LATERAL servicetitan.created_second(full_data, st_created_on) AS c(second)
 WHERE deleted_at IS NULL AND c.second < %(cutoff)s {scope}
 ORDER BY c.second, st_id;

-- name: gap_mark_deleted
-- Records ServiceTitan no longer serves: marked with the time they were found missing, never deleted. They are
-- inactive too, so every reader that keeps to active rows (the GHL push, events) leaves them alone, and changed
-- (last_synced_at), so the next push that reads the mirror's changes sees them.
UPDATE servicetitan.{table} SET deleted_at = %(now)s, active = false, last_synced_at = now()
 WHERE st_id = ANY(%(ids)s) AND deleted_at IS NULL {scope};

-- name: gap_orphans
-- Rows of {child} whose {column} names a row {parent} lacks (or has marked deleted).
SELECT c.st_id, c.{column} FROM servicetitan.{child} c
 WHERE c.deleted_at IS NULL AND c.{column} IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM servicetitan.{parent} p WHERE p.st_id = c.{column} AND p.deleted_at IS NULL)
 ORDER BY c.st_id;

-- name: state_list
-- `stsync state list`: the checkpoints, optionally those under one prefix ('jobs.').
SELECT key, value, updated_at FROM servicetitan.sync_state
 WHERE %(prefix)s::text IS NULL OR starts_with(key, %(prefix)s)
 ORDER BY key;

-- name: state_set
-- `stsync state set`: one checkpoint, and what it was.
WITH old AS (SELECT value FROM servicetitan.sync_state WHERE key = %(key)s)
INSERT INTO servicetitan.sync_state AS s (key, value, metadata, updated_at)
VALUES (%(key)s, %(value)s, '{"set_by": "stsync state set"}'::jsonb, now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, updated_at = now()
RETURNING (SELECT value FROM old) AS old_value, (SELECT count(*) FROM old) AS existed;

-- name: state_reset
-- `stsync state reset STREAM`: every checkpoint of the stream, gone (its next run walks it from the start).
DELETE FROM servicetitan.sync_state WHERE starts_with(key, %(prefix)s) RETURNING key, value;

-- name: state_note
-- A change to the checkpoints, in the sync log beside the runs it affects.
INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status, started_at, completed_at, duration_ms, note)
VALUES (%(run_id)s, %(stream)s, 'state', 'completed', now(), now(), 0, %(note)s);

-- name: logs
-- `stsync logs`: sync log rows and GHL push runs, newest first (each side through its started_at index).
(SELECT l.started_at, l.completed_at, 'sync ' || l.sync_type AS kind, l.stream AS name, l.status, l.duration_ms,
        jsonb_build_object('fetched', l.records_fetched, 'created', l.records_created, 'updated', l.records_updated,
                           'unchanged', l.records_unchanged, 'quarantined', l.records_quarantined,
                           'pages', l.pages) AS counts,
        coalesce(l.error, l.note) AS message, l.run_id::text AS run
   FROM servicetitan.st_sync_log l
  WHERE %(sync)s AND (%(since)s::timestamptz IS NULL OR l.started_at >= %(since)s::timestamptz)
    AND (%(stream)s::text IS NULL OR l.stream = %(stream)s) AND (%(status)s::text IS NULL OR l.status = %(status)s)
  ORDER BY l.started_at DESC LIMIT %(limit)s)
UNION ALL
(SELECT p.started_at, p.completed_at, 'ghl push' AS kind, p.location_id || ' ' || p.what || ' ' || p.mode AS name,
        p.status, p.duration_ms,
        jsonb_build_object('examined', p.examined, 'changes', p.changes, 'failed', p.failed,
                           'requests', p.requests) AS counts,
        p.error AS message, NULL AS run
   FROM integrations.ghl_push_log p
  WHERE %(push)s AND (%(since)s::timestamptz IS NULL OR p.started_at >= %(since)s::timestamptz)
    AND (%(status)s::text IS NULL OR p.status = %(status)s)
  ORDER BY p.started_at DESC LIMIT %(limit)s)
ORDER BY started_at DESC LIMIT %(limit)s;

-- name: stats_sync
-- `stsync stats`: per stream and per day (UTC), its runs since a date.
SELECT (date_trunc('day', started_at))::date AS day, stream, count(*) AS runs,
       count(*) FILTER (WHERE status = 'failed') AS failed, sum(records_fetched)::bigint AS fetched,
       sum(records_created)::bigint AS created, sum(records_updated)::bigint AS updated,
       sum(records_unchanged)::bigint AS unchanged, sum(records_quarantined)::bigint AS quarantined,
       coalesce(sum(duration_ms), 0)::bigint AS duration_ms
  FROM servicetitan.st_sync_log
 WHERE started_at >= %(since)s AND sync_type <> 'state'
 GROUP BY 1, 2 ORDER BY 1 DESC, 2;

-- name: stats_push
-- And per GHL location and day, its pushes: requests made, changes sent, changes that failed.
SELECT (date_trunc('day', started_at))::date AS day, location_id, count(*) AS pushes,
       count(*) FILTER (WHERE status = 'failed') AS failed_runs, sum(requests)::bigint AS requests,
       sum(changes)::bigint AS changes, sum(failed)::bigint AS failed,
       coalesce(sum(duration_ms), 0)::bigint AS duration_ms
  FROM integrations.ghl_push_log
 WHERE started_at >= %(since)s
 GROUP BY 1, 2 ORDER BY 1 DESC, 2;

-- name: stream_rows
-- `stsync streams list`: one stream's rows ({scope}: custom field types share a table), all and live ones.
SELECT count(*) AS rows, count(*) FILTER (WHERE active AND deleted_at IS NULL) AS live
  FROM servicetitan.{table} WHERE true {scope};
