-- The audit log: one hash chain per tenant (`chain` = tenant id) and a server-wide chain
-- (`chain` = '', for failed authentications, lockouts and signing keys). Entries hold ids,
-- digests and outcomes only; `body` is the canonical JSON that was hashed. `audit_heads`
-- holds each chain's last entry and is the row appends lock, so concurrent writers queue
-- instead of forking a chain. Append-only: the triggers refuse updates and deletes (the chain
-- and the signed head catch anyone who bypasses them). Described in docs/STORAGE.md; the
-- encoding in docs/FORMATS.md.

CREATE TABLE audit_log (
    chain     TEXT    NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq >= 1),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL UNIQUE,
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, prev_hash)
);

CREATE TABLE audit_heads (
    chain TEXT    PRIMARY KEY,
    seq   INTEGER NOT NULL CHECK (seq >= 0),
    hash  TEXT    NOT NULL,
    at    INTEGER NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
