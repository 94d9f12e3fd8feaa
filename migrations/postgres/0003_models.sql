-- Risk models a tenant registers: clear weights, thresholds and rules over a schema's fields
-- (no data). Immutable per (model id, version); the digest names the exact definition in job
-- specs and receipts. Described in docs/STORAGE.md.

CREATE TABLE models (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (tenant_id),
    model_id       TEXT    NOT NULL,
    version        BIGINT NOT NULL,
    schema_id      TEXT    NOT NULL,
    schema_version BIGINT NOT NULL,
    definition     TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, model_id, version)
);
