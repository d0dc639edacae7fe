-- The schemas stsync owns: the ServiceTitan mirror, integration state (GoHighLevel), automation rules.

CREATE SCHEMA IF NOT EXISTS servicetitan;
CREATE SCHEMA IF NOT EXISTS integrations;
CREATE SCHEMA IF NOT EXISTS automation;
