-- A webhook-trigger URL is a secret (whoever has it can trigger the workflow): the post log keeps the
-- business unit, whose row in integrations.business_units holds the URL.
ALTER TABLE integrations.ghl_webhook_posts DROP COLUMN url;
