-- Companies, their API keys, rule versions and settings.
-- Timestamps are INTEGER unix microseconds, UTC.
-- STRICT: SQLite otherwise stores whatever type it is given.

CREATE TABLE companies (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    company_id TEXT    NOT NULL REFERENCES companies (id),
    -- Lower-case hex SHA-256 of the key; the key itself is never stored.
    key_hash   TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    label      TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX api_keys_company_id ON api_keys (company_id);

CREATE TABLE rule_versions (
    company_id      TEXT    NOT NULL REFERENCES companies (id),
    version         INTEGER NOT NULL,
    rule_id         TEXT    NOT NULL,
    -- The JSON exactly as serde_json wrote it (TEXT, not a JSON type, so key
    -- order and number spelling survive).
    rules           TEXT    NOT NULL,
    node_count      INTEGER NOT NULL,
    -- The first version's created_at, carried on every version so a read is
    -- one row.
    rule_created_at INTEGER NOT NULL,
    -- When this version was saved.
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (company_id, version)
) STRICT;

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
