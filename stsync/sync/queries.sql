-- Named queries of the sync engine, loaded by name with stsync.sqlfile.load("sync").
-- Per-stream merge statements are composed from stream declarations in stsync/sync/merge.py.

-- name: try_lock
SELECT pg_try_advisory_lock(20260523, hashtext(%(lock_name)s)) AS locked;

-- name: mark_dead_runs
-- Runs whose process died keep status 'started'; whoever holds the lock knows they are dead.
UPDATE servicetitan.st_sync_log
   SET status = 'failed', error = 'run died before recording completion (killed or crashed)',
       completed_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
 WHERE status = 'started';

-- name: start_log
-- In the transaction of the stream's first page: a killed run leaves no row for a stream that committed nothing.
INSERT INTO servicetitan.st_sync_log (id, run_id, stream, sync_type, status, started_at)
VALUES (COALESCE(%(log_id)s::bigint, nextval(pg_get_serial_sequence('servicetitan.st_sync_log', 'id'))),
        %(run_id)s, %(stream)s, %(sync_type)s, 'started', %(started_at)s)
RETURNING id;

-- name: add_page_to_log
-- %(finish)s on the stream's last page: the row is finished in the same transaction.
UPDATE servicetitan.st_sync_log
   SET records_fetched = records_fetched + %(fetched)s,
       records_created = records_created + %(created)s,
       records_updated = records_updated + %(updated)s,
       records_unchanged = records_unchanged + %(unchanged)s,
       records_quarantined = records_quarantined + %(quarantined)s,
       pages = pages + 1,
       status = CASE WHEN NOT %(finish)s THEN status
                     WHEN records_quarantined + %(quarantined)s > 0 THEN 'partial'
                     ELSE 'completed' END,
       completed_at = CASE WHEN %(finish)s THEN now() ELSE completed_at END,
       duration_ms = CASE WHEN %(finish)s THEN (extract(epoch FROM now() - started_at) * 1000)::bigint
                          ELSE duration_ms END
 WHERE id = %(log_id)s;

-- name: record_empty_page
-- A page without records, all that a stream with nothing new gets: its log row (made, or counted into, as
-- start_log and add_page_to_log would) and its checkpoint in one statement, on the run's own connection in
-- autocommit. So such a stream costs one round trip and opens no connection of its own.
WITH logged AS (
    INSERT INTO servicetitan.st_sync_log AS l (id, run_id, stream, sync_type, status, started_at, pages,
                                               completed_at, duration_ms)
    VALUES (COALESCE(%(log_id)s::bigint, nextval(pg_get_serial_sequence('servicetitan.st_sync_log', 'id'))),
            %(run_id)s, %(stream)s, %(sync_type)s, CASE WHEN %(finish)s THEN 'completed' ELSE 'started' END,
            %(started_at)s, 1, CASE WHEN %(finish)s THEN now() END,
            CASE WHEN %(finish)s THEN (extract(epoch FROM now() - %(started_at)s::timestamptz) * 1000)::bigint END)
    ON CONFLICT (id) DO UPDATE
       SET pages = l.pages + 1,
           status = CASE WHEN NOT %(finish)s THEN l.status
                         WHEN l.records_quarantined > 0 THEN 'partial'
                         ELSE 'completed' END,
           completed_at = CASE WHEN %(finish)s THEN now() ELSE l.completed_at END,
           duration_ms = CASE WHEN %(finish)s THEN (extract(epoch FROM now() - l.started_at) * 1000)::bigint
                              ELSE l.duration_ms END
    RETURNING id
), checkpoint AS (
    INSERT INTO servicetitan.sync_state AS s (key, value, metadata, updated_at)
    SELECT k, v, %(metadata)s::jsonb, now() FROM unnest(%(keys)s::text[], %(values)s::text[]) AS u(k, v)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, updated_at = now()
)
SELECT id FROM logged;

-- name: finish_log
-- How a stream ended, when its last page did not say it: the whole row if none of its pages was committed.
INSERT INTO servicetitan.st_sync_log AS l (id, run_id, stream, sync_type, status, error, started_at, completed_at,
                                           duration_ms)
VALUES (COALESCE(%(log_id)s::bigint, nextval(pg_get_serial_sequence('servicetitan.st_sync_log', 'id'))),
        %(run_id)s, %(stream)s, %(sync_type)s, %(status)s, %(error)s, %(started_at)s, now(),
        (extract(epoch FROM now() - %(started_at)s::timestamptz) * 1000)::bigint)
ON CONFLICT (id) DO UPDATE
   SET status = EXCLUDED.status, error = EXCLUDED.error, completed_at = EXCLUDED.completed_at,
       duration_ms = EXCLUDED.duration_ms
RETURNING id;

-- name: get_state
SELECT key, value FROM servicetitan.sync_state WHERE key LIKE %(prefix)s;

-- name: put_state
INSERT INTO servicetitan.sync_state AS s (key, value, metadata, updated_at)
SELECT k, v, %(metadata)s::jsonb, now() FROM unnest(%(keys)s::text[], %(values)s::text[]) AS u(k, v)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, updated_at = now();

-- name: create_stage
-- The session's staging table for page bodies, made by the session's first page that has records (and made
-- again if that page's transaction rolled back). A page body (up to ~17 MB of JSON) is stored out of line:
-- with the default pglz compression, staging took a quarter of the page merge's time. lz4 compresses it
-- several times faster; a server without lz4 (before PostgreSQL 14, or built without it) stores it
-- uncompressed, which is still faster than pglz.
DO $$
BEGIN
    IF to_regclass('pg_temp.stsync_stage') IS NULL THEN
        CREATE TEMP TABLE stsync_stage (body jsonb NOT NULL) ON COMMIT DELETE ROWS;
        BEGIN
            EXECUTE 'ALTER TABLE stsync_stage ALTER COLUMN body SET COMPRESSION lz4';
        EXCEPTION WHEN feature_not_supported OR syntax_error THEN
            ALTER TABLE stsync_stage ALTER COLUMN body SET STORAGE EXTERNAL;
        END;
    END IF;
END
$$;
