-- Named queries of the sync engine, loaded by name with stsync.sqlfile.load("sync").
-- Per-stream merge statements are composed from stream declarations in stsync/sync/merge.py.

-- name: try_lock
SELECT pg_try_advisory_lock(20260523, hashtext(%(lock_name)s)) AS locked;

-- name: unlock
SELECT pg_advisory_unlock(20260523, hashtext(%(lock_name)s));

-- name: mark_dead_runs
-- Runs whose process died keep status 'started'; whoever holds the lock knows they are dead.
UPDATE servicetitan.st_sync_log
   SET status = 'failed', error = 'run died before recording completion (killed or crashed)',
       completed_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
 WHERE status = 'started';

-- name: start_log
INSERT INTO servicetitan.st_sync_log (run_id, stream, sync_type, status)
VALUES (%(run_id)s, %(stream)s, %(sync_type)s, 'started')
RETURNING id;

-- name: add_page_to_log
UPDATE servicetitan.st_sync_log
   SET records_fetched = records_fetched + %(fetched)s,
       records_created = records_created + %(created)s,
       records_updated = records_updated + %(updated)s,
       records_unchanged = records_unchanged + %(unchanged)s,
       records_quarantined = records_quarantined + %(quarantined)s,
       pages = pages + 1
 WHERE id = %(log_id)s;

-- name: finish_log
UPDATE servicetitan.st_sync_log
   SET status = %(status)s, error = %(error)s, completed_at = now(),
       duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
 WHERE id = %(log_id)s;

-- name: get_state
SELECT key, value FROM servicetitan.sync_state WHERE key LIKE %(prefix)s;

-- name: put_state
INSERT INTO servicetitan.sync_state AS s (key, value, metadata, updated_at)
SELECT k, v, %(metadata)s::jsonb, now() FROM unnest(%(keys)s::text[], %(values)s::text[]) AS u(k, v)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, updated_at = now();

-- name: create_stage
CREATE TEMP TABLE IF NOT EXISTS stsync_stage (body jsonb NOT NULL) ON COMMIT DELETE ROWS;
