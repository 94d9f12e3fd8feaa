-- Risk models a tenant registers: clear weights, thresholds and rules over a schema's fields
-- (no data). Immutable per (model id, version); the digest names the exact definition in job
-- specs and receipts. Described in docs/STORAGE.md.

CREATE TABLE models (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (tenant_id),
    model_id       TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    schema_id      TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    definition     TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, model_id, version)
);
