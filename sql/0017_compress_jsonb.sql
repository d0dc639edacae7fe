-- What migration 0005 did for every table then, as a function a generated migration calls for each table it
-- adds (stsync.sync.ddl): the table's jsonb columns compressed with lz4 where the server has it, else left on
-- pglz with a notice.
CREATE FUNCTION servicetitan.compress_jsonb(schema_name text, table_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    col record;
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE NOTICE 'PostgreSQL % has no lz4 column compression: %.% stays on pglz', version(), schema_name, table_name;
        RETURN;
    END IF;
    FOR col IN
        SELECT c.column_name FROM information_schema.columns c
         WHERE c.table_schema = schema_name AND c.table_name = compress_jsonb.table_name AND c.data_type = 'jsonb'
         ORDER BY c.column_name
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET COMPRESSION lz4', schema_name, table_name, col.column_name);
    END LOOP;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL server is built without lz4: %.% stays on pglz', schema_name, table_name;
END
$$;
