-- The pricebook (issue 22): categories, services, materials and equipment, written by stsync.sync.ddl from their
-- declarations. Estimate and invoice items name their pricebook entry by sku_id.

CREATE TABLE servicetitan.st_pricebook_categories (
    st_id bigint NOT NULL,
    name text,
    parent_id bigint,
    position integer,
    category_type text,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_pricebook_categories (parent_id);
CREATE INDEX ON servicetitan.st_pricebook_categories (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_pricebook_categories');

CREATE TABLE servicetitan.st_pricebook_services (
    st_id bigint NOT NULL,
    code text,
    display_name text,
    price numeric,
    member_price numeric,
    cost numeric,
    hours numeric,
    taxable boolean,
    business_unit_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_pricebook_services (business_unit_id);
CREATE INDEX ON servicetitan.st_pricebook_services (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_pricebook_services');

CREATE TABLE servicetitan.st_pricebook_materials (
    st_id bigint NOT NULL,
    code text,
    display_name text,
    price numeric,
    member_price numeric,
    cost numeric,
    hours numeric,
    is_inventory boolean,
    unit_of_measure text,
    business_unit_id bigint,
    cost_type_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_pricebook_materials (business_unit_id);
CREATE INDEX ON servicetitan.st_pricebook_materials (cost_type_id);
CREATE INDEX ON servicetitan.st_pricebook_materials (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_pricebook_materials');

CREATE TABLE servicetitan.st_pricebook_equipment (
    st_id bigint NOT NULL,
    code text,
    display_name text,
    price numeric,
    member_price numeric,
    cost numeric,
    manufacturer text,
    model text,
    is_inventory boolean,
    type_id bigint,
    active boolean NOT NULL DEFAULT true,
    st_created_on timestamptz,
    st_modified_on timestamptz,
    full_data jsonb NOT NULL,
    first_synced_at timestamptz NOT NULL DEFAULT now(),
    last_synced_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    PRIMARY KEY (st_id)
);
CREATE INDEX ON servicetitan.st_pricebook_equipment (type_id);
CREATE INDEX ON servicetitan.st_pricebook_equipment (st_modified_on);
SELECT servicetitan.compress_jsonb('servicetitan', 'st_pricebook_equipment');
