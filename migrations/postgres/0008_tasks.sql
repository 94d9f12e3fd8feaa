-- Jobs cut into tasks: every job's work is one or more task rows that workers lease (lease
-- token, expiry, attempt count), each fenced by its own token. A job cut into tasks has one
-- 'part' task per run of consecutive records and a 'merge' task that waits until every part
-- has succeeded; any other job is one 'whole' task. A part's partial result (ciphertext: risk
-- scores, partial sums, lane running sums) is kept until the merge has written the job's
-- result, then dropped; its digest stays, for the receipt, with the part's input leaves (a hash
-- of each record's id and the digest of the bytes the part computed on, 32 bytes per
-- record). Described in docs/STORAGE.md.

CREATE TABLE job_tasks (
    job_id         TEXT    NOT NULL REFERENCES jobs (job_id),
    task           BIGINT  NOT NULL,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (tenant_id),
    kind           TEXT    NOT NULL CHECK (kind IN ('whole', 'part', 'merge')),
    first_record   BIGINT  NOT NULL,
    records        BIGINT  NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts       BIGINT  NOT NULL,
    max_attempts   BIGINT  NOT NULL CHECK (max_attempts >= 1),
    lease_token    TEXT,
    lease_expires  BIGINT,
    progress_done  BIGINT  NOT NULL,
    partial        BYTEA,
    partial_digest TEXT,
    input_leaves   BYTEA,
    error          TEXT,
    created_at     BIGINT  NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    PRIMARY KEY (job_id, task)
);

CREATE INDEX job_tasks_by_status ON job_tasks (status, created_at);
CREATE INDEX job_tasks_by_tenant ON job_tasks (tenant_id, status);

-- Jobs queued or running when the server is upgraded become one whole task each (a running
-- one under an expired lease: taken over, or failed when it has no attempt left).
INSERT INTO job_tasks (job_id, task, tenant_id, kind, first_record, records, status, attempts, max_attempts, lease_expires, progress_done, created_at)
SELECT job_id, 0, tenant_id, 'whole', 0, 0, status, attempts, max_attempts,
       CASE WHEN status = 'running' THEN 0 ELSE NULL END, 0, created_at
FROM jobs WHERE status IN ('queued', 'running');

ALTER TABLE job_tasks ALTER COLUMN partial SET STORAGE EXTERNAL;
