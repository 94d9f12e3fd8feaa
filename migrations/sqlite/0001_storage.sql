-- Tenants, their tokens (hashes only), key sets (public material only), custom record
-- schemas and records (ciphertext, proofs, sealed transcripts and routing metadata).
-- Every column is described in docs/STORAGE.md with why it is safe to hold.

CREATE TABLE tenants (
    tenant_id       TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    min_cohort_size INTEGER NOT NULL CHECK (min_cohort_size >= 2),
    created_at      INTEGER NOT NULL
);

CREATE TABLE tokens (
    lookup      TEXT    PRIMARY KEY,
    token_hash  BLOB    NOT NULL,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (tenant_id),
    role        TEXT    NOT NULL CHECK (role IN ('keyholder', 'ingest', 'auditor')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE keysets (
    tenant_id            TEXT    NOT NULL REFERENCES tenants (tenant_id),
    key_id               TEXT    NOT NULL,
    parameter_set        TEXT    NOT NULL,
    manifest_fingerprint TEXT    NOT NULL,
    bundle_digest        TEXT    NOT NULL,
    manifest             BLOB    NOT NULL,
    app_bundle           BLOB    NOT NULL,
    server_key           BLOB    NOT NULL,
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);

CREATE TABLE schemas (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (tenant_id),
    schema_id      TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    definition     TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, schema_id, schema_version)
);

CREATE TABLE records (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id          TEXT    NOT NULL,
    record_id          TEXT    NOT NULL,
    key_id             TEXT    NOT NULL,
    schema_id          TEXT    NOT NULL,
    schema_version     INTEGER NOT NULL,
    cohort             TEXT,
    lexicon_version    TEXT,
    recorded_at        INTEGER,
    received_at        INTEGER NOT NULL,
    proven_list        BLOB    NOT NULL,
    proven_list_digest TEXT    NOT NULL,
    sealed_transcript  BLOB,
    UNIQUE (tenant_id, record_id),
    FOREIGN KEY (tenant_id, key_id) REFERENCES keysets (tenant_id, key_id)
);

CREATE INDEX records_by_cohort ON records (tenant_id, cohort, seq);
