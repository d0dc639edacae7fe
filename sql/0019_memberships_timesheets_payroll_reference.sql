-- Reference data of memberships, timesheets and payroll (issue 22): membership and recurring service types,
-- activity categories and types, payroll activity and timesheet codes. Written by stsync.sync.ddl from their
-- declarations.

CREATE TABLE servicetitan.st_membership_types (
    st_id bigint NOT NULL,
    name text,
    display_name text,
    billing_template_id bigint,
    discount numeric,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_membership_types (billing_template_id);
CREATE INDEX ON servicetitan.st_membership_types (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_membership_types');

CREATE TABLE servicetitan.st_recurring_service_types (
    st_id bigint NOT NULL,
    name text,
    business_unit_id bigint,
    job_type_id bigint,
    campaign_id bigint,
    invoice_template_id bigint,
    recurrence_interval integer,
    duration_length integer,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_recurring_service_types (business_unit_id);
CREATE INDEX ON servicetitan.st_recurring_service_types (job_type_id);
CREATE INDEX ON servicetitan.st_recurring_service_types (campaign_id);
CREATE INDEX ON servicetitan.st_recurring_service_types (invoice_template_id);
CREATE INDEX ON servicetitan.st_recurring_service_types (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_recurring_service_types');

CREATE TABLE servicetitan.st_activity_categories (
    st_id bigint NOT NULL,
    name text,
    is_default boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_activity_categories (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_activity_categories');

CREATE TABLE servicetitan.st_activity_types (
    st_id bigint NOT NULL,
    code text,
    description text,
    category_id bigint,
    business_unit_id bigint,
    labor_type_id bigint,
    is_archived boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_activity_types (category_id);
CREATE INDEX ON servicetitan.st_activity_types (business_unit_id);
CREATE INDEX ON servicetitan.st_activity_types (labor_type_id);
CREATE INDEX ON servicetitan.st_activity_types (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_activity_types');

CREATE TABLE servicetitan.st_activity_codes (
    st_id bigint NOT NULL,
    name text,
    code text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_activity_codes (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_activity_codes');

CREATE TABLE servicetitan.st_timesheet_codes (
    st_id bigint NOT NULL,
    code text,
    description text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_timesheet_codes (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_timesheet_codes');
