-- Lane rollups: per key set, schema, cohort and UTC day, the running wrapping sum of the lane
-- lists ingested, in parts of at most 16,384 records, updated in the same transaction as the
-- record it adds. An aggregate over whole days that the lane answers reads these sums instead
-- of every record. Ciphertext only; an auditor recomputes each part from the stored records.
-- Described in docs/STORAGE.md.

CREATE TABLE lane_rollups (
    tenant_id      TEXT    NOT NULL,
    key_id         TEXT    NOT NULL,
    schema_id      TEXT    NOT NULL,
    schema_version INTEGER  NOT NULL,
    cohort         TEXT    NOT NULL,
    day            INTEGER  NOT NULL,
    part           INTEGER  NOT NULL,
    records        INTEGER  NOT NULL CHECK (records >= 0),
    slots          INTEGER  NOT NULL,
    lane_sum       BLOB   NOT NULL,
    updated_at     INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, key_id, schema_id, schema_version, cohort, day, part)
);

-- The UTC day and part a record was rolled up under; NULL for records stored before rollups
-- existed (jobs over those read them one by one).
ALTER TABLE records ADD COLUMN rollup_day INTEGER;

ALTER TABLE records ADD COLUMN rollup_part INTEGER;

CREATE INDEX records_by_rollup ON records (tenant_id, key_id, schema_id, schema_version, cohort, rollup_day, rollup_part, seq);
