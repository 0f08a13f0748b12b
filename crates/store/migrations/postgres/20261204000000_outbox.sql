-- Distributed mode (DESIGN §6): the outbox between the store and RabbitMQ.
-- A run is "due on the broker" when a message saying so must be published;
-- the row is written in the transaction that makes the run due (an accepted
-- event, or the dispatcher moving a due retry), so no message is lost between
-- the commit and the publish. The relay publishes unsent rows with publisher
-- confirms and only then marks them sent.
CREATE TABLE outbox (
    id         BIGSERIAL   PRIMARY KEY,
    run_id     TEXT        NOT NULL,
    company_id TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at    TIMESTAMPTZ
);

-- The relay's scan: unsent rows in id order.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- When a message for this queue entry last went to the outbox. A run needs a
-- (new) message when it became due after that: a retry's available_at, or the
-- lease of a worker that died ran out. NULL: never (the embedded queue).
ALTER TABLE run_queue ADD COLUMN dispatched_at TIMESTAMPTZ;
