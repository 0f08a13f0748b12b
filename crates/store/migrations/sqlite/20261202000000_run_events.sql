-- Run events (run.queued, run.started, node.finished, run.finished,
-- run.redriven), each written in the same transaction as the change it
-- describes; the runs list's keyset index; redrives counted on the run.
-- Timestamps are INTEGER unix microseconds, UTC; data is JSON TEXT.

CREATE TABLE run_events (
    -- Global and increasing in commit order (a company stream's cursor);
    -- AUTOINCREMENT so an id is never reused.
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT    NOT NULL,
    company_id TEXT    NOT NULL,
    -- 1, 2, 3… per run without gaps (a run stream's cursor).
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (run_id, seq)
) STRICT;

-- A company's stream, in id order.
CREATE INDEX run_events_company_id ON run_events (company_id, id);

ALTER TABLE runs ADD COLUMN redrive_count INTEGER NOT NULL DEFAULT 0;

-- Listing runs newest first with a (created_at, run_id) keyset cursor, for
-- one company or all; the new company index covers the old one.
DROP INDEX runs_company_created;
CREATE INDEX runs_company_created_run ON runs (company_id, created_at, run_id);
CREATE INDEX runs_created_run ON runs (created_at, run_id);
