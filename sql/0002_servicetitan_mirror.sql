-- The ServiceTitan mirror: one table per resource (generated once from stsync/sync/streams.py;
-- tests/test_streams_schema.py keeps the two in step). full_data is the record exactly as received.

CREATE TABLE servicetitan.st_business_units (
    st_id bigint NOT NULL,
    name text,
    official_name text,
    email text,
    phone_number text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_business_units (st_modified_on);

CREATE TABLE servicetitan.st_technicians (
    st_id bigint NOT NULL,
    name text,
    user_id bigint,
    business_unit_id bigint,
    email text,
    phone_number text,
    login_name text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_technicians (business_unit_id);
CREATE INDEX ON servicetitan.st_technicians (st_modified_on);

CREATE TABLE servicetitan.st_employees (
    st_id bigint NOT NULL,
    name text,
    user_id bigint,
    role text,
    business_unit_id bigint,
    email text,
    phone_number text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_employees (business_unit_id);
CREATE INDEX ON servicetitan.st_employees (st_modified_on);

CREATE TABLE servicetitan.st_tag_types (
    st_id bigint NOT NULL,
    name text,
    code text,
    color text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_tag_types (st_modified_on);

CREATE TABLE servicetitan.st_job_types (
    st_id bigint NOT NULL,
    name text,
    priority text,
    duration bigint,
    class text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_job_types (st_modified_on);

CREATE TABLE servicetitan.st_campaigns (
    st_id bigint NOT NULL,
    name text,
    category_name text,
    source text,
    medium text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_campaigns (st_modified_on);

CREATE TABLE servicetitan.st_call_reasons (
    st_id bigint NOT NULL,
    name text,
    is_lead boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_call_reasons (st_modified_on);

CREATE TABLE servicetitan.st_custom_field_types (
    entity text NOT NULL,
    st_id bigint NOT NULL,
    name text,
    data_type text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, st_id)
);
CREATE INDEX ON servicetitan.st_custom_field_types (st_modified_on);

CREATE TABLE servicetitan.st_customers (
    st_id bigint NOT NULL,
    name text,
    type text,
    balance numeric,
    street text,
    city text,
    state text,
    zip text,
    merged_to_id bigint,
    do_not_service boolean,
    do_not_mail boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_customers (st_modified_on);

CREATE TABLE servicetitan.st_customer_contacts (
    st_id bigint NOT NULL,
    customer_id bigint,
    type text,
    value text,
    memo text,
    do_not_text boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_customer_contacts (customer_id);
CREATE INDEX ON servicetitan.st_customer_contacts (st_modified_on);

CREATE TABLE servicetitan.st_locations (
    st_id bigint NOT NULL,
    customer_id bigint,
    name text,
    street text,
    city text,
    state text,
    zip text,
    merged_to_id bigint,
    zone_id bigint,
    tax_zone_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_locations (customer_id);
CREATE INDEX ON servicetitan.st_locations (st_modified_on);

CREATE TABLE servicetitan.st_location_contacts (
    st_id bigint NOT NULL,
    location_id bigint,
    type text,
    value text,
    memo text,
    do_not_text boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_location_contacts (location_id);
CREATE INDEX ON servicetitan.st_location_contacts (st_modified_on);

CREATE TABLE servicetitan.st_jobs (
    st_id bigint NOT NULL,
    job_number text,
    customer_id bigint,
    location_id bigint,
    business_unit_id bigint,
    job_type_id bigint,
    campaign_id bigint,
    job_status text,
    priority text,
    completed_on timestamptz,
    total numeric,
    project_id bigint,
    invoice_id bigint,
    sold_by_id bigint,
    created_from_estimate_id bigint,
    first_appointment_id bigint,
    last_appointment_id bigint,
    booking_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_jobs (customer_id);
CREATE INDEX ON servicetitan.st_jobs (location_id);
CREATE INDEX ON servicetitan.st_jobs (business_unit_id);
CREATE INDEX ON servicetitan.st_jobs (job_type_id);
CREATE INDEX ON servicetitan.st_jobs (job_status);
CREATE INDEX ON servicetitan.st_jobs (invoice_id);
CREATE INDEX ON servicetitan.st_jobs (st_modified_on);

CREATE TABLE servicetitan.st_appointments (
    st_id bigint NOT NULL,
    job_id bigint,
    customer_id bigint,
    appointment_number text,
    status text,
    start_at timestamptz,
    end_at timestamptz,
    arrival_window_start timestamptz,
    arrival_window_end timestamptz,
    unused boolean,
    is_confirmed boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_appointments (job_id);
CREATE INDEX ON servicetitan.st_appointments (customer_id);
CREATE INDEX ON servicetitan.st_appointments (status);
CREATE INDEX ON servicetitan.st_appointments (st_modified_on);

CREATE TABLE servicetitan.st_appointment_assignments (
    st_id bigint NOT NULL,
    appointment_id bigint,
    job_id bigint,
    technician_id bigint,
    technician_name text,
    status text,
    assigned_on timestamptz,
    is_paused boolean,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_appointment_assignments (appointment_id);
CREATE INDEX ON servicetitan.st_appointment_assignments (job_id);
CREATE INDEX ON servicetitan.st_appointment_assignments (technician_id);
CREATE INDEX ON servicetitan.st_appointment_assignments (status);
CREATE INDEX ON servicetitan.st_appointment_assignments (st_modified_on);

CREATE TABLE servicetitan.st_estimates (
    st_id bigint NOT NULL,
    job_id bigint,
    project_id bigint,
    location_id bigint,
    customer_id bigint,
    name text,
    job_number text,
    status text,
    status_value integer,
    review_status text,
    sold_on timestamptz,
    sold_by bigint,
    subtotal numeric,
    tax numeric,
    business_unit_id bigint,
    business_unit_name text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_estimates (job_id);
CREATE INDEX ON servicetitan.st_estimates (location_id);
CREATE INDEX ON servicetitan.st_estimates (customer_id);
CREATE INDEX ON servicetitan.st_estimates (status);
CREATE INDEX ON servicetitan.st_estimates (business_unit_id);
CREATE INDEX ON servicetitan.st_estimates (st_modified_on);

CREATE TABLE servicetitan.st_estimate_items (
    st_id bigint NOT NULL,
    estimate_id bigint NOT NULL,
    sku_id bigint,
    sku_name text,
    description text,
    qty numeric,
    unit_rate numeric,
    total numeric,
    unit_cost numeric,
    total_cost numeric,
    item_group_name text,
    invoice_item_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_estimate_items (estimate_id);
CREATE INDEX ON servicetitan.st_estimate_items (st_modified_on);

CREATE TABLE servicetitan.st_invoices (
    st_id bigint NOT NULL,
    reference_number text,
    customer_id bigint,
    customer_name text,
    location_id bigint,
    job_id bigint,
    job_number text,
    business_unit_id bigint,
    invoice_date timestamptz,
    due_date timestamptz,
    paid_on timestamptz,
    sub_total numeric,
    sales_tax numeric,
    total numeric,
    balance numeric,
    sync_status text,
    review_status text,
    sent_status text,
    project_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_invoices (customer_id);
CREATE INDEX ON servicetitan.st_invoices (location_id);
CREATE INDEX ON servicetitan.st_invoices (job_id);
CREATE INDEX ON servicetitan.st_invoices (business_unit_id);
CREATE INDEX ON servicetitan.st_invoices (st_modified_on);

CREATE TABLE servicetitan.st_invoice_items (
    st_id bigint NOT NULL,
    invoice_id bigint,
    sku_id bigint,
    sku_name text,
    type text,
    description text,
    quantity numeric,
    price numeric,
    cost numeric,
    total numeric,
    total_cost numeric,
    business_unit_id bigint,
    technician_id bigint,
    service_date timestamptz,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_invoice_items (invoice_id);
CREATE INDEX ON servicetitan.st_invoice_items (business_unit_id);
CREATE INDEX ON servicetitan.st_invoice_items (technician_id);
CREATE INDEX ON servicetitan.st_invoice_items (st_modified_on);

CREATE TABLE servicetitan.st_payments (
    st_id bigint NOT NULL,
    customer_id bigint,
    business_unit_id bigint,
    type text,
    total numeric,
    unapplied_amount numeric,
    paid_on timestamptz,
    reference_number text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_payments (customer_id);
CREATE INDEX ON servicetitan.st_payments (business_unit_id);
CREATE INDEX ON servicetitan.st_payments (st_modified_on);

CREATE TABLE servicetitan.st_installed_equipment (
    st_id bigint NOT NULL,
    location_id bigint,
    customer_id bigint,
    equipment_id bigint,
    name text,
    status text,
    serial_number text,
    manufacturer text,
    model text,
    cost numeric,
    installed_on timestamptz,
    invoice_item_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_installed_equipment (location_id);
CREATE INDEX ON servicetitan.st_installed_equipment (customer_id);
CREATE INDEX ON servicetitan.st_installed_equipment (status);
CREATE INDEX ON servicetitan.st_installed_equipment (st_modified_on);

