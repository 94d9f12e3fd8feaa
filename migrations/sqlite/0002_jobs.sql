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
    attempts       INTEGER NOT NULL,
    max_attempts   INTEGER NOT NULL CHECK (max_attempts >= 1),
    lease_token    TEXT,
    lease_expires  INTEGER,
    progress_done  INTEGER NOT NULL,
    progress_total INTEGER NOT NULL,
    error          TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    FOREIGN KEY (tenant_id, key_id) REFERENCES keysets (tenant_id, key_id)
);

CREATE INDEX jobs_by_status ON jobs (status, created_at);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at);

CREATE TABLE job_results (
    job_id        TEXT    PRIMARY KEY REFERENCES jobs (job_id),
    result        BLOB    NOT NULL,
    result_digest TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
