-- Receipts and stored signed heads. Every job result carries the receipt the server signed
-- when it stored the output (canonical JSON, key id, signature); every chain head carries the
-- signature made when it last moved, so an auditor can verify a database offline with only
-- the published audit key. Described in docs/STORAGE.md; the formats in docs/FORMATS.md.

ALTER TABLE job_results ADD COLUMN receipt TEXT;

ALTER TABLE audit_heads ADD COLUMN key_id TEXT;

ALTER TABLE audit_heads ADD COLUMN signature TEXT;
