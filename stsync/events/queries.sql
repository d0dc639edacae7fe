-- Named queries of `stsync events` and `stsync workflows`, loaded with stsync.sqlfile.load("events").
-- Every query takes the clock as %(now)s, so that tests can move time.

-- name: clock_start
-- The first poll starts the time-based conditions' clock at its own time: what came due before it is history.
INSERT INTO automation.clock_checks (name, checked_until) VALUES (%(name)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: clock_advance
UPDATE automation.clock_checks SET checked_until = greatest(checked_until, %(now)s) WHERE name = %(name)s;

-- name: detect_overdue
-- Invoices whose due date (plus the grace) passed since the last poll, with a balance: the same key as the
-- merge writes when a change makes an invoice overdue, so each (invoice, due date) is emitted once.
INSERT INTO automation.events (entity, st_id, event_type, version, occurred_at, detected_at, new_values)
SELECT 'invoices', i.st_id, 'invoice_overdue', i.due_date::text, i.due_date + %(grace)s::interval, %(now)s,
       jsonb_build_object('balance', i.balance, 'total', i.total, 'due_date', i.due_date,
                          'customer_id', i.customer_id, 'job_id', i.job_id, 'business_unit_id', i.business_unit_id)
  FROM servicetitan.st_invoices i, automation.clock_checks c
 WHERE c.name = 'invoice_overdue'
   AND i.balance > 0 AND i.active
   AND i.due_date > c.checked_until - %(grace)s::interval AND i.due_date <= %(now)s - %(grace)s::interval
ON CONFLICT (entity, st_id, event_type, version) DO NOTHING;

-- name: detect_estimate_open
-- Estimates still Open N days after they were created, found as the N-th day passes.
INSERT INTO automation.events (entity, st_id, event_type, version, occurred_at, detected_at, new_values)
SELECT 'estimates', e.st_id, 'estimate_open', %(days)s || ' days', e.st_created_on + %(age)s::interval, %(now)s,
       jsonb_build_object('status', e.status, 'subtotal', e.subtotal, 'tax', e.tax, 'sold_on', e.sold_on,
                          'business_unit_id', e.business_unit_id, 'job_id', e.job_id, 'customer_id', e.customer_id)
  FROM servicetitan.st_estimates e, automation.clock_checks c
 WHERE c.name = 'estimate_open'
   AND e.status = 'Open' AND e.active
   AND e.st_created_on > c.checked_until - %(age)s::interval AND e.st_created_on <= %(now)s - %(age)s::interval
ON CONFLICT (entity, st_id, event_type, version) DO NOTHING;

-- name: claim_events
-- Pending events nobody holds (or whose holder's lease ran out), oldest first; each claim is a lease.
WITH c AS (
    SELECT id FROM automation.events
     WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < %(now)s)
     ORDER BY id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE automation.events e
   SET claimed_until = %(now)s + %(lease)s * interval '1 second', attempts = e.attempts + 1
  FROM c WHERE e.id = c.id
RETURNING e.id, e.entity, e.st_id, e.event_type, e.version, e.occurred_at, e.detected_at, e.old_values, e.new_values;

-- name: pending_events
SELECT id, entity, st_id, event_type, version, occurred_at, detected_at, old_values, new_values
  FROM automation.events WHERE processed_at IS NULL ORDER BY id LIMIT %(limit)s;

-- name: current_workflows
SELECT name, version_hash, trigger_event, enabled, definition FROM automation.workflow_definitions WHERE current;

-- name: definition
SELECT name, version_hash, definition FROM automation.workflow_definitions WHERE name = %(name)s AND version_hash = %(hash)s;

-- name: enroll
-- One instance per workflow, entity and trigger event; a second occurrence finds it there (deduped).
INSERT INTO automation.workflow_instances (workflow_name, version_hash, entity, st_id, trigger_event, event_id)
SELECT r.workflow_name, r.version_hash, r.entity, r.st_id, r.trigger_event, r.event_id
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r(workflow_name text, version_hash text, entity text, st_id bigint, trigger_event text, event_id bigint)
 ORDER BY r.event_id
ON CONFLICT (workflow_name, entity, st_id, trigger_event) DO NOTHING
RETURNING id, workflow_name, event_id;

-- name: instances_of
SELECT i.id, i.workflow_name, i.entity, i.st_id, i.trigger_event
  FROM automation.workflow_instances i
  JOIN jsonb_to_recordset(%(rows)s::jsonb) AS r(workflow_name text, entity text, st_id bigint, trigger_event text)
    ON (i.workflow_name, i.entity, i.st_id, i.trigger_event) = (r.workflow_name, r.entity, r.st_id, r.trigger_event);

-- name: record_verdicts
INSERT INTO automation.event_verdicts (event_id, workflow_name, verdict, detail, instance_id, decided_at)
SELECT r.event_id, r.workflow_name, r.verdict, r.detail, r.instance_id, %(now)s
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r(event_id bigint, workflow_name text, verdict text, detail jsonb, instance_id bigint)
ON CONFLICT (event_id, workflow_name) DO NOTHING;

-- name: add_steps
INSERT INTO automation.workflow_steps (instance_id, step_no, action, due_at)
SELECT r.instance_id, r.step_no, r.action, r.due_at
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(instance_id bigint, step_no integer, action text, due_at timestamptz)
ON CONFLICT (instance_id, step_no) DO NOTHING;

-- name: events_processed
UPDATE automation.events SET processed_at = %(now)s, claimed_until = NULL WHERE id = ANY(%(ids)s);

-- name: reclaim_steps
-- Steps whose poll died while holding them: their lease ran out. An attempt it had started is closed as
-- 'unknown' (the action may or may not have happened); the step gets this poll's claim.
WITH c AS (
    SELECT instance_id, step_no FROM automation.workflow_steps
     WHERE state = 'running' AND claimed_until < %(now)s
     ORDER BY claimed_until
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
),
lost AS (
    UPDATE automation.workflow_step_executions x
       SET finished_at = %(now)s, result = 'unknown', error = 'the poll running it stopped before recording the result'
      FROM c
     WHERE (x.instance_id, x.step_no) = (c.instance_id, c.step_no) AND x.finished_at IS NULL
    RETURNING x.instance_id, x.step_no
)
UPDATE automation.workflow_steps s
   SET claim_id = %(claim)s, claimed_until = %(now)s + %(lease)s * interval '1 second'
  FROM c WHERE (s.instance_id, s.step_no) = (c.instance_id, c.step_no)
RETURNING s.instance_id, s.step_no, s.action, s.attempts, s.due_at,
          EXISTS (SELECT 1 FROM lost l WHERE (l.instance_id, l.step_no) = (s.instance_id, s.step_no)) AS lost;

-- name: claim_steps
WITH c AS (
    SELECT instance_id, step_no FROM automation.workflow_steps
     WHERE state = 'waiting' AND due_at <= %(now)s
     ORDER BY due_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE automation.workflow_steps s
   SET state = 'running', claim_id = %(claim)s, claimed_until = %(now)s + %(lease)s * interval '1 second'
  FROM c WHERE (s.instance_id, s.step_no) = (c.instance_id, c.step_no)
RETURNING s.instance_id, s.step_no, s.action, s.attempts, s.due_at, false AS lost;

-- name: start_step
-- Just before a step's action: while this poll still holds the claim, count the attempt, renew the lease and
-- open the attempt's row, in one statement. Nothing comes back when another poll has taken the step over.
WITH s AS (
    UPDATE automation.workflow_steps
       -- the lease counts from the statement's own time too: a poll that stalled before it gets no shorter one
       SET attempts = attempts + 1, claimed_until = greatest(%(now)s, now()) + %(lease)s * interval '1 second'
     WHERE instance_id = %(instance_id)s AND step_no = %(step_no)s AND state = 'running' AND claim_id = %(claim)s
    RETURNING instance_id, step_no, attempts, retried_after
),
opened AS (
    INSERT INTO automation.workflow_step_executions (instance_id, step_no, attempt, idempotency_key, started_at)
    SELECT instance_id, step_no, attempts, 'stsync-' || instance_id || '-' || step_no, %(now)s FROM s
)
SELECT attempts, retried_after FROM s;

-- name: step_instances
SELECT i.id, i.workflow_name, i.version_hash, i.entity, i.st_id, i.trigger_event, i.event_id, i.state,
       e.event_type, e.occurred_at, e.old_values, e.new_values
  FROM automation.workflow_instances i
  JOIN automation.events e ON e.id = i.event_id
 WHERE i.id = ANY(%(ids)s);

-- name: finish_attempt
UPDATE automation.workflow_step_executions
   SET finished_at = %(now)s, result = %(result)s, error = %(error)s, detail = %(detail)s
 WHERE instance_id = %(instance_id)s AND step_no = %(step_no)s AND attempt = %(attempt)s AND finished_at IS NULL;

-- name: finish_step
-- A step's end: done, cancelled, skipped or dead; or back to waiting (a retry at due_at). Only the holder of
-- the claim may finish it: a poll whose step was reclaimed after its lease ran out finds nothing to update.
UPDATE automation.workflow_steps
   SET state = %(state)s, due_at = coalesce(%(due_at)s, due_at), claim_id = NULL, claimed_until = NULL,
       last_error = %(error)s, finished_at = CASE WHEN %(state)s = 'waiting' THEN NULL ELSE %(now)s END
 WHERE instance_id = %(instance_id)s AND step_no = %(step_no)s AND state = 'running' AND claim_id = %(claim)s
RETURNING instance_id;

-- name: finish_instance
UPDATE automation.workflow_instances SET state = %(state)s, finished_at = %(now)s
 WHERE id = %(instance_id)s AND state = 'running';

-- name: opt_outs
-- What stops a message to the customer: ServiceTitan's do-not-mail / do-not-service flags, and the GHL
-- contact's do-not-disturb flag as `ghl pull` read it.
SELECT c.do_not_mail, c.do_not_service,
       (SELECT bool_or(g.dnd) FROM integrations.ghl_contacts g
         WHERE g.st_customer_id = %(customer_id)s AND g.location_id = %(location_id)s) AS ghl_dnd
  FROM (SELECT %(customer_id)s::bigint AS st_id) k
  LEFT JOIN servicetitan.st_customers c ON c.st_id = k.st_id;

-- name: business_unit_webhook
SELECT webhook_url FROM integrations.business_units WHERE st_business_unit_id = %(id)s;

-- name: ghl_contact
SELECT ghl_contact_id FROM integrations.ghl_contacts
 WHERE st_customer_id = %(customer_id)s AND location_id = %(location_id)s AND ghl_contact_id IS NOT NULL;

-- name: business_unit_route
SELECT mode, pipeline FROM integrations.business_units WHERE st_business_unit_id = %(id)s;

-- name: ghl_opportunity
SELECT ghl_opportunity_id, stage_id, stage_name, status FROM integrations.ghl_opportunities
 WHERE location_id = %(location_id)s AND st_customer_id = %(customer_id)s AND pipeline = %(pipeline)s
   AND ghl_opportunity_id IS NOT NULL;

-- name: opportunity_moved
-- A workflow moved the opportunity forward: the bookkeeping knows its stage (the push's protected stages and
-- "never backward" read it); pushed_hash stays, so the push moves it only when the mirror implies a new stage.
UPDATE integrations.ghl_opportunities
   SET stage_id = %(stage_id)s, stage_name = %(stage_name)s, stage_set_by = 'workflow', updated_at = now()
 WHERE location_id = %(location_id)s AND ghl_opportunity_id = %(opportunity_id)s;

-- name: contact_due
-- ghl.upsert_contact: the next push looks at this customer (a due retry), whatever changed in the mirror.
INSERT INTO integrations.ghl_contacts AS c (st_customer_id, location_id, sync_status, next_retry_at)
VALUES (%(customer_id)s, %(location_id)s, 'pending', now())
ON CONFLICT (location_id, st_customer_id) DO UPDATE
   SET sync_status = CASE WHEN c.sync_status = 'synced' THEN 'pending' ELSE c.sync_status END,
       pushed_hash = NULL, next_retry_at = now(), updated_at = now();

-- name: load_definition
-- A definition as checked; loading the same one again changes nothing.
INSERT INTO automation.workflow_definitions (name, version_hash, trigger_event, enabled, current, definition, source_file, loaded_at)
VALUES (%(name)s, %(version_hash)s, %(trigger_event)s, %(enabled)s, true, %(definition)s, %(source_file)s, %(now)s)
ON CONFLICT (name, version_hash) DO UPDATE SET current = true, enabled = EXCLUDED.enabled, source_file = EXCLUDED.source_file;

-- name: retire_definitions
-- Before a load: every current definition stops being current; the load marks its own current again.
UPDATE automation.workflow_definitions SET current = false WHERE current;

-- name: workflows_list
SELECT d.name, d.trigger_event, d.enabled, d.version_hash, d.loaded_at, d.source_file,
       (SELECT count(*) FROM automation.workflow_instances i WHERE i.workflow_name = d.name) AS instances
  FROM automation.workflow_definitions d
 WHERE d.current
 ORDER BY d.name;

-- name: status_instances
SELECT workflow_name, state, count(*) AS n FROM automation.workflow_instances GROUP BY 1, 2 ORDER BY 1, 2;

-- name: status_steps
SELECT count(*) FILTER (WHERE state = 'waiting' AND due_at <= %(now)s) AS due,
       count(*) FILTER (WHERE state = 'waiting' AND due_at > %(now)s) AS scheduled,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'running' AND claimed_until < %(now)s) AS expired_leases,
       count(*) FILTER (WHERE state = 'dead') AS dead
  FROM automation.workflow_steps
 WHERE state IN ('waiting', 'running', 'dead');

-- name: status_events
SELECT count(*) AS pending, min(detected_at) AS oldest_pending
  FROM automation.events WHERE processed_at IS NULL;

-- name: dead_steps
SELECT s.instance_id, i.workflow_name, i.entity, i.st_id, s.step_no, s.action, s.attempts, s.last_error, s.finished_at
  FROM automation.workflow_steps s JOIN automation.workflow_instances i ON i.id = s.instance_id
 WHERE s.state = 'dead'
 ORDER BY s.finished_at DESC
 LIMIT 20;

-- name: retry_dead
-- `stsync workflows retry`: dead steps (of one instance, or all) wait again, due now, their attempts counted
-- afresh (from retried_after); their instances run again. The ledger keeps every earlier attempt.
WITH revived AS (
    UPDATE automation.workflow_steps
       SET state = 'waiting', due_at = %(now)s, retried_after = attempts, claim_id = NULL, claimed_until = NULL,
           finished_at = NULL
     WHERE state = 'dead' AND (%(instance_id)s::bigint IS NULL OR instance_id = %(instance_id)s)
    RETURNING instance_id
)
UPDATE automation.workflow_instances i SET state = 'running', finished_at = NULL
  FROM (SELECT DISTINCT instance_id FROM revived) r
 WHERE i.id = r.instance_id
RETURNING i.id;

-- name: event
SELECT id, entity, st_id, event_type, version, occurred_at, detected_at, old_values, new_values, processed_at, attempts
  FROM automation.events WHERE id = %(id)s;

-- name: verdicts
SELECT v.workflow_name, v.verdict, v.detail, v.instance_id, v.decided_at, i.state AS instance_state
  FROM automation.event_verdicts v LEFT JOIN automation.workflow_instances i ON i.id = v.instance_id
 WHERE v.event_id = %(id)s
 ORDER BY v.workflow_name;

-- name: instance_steps
SELECT s.instance_id, s.step_no, s.action, s.state, s.due_at, s.attempts, s.last_error,
       (SELECT count(*) FROM automation.workflow_step_executions x
         WHERE (x.instance_id, x.step_no) = (s.instance_id, s.step_no)) AS executions
  FROM automation.workflow_steps s
 WHERE s.instance_id = ANY(%(ids)s)
 ORDER BY s.instance_id, s.step_no;

-- name: events_list
SELECT e.id, e.entity, e.st_id, e.event_type, e.occurred_at, e.detected_at, e.processed_at,
       (SELECT count(*) FROM automation.event_verdicts v WHERE v.event_id = e.id AND v.verdict = 'enrolled') AS enrolled
  FROM automation.events e
 WHERE (%(type)s::text IS NULL OR e.event_type = %(type)s)
   AND (%(since)s::timestamptz IS NULL OR e.detected_at >= %(since)s)
 ORDER BY e.id DESC
 LIMIT %(limit)s;
