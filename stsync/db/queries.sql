-- Named queries of the database layer, loaded by name with stsync.sqlfile.load("db").

-- name: table_statistics
-- For each table: the rows the planner believes it has (-1: never analyzed nor vacuumed), the rows changed
-- since its last ANALYZE, as far as the statistics system has heard of them yet, and whether this role may
-- analyze it (ANALYZE of someone else's table only warns and does nothing): its owner or a member of the
-- owner's role, a superuser, or on PostgreSQL 17 and later a holder of MAINTAIN.
SELECT n.nspname || '.' || c.relname AS table_name, c.reltuples, coalesce(s.n_mod_since_analyze, 0) AS changed,
       pg_has_role(c.relowner, 'USAGE')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR CASE WHEN current_setting('server_version_num')::int >= 170000
               THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END AS may_analyze
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.oid = ANY (%(tables)s::regclass[]);
