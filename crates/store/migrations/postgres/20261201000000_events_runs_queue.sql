-- Payment events, their runs, the embedded run queue and the documents tasks
-- produce. Timestamps are timestamptz (microsecond precision); JSON is TEXT
-- (not jsonb) exactly as written (key order and number spelling survive).

CREATE TABLE events (
    company_id      TEXT        NOT NULL,
    -- The Idempotency-Key header, else the event_id: one event per key.
    idempotency_key TEXT        NOT NULL,
    event_id        TEXT        NOT NULL,
    -- Lower-case hex SHA-256 of the body: a replay has the same one.
    body_sha256     TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    run_id          TEXT        NOT NULL,
    PRIMARY KEY (company_id, idempotency_key)
);

-- Loading a run's event joins on it.
CREATE INDEX events_company_event ON events (company_id, event_id);

CREATE TABLE runs (
    run_id       TEXT        NOT NULL PRIMARY KEY,
    company_id   TEXT        NOT NULL,
    event_id     TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    -- The rule version the run is pinned to.
    rule_version BIGINT      NOT NULL,
    -- queued, running, succeeded, failed, aborted.
    status       TEXT        NOT NULL,
    -- JSON object: node id -> checkpoint, in rule order.
    nodes        TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);

-- Listing a company's runs, newest first.
CREATE INDEX runs_company_created ON runs (company_id, created_at);

-- Runs not finished yet. A worker leases an entry until lease_until; a lease
-- that ran out can be claimed again (its worker died or stalled).
CREATE TABLE run_queue (
    run_id       TEXT        NOT NULL PRIMARY KEY,
    -- When the run may next be worked on (now, or a waiting retry's time).
    available_at TIMESTAMPTZ NOT NULL,
    lease_owner  TEXT       ,
    lease_until  TIMESTAMPTZ
);

CREATE INDEX run_queue_available_at ON run_queue (available_at);

-- Task effects, stored once under their idempotency key.
CREATE TABLE documents (
    -- {run_id}:{node_id}, with a suffix when one node makes several.
    key        TEXT        NOT NULL PRIMARY KEY,
    run_id     TEXT        NOT NULL,
    company_id TEXT        NOT NULL,
    node_id    TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX documents_run_id ON documents (run_id);
