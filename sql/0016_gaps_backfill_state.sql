-- `stsync gap-analysis`, `stsync backfill` and `stsync state`.

-- A record that gap-analysis found gone from ServiceTitan (its list no longer serves it) is kept, marked with
-- the time it was found missing: never silently dropped. The merge clears the mark when the record comes back.
ALTER TABLE servicetitan.st_business_units ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_technicians ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_employees ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_tag_types ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_job_types ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_campaigns ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_call_reasons ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_custom_field_types ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_customers ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_customer_contacts ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_locations ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_location_contacts ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_jobs ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_appointments ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_appointment_assignments ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_estimates ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_estimate_items ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_invoices ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_invoice_items ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_payments ADD COLUMN deleted_at timestamptz;
ALTER TABLE servicetitan.st_installed_equipment ADD COLUMN deleted_at timestamptz;

-- The whole second a record was created in: ServiceTitan prints seven fractional digits and PostgreSQL keeps six,
-- rounding, so a createdOn in the last half microsecond of a second is stored as the next whole second. Such a
-- row (and only a row stored on a whole second) is read from its raw createdOn. gap-analysis compares windows of
-- whole seconds; this puts each record on the side of a bound that ServiceTitan's own filter puts it.
CREATE FUNCTION servicetitan.created_second(record jsonb, created timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN date_trunc('second', created) <> created THEN floor(extract(epoch FROM created))::bigint
        WHEN record ->> 'createdOn' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:?00)?$'
            THEN extract(epoch FROM left(record ->> 'createdOn', 19)::timestamp)::bigint
        ELSE floor(extract(epoch FROM created))::bigint
    END
$$;

-- Backfills log their streams as sync runs do; `stsync state set|reset` logs a note (sync_type 'state').
ALTER TABLE servicetitan.st_sync_log DROP CONSTRAINT st_sync_log_sync_type_check;
ALTER TABLE servicetitan.st_sync_log
    ADD CONSTRAINT st_sync_log_sync_type_check CHECK (sync_type IN ('full', 'incremental', 'backfill', 'state'));
ALTER TABLE servicetitan.st_sync_log ADD COLUMN note text;
