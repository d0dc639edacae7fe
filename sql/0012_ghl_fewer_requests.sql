-- Fewer GHL requests per change. A contact that stsync's push created (GHL's upsert said new) cannot hold
-- anyone else's opportunities, so its opportunities are created without a search first. Before creating an
-- opportunity the push stamps create_started_at (committed); a create that may have reached GHL without
-- being recorded (a kill between GHL's answer and the bookkeeping) is then looked up before it is tried again.
ALTER TABLE integrations.ghl_contacts ADD COLUMN created_by_push boolean NOT NULL DEFAULT false;
ALTER TABLE integrations.ghl_opportunities ADD COLUMN create_started_at timestamptz;
