-- Requests the push made per GHL location and UTC day, so that ghl.daily_request_budget spans every run of
-- the day (GHL caps a location at 200,000 a day, shared with the location's other apps).
CREATE TABLE integrations.ghl_daily_requests (
    location_id text NOT NULL,
    day date NOT NULL,
    requests integer NOT NULL DEFAULT 0,
    PRIMARY KEY (location_id, day)
);
