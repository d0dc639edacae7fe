-- Events and workflows (`stsync events …`, `stsync workflows …`).
--
-- automation.events is an outbox: the mirror's merge writes a row in the same transaction as the page that
-- changed the record, so an event exists exactly when its change was committed. The unique key makes a
-- replayed page, or a time-based condition found again, add nothing. `events poll` claims pending rows with
-- FOR UPDATE SKIP LOCKED and a lease: a claim whose poll died is taken again once its lease has passed.

CREATE TABLE automation.events (
    id bigserial PRIMARY KEY,
    entity text NOT NULL,            -- the stream: estimates, jobs, invoices, appointments
    st_id bigint NOT NULL,           -- the record's ServiceTitan id
    event_type text NOT NULL,        -- estimate_created, job_completed, invoice_overdue, …
    version text NOT NULL,           -- the record's modifiedOn that produced it; for a time-based one, its condition's date
    occurred_at timestamptz,         -- ServiceTitan's modifiedOn (time-based: when the condition came true)
    detected_at timestamptz NOT NULL DEFAULT now(),
    old_values jsonb,                -- the fields that matter before the change (null for a new record)
    new_values jsonb NOT NULL,       -- and after it
    claimed_until timestamptz,       -- lease of the poll working on it
    attempts integer NOT NULL DEFAULT 0,
    processed_at timestamptz,        -- every workflow has a verdict on it
    error text,
    UNIQUE (entity, st_id, event_type, version)
);
CREATE INDEX events_pending ON automation.events (id) WHERE processed_at IS NULL;
CREATE INDEX events_type_detected ON automation.events (event_type, detected_at);
CREATE INDEX events_detected ON automation.events (detected_at);

-- One row per loaded version of a workflow; `current` marks the one new events are matched against.
CREATE TABLE automation.workflow_definitions (
    name text NOT NULL,
    version_hash text NOT NULL,      -- sha256 of the definition as loaded (canonical JSON)
    trigger_event text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    current boolean NOT NULL DEFAULT true,
    definition jsonb NOT NULL,
    source_file text,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version_hash)
);
CREATE UNIQUE INDEX workflow_definitions_current ON automation.workflow_definitions (name) WHERE current;

-- One instance per workflow, entity and trigger event: a second occurrence of the event is 'deduped'.
CREATE TABLE automation.workflow_instances (
    id bigserial PRIMARY KEY,
    workflow_name text NOT NULL,
    version_hash text NOT NULL,      -- the definition it started under, whatever is loaded later
    entity text NOT NULL,
    st_id bigint NOT NULL,
    trigger_event text NOT NULL,
    event_id bigint NOT NULL REFERENCES automation.events (id),
    state text NOT NULL DEFAULT 'running',   -- running | completed | cancelled | failed
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    FOREIGN KEY (workflow_name, version_hash) REFERENCES automation.workflow_definitions (name, version_hash),
    UNIQUE (workflow_name, entity, st_id, trigger_event)
);
CREATE INDEX workflow_instances_state ON automation.workflow_instances (state);

-- Why each workflow did or did not start for each event (`stsync events explain`).
CREATE TABLE automation.event_verdicts (
    event_id bigint NOT NULL REFERENCES automation.events (id),
    workflow_name text NOT NULL,
    verdict text NOT NULL,           -- enrolled | filtered | deduped | disabled | error
    detail jsonb,                    -- filtered: the clause and the values it saw; error: the message
    instance_id bigint REFERENCES automation.workflow_instances (id),
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, workflow_name)
);

-- The step queue: one row per step of an instance, made when the step before it is done.
CREATE TABLE automation.workflow_steps (
    instance_id bigint NOT NULL REFERENCES automation.workflow_instances (id),
    step_no integer NOT NULL,
    action text NOT NULL,
    due_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'waiting',   -- waiting | running | done | cancelled | skipped | dead
    attempts integer NOT NULL DEFAULT 0,
    retried_after integer NOT NULL DEFAULT 0,  -- attempts made before `workflows retry` revived it
    claim_id text,                   -- the poll holding it; a reclaim gives it another, and the old holder stops
    claimed_until timestamptz,
    last_error text,
    finished_at timestamptz,
    PRIMARY KEY (instance_id, step_no)
);
CREATE INDEX workflow_steps_due ON automation.workflow_steps (due_at) WHERE state = 'waiting';
CREATE INDEX workflow_steps_running ON automation.workflow_steps (claimed_until) WHERE state = 'running';
CREATE INDEX workflow_steps_dead ON automation.workflow_steps (finished_at) WHERE state = 'dead';

-- Every attempt of every step, written before the action runs and finished after it.
CREATE TABLE automation.workflow_step_executions (
    id bigserial PRIMARY KEY,
    instance_id bigint NOT NULL,
    step_no integer NOT NULL,
    attempt integer NOT NULL,
    idempotency_key text NOT NULL,   -- stsync-<instance>-<step>: the same for every attempt of the step
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    result text,                     -- ok | retry | dead | opted_out | cancelled | unknown (the poll died)
    error text,
    detail jsonb,
    FOREIGN KEY (instance_id, step_no) REFERENCES automation.workflow_steps (instance_id, step_no),
    UNIQUE (instance_id, step_no, attempt)
);

-- How far `events poll` has looked for time-based conditions (invoice_overdue, estimate_open): each poll
-- looks only at the dates that passed since the last one, so an old backlog is no storm.
CREATE TABLE automation.clock_checks (
    name text PRIMARY KEY,
    checked_until timestamptz NOT NULL
);

CREATE INDEX st_invoices_due_open ON servicetitan.st_invoices (due_date) WHERE balance > 0;
CREATE INDEX st_estimates_open_created ON servicetitan.st_estimates (st_created_on) WHERE status = 'Open';

-- A stage a workflow moved an opportunity to (ghl.move_opportunity, only ever forward): the push does not
-- move it back for a less advanced stage the mirror implies, only on to a further one, which it then owns.
ALTER TABLE integrations.ghl_opportunities ADD COLUMN stage_set_by text;

-- The GHL contact's do-not-disturb flag as `ghl pull` last read it: a workflow step that messages the customer
-- is skipped (opted_out) while it is set.
ALTER TABLE integrations.ghl_contacts ADD COLUMN dnd boolean;
