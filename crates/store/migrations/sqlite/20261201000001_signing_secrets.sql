-- Webhook signing secrets (Standard Webhooks). Kept as given: verifying an
-- HMAC needs the secret itself. A rotated secret stays valid until
-- expires_at.

CREATE TABLE signing_secrets (
    id         TEXT    NOT NULL PRIMARY KEY,
    company_id TEXT    NOT NULL REFERENCES companies (id),
    secret     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
) STRICT;

CREATE INDEX signing_secrets_company_id ON signing_secrets (company_id);
