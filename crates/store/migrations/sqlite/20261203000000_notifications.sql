-- Notification endpoints (a company's URLs for run.succeeded / run.failed /
-- run.aborted), the deliveries to them (an outbox: written in the same
-- transaction as a run's final step commit) and every delivery attempt.
-- Timestamps are INTEGER unix microseconds, UTC.

CREATE TABLE notification_endpoints (
    endpoint_id     TEXT    NOT NULL PRIMARY KEY,
    company_id      TEXT    NOT NULL REFERENCES companies (id),
    url             TEXT    NOT NULL,
    description     TEXT,
    -- JSON array of the event types it receives, e.g. ["run.failed"].
    event_types     TEXT    NOT NULL,
    -- whsec_…: kept as given, signing needs the key itself.
    secret          TEXT    NOT NULL,
    -- 0 once the endpoint answered 410 Gone: it gets no more deliveries.
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    disabled_at     INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX notification_endpoints_company ON notification_endpoints (company_id);

CREATE TABLE notification_deliveries (
    -- Sent as webhook-id: the same on every attempt, so receivers dedupe.
    delivery_id     TEXT    NOT NULL PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL REFERENCES notification_endpoints (endpoint_id),
    company_id      TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    -- The JSON body, exactly as sent on every attempt.
    payload         TEXT    NOT NULL,
    -- pending, delivered, failed.
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When a pending delivery is due; NULL once it is delivered or failed.
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;

-- The delivery worker's claim: only pending rows are indexed.
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_deliveries_endpoint ON notification_deliveries (endpoint_id, created_at);

CREATE TABLE notification_attempts (
    attempt_id  INTEGER NOT NULL PRIMARY KEY,
    delivery_id TEXT    NOT NULL REFERENCES notification_deliveries (delivery_id),
    -- 1 for the first attempt.
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    -- The HTTP status answered, or NULL when there was no answer (error).
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX notification_attempts_delivery ON notification_attempts (delivery_id, attempt_id);
