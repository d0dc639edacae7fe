-- Named queries of the database layer, loaded by name with stsync.sqlfile.load("db").

-- name: table_statistics
-- For each table: the rows the planner believes it has (-1: never analyzed nor vacuumed) and the rows changed
-- since its last ANALYZE, as far as the statistics system has heard of them yet.
SELECT n.nspname || '.' || c.relname AS table_name, c.reltuples, coalesce(s.n_mod_since_analyze, 0) AS changed
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.oid = ANY (%(tables)s::regclass[]);
