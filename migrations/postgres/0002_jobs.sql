-- Jobs: rows leased by workers (lease token, expiry, attempt count), and their results written
-- once, fenced by the lease token. A job's spec names functions, models and record selections:
-- no data. Described in docs/STORAGE.md.

CREATE TABLE jobs (
    job_id         TEXT    PRIMARY KEY,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (tenant_id),
    key_id         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    spec           TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts       BIGINT  NOT NULL,
    max_attempts   BIGINT  NOT NULL CHECK (max_attempts >= 1),
    lease_token    TEXT,
    lease_expires  BIGINT,
    progress_done  BIGINT  NOT NULL,
    progress_total BIGINT  NOT NULL,
    error          TEXT,
    created_at     BIGINT  NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    FOREIGN KEY (tenant_id, key_id) REFERENCES keysets (tenant_id, key_id)
);

CREATE INDEX jobs_by_status ON jobs (status, created_at);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at);

CREATE TABLE job_results (
    job_id        TEXT    PRIMARY KEY REFERENCES jobs (job_id),
    result        BYTEA   NOT NULL,
    result_digest TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

ALTER TABLE job_results ALTER COLUMN result SET STORAGE EXTERNAL;
