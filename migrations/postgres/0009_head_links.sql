-- Signed heads name their predecessor. Each chain head stores the digest of the head one
-- entry before it (`prev_head`, 64 hex digits; zeros before the first entry), which its
-- signature covers, so any two heads of a chain can be checked against each other with the
-- entries between them. NULL for a head signed before this migration; the next append
-- computes it from the chain. Described in docs/STORAGE.md; the format in docs/FORMATS.md.

ALTER TABLE audit_heads ADD COLUMN prev_head TEXT;
