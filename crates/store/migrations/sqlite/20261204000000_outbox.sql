-- Distributed mode's outbox (see the PostgreSQL migration of the same name).
-- Distributed mode needs PostgreSQL; the table exists here, unused, so both
-- backends keep the same schema history.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT    NOT NULL,
    company_id TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
) STRICT;

ALTER TABLE run_queue ADD COLUMN dispatched_at INTEGER;
