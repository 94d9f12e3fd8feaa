-- The audit log: one hash chain per tenant (`chain` = tenant id) and a server-wide chain
-- (`chain` = '', for failed authentications, lockouts and signing keys). Entries hold ids,
-- digests and outcomes only; `body` is the canonical JSON that was hashed. `audit_heads`
-- holds each chain's last entry and is the row appends lock, so concurrent writers queue
-- instead of forking a chain. Append-only: the triggers refuse updates, deletes and
-- truncation (the chain and the signed head catch anyone who bypasses them). Described in
-- docs/STORAGE.md; the encoding in docs/FORMATS.md.

CREATE TABLE audit_log (
    chain     TEXT   NOT NULL,
    seq       BIGINT NOT NULL CHECK (seq >= 1),
    at        BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    body      TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL UNIQUE,
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, prev_hash)
);

CREATE TABLE audit_heads (
    chain TEXT   PRIMARY KEY,
    seq   BIGINT NOT NULL CHECK (seq >= 0),
    hash  TEXT   NOT NULL,
    at    BIGINT NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
