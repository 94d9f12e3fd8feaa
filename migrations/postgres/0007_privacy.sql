-- Differential privacy for lane results: each tenant's privacy budget and what its jobs have
-- spent (zero-concentrated DP, rho in millionths; NULL budget: the tenant runs no job with
-- privacy), and the seed each such job's noise was drawn from (kept for auditors, never
-- served; the job's receipt commits to it). Described in docs/STORAGE.md.

ALTER TABLE tenants ADD COLUMN privacy_budget_micro BIGINT;

ALTER TABLE tenants ADD COLUMN privacy_spent_micro BIGINT NOT NULL DEFAULT 0;

ALTER TABLE job_results ADD COLUMN noise_seed BYTEA;
