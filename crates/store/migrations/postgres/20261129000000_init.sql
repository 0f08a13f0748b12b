-- Companies, their API keys, rule versions and settings.
-- Timestamps are timestamptz (microsecond precision).

CREATE TABLE companies (
    id         TEXT        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT        NOT NULL PRIMARY KEY,
    company_id TEXT        NOT NULL REFERENCES companies (id),
    -- Lower-case hex SHA-256 of the key; the key itself is never stored.
    key_hash   TEXT        NOT NULL UNIQUE,
    prefix     TEXT        NOT NULL,
    label      TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX api_keys_company_id ON api_keys (company_id);

CREATE TABLE rule_versions (
    company_id      TEXT        NOT NULL REFERENCES companies (id),
    version         BIGINT      NOT NULL,
    rule_id         TEXT        NOT NULL,
    -- The JSON exactly as serde_json wrote it (TEXT, not jsonb, so key order
    -- and number spelling survive).
    rules           TEXT        NOT NULL,
    node_count      BIGINT      NOT NULL,
    -- The first version's created_at, carried on every version so a read is
    -- one row.
    rule_created_at TIMESTAMPTZ NOT NULL,
    -- When this version was saved.
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, version)
);

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
