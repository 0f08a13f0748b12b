-- The Standard Webhooks `webhook-id` of a signed event. The sender keeps it
-- on every redelivery and it is covered by the signature, so it names the
-- message: one event per webhook-id and company, whatever unsigned headers
-- (Idempotency-Key) a replay adds. Unsigned events have none.
ALTER TABLE events ADD COLUMN webhook_id TEXT;

CREATE UNIQUE INDEX events_company_webhook_id ON events (company_id, webhook_id)
    WHERE webhook_id IS NOT NULL;
