//! Entries, their hash chain and signed heads, and [`verify_chain`]. Pure: no I/O, no
//! database, no async, no server types, so `blindsight audit verify` can run exactly these
//! checks on entries fetched over HTTP or read from a database. The byte encodings are
//! specified in docs/FORMATS.md ("Audit log").
//!
//! Size: half of it is the tests that pin each way a chain or a head can be tampered with;
//! the encoding, its verification and those tests stay together.

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The `prev_hash` of every chain's first entry (and the hash of an empty chain's head).
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Domain separation for entry hashes: no other hash in the system starts with it.
pub const ENTRY_DOMAIN: &str = "blindsight/audit/entry/v1";

/// Domain separation for signed heads of the first format (no `prev_head`); still verified,
/// never signed any more.
pub const HEAD_DOMAIN_V1: &str = "blindsight/audit/head/v1";

/// Domain separation for signed heads: the signing key signs nothing else.
pub const HEAD_DOMAIN: &str = "blindsight/audit/head/v2";

/// One audit-log entry, as stored and as served by `GET /v1/audit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// Position in its chain, from 1.
    pub seq: i64,
    /// The tenant whose chain it is in; `null` for the server-wide chain (failed
    /// authentications, lockouts, signing keys).
    pub tenant_id: Option<String>,
    /// When it was written (seconds since the epoch, the writer's clock).
    pub at: i64,
    /// What happened, e.g. `record.ingested` (docs/API.md lists them).
    pub kind: String,
    /// The event's details: canonical JSON (keys sorted, no whitespace) of ids, digests and
    /// outcomes. Kept as the exact text that was hashed.
    pub body: String,
    /// The previous entry's `hash` (64 hex digits; zeros for the first entry).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this entry's canonical encoding (64 hex digits).
    pub hash: String,
}

/// A chain's head as the server signed it: the chain held `seq` entries, the last with
/// `hash`, written at time `at`, and the head before it had digest `prev_head`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedHead {
    /// The chain: a tenant id, or `null` for the server-wide chain.
    pub tenant_id: Option<String>,
    /// The number of entries (the last entry's `seq`; 0 for an empty chain).
    pub seq: i64,
    /// The last entry's hash (zeros for an empty chain), 64 hex digits.
    pub hash: String,
    /// When the last entry was written (seconds since the epoch; 0 for an empty chain).
    pub at: i64,
    /// The digest of the chain's head one entry earlier ([`head_digests`]; zeros for the
    /// first entry), 64 hex digits: it ties every head to all heads before it, so two heads
    /// can be checked against each other. Absent only in heads of the first format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_head: Option<String>,
    /// The signing key's id (`GET /v1/audit/key`): SHA-256 of the public key, hex.
    pub key_id: String,
    /// Ed25519 signature over the head's canonical encoding, 128 hex digits.
    pub signature: String,
}

/// Why a chain or head does not verify. Each names the first broken entry (or the head).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An entry is absent: the log skips from `seq - 1` to `next`.
    #[error("entry {seq}: missing (the log skips from entry {} to entry {next})", seq - 1)]
    Missing {
        /// The missing entry.
        seq: i64,
        /// The entry found in its place.
        next: i64,
    },
    /// An entry appears later than it should.
    #[error("entry {seq}: out of order (entry {found} is in its place)")]
    OutOfOrder {
        /// The entry expected at this position.
        seq: i64,
        /// The entry found there instead.
        found: i64,
    },
    /// An entry names another chain than the one being verified.
    #[error("entry {seq}: belongs to {found}, not to {expected}")]
    WrongChain {
        /// The entry.
        seq: i64,
        /// The chain it names.
        found: String,
        /// The chain being verified.
        expected: String,
    },
    /// An entry's `prev_hash` is not the previous entry's hash: something before it was
    /// removed, replaced or reordered.
    #[error("entry {seq}: hash does not chain")]
    Unchained {
        /// The entry.
        seq: i64,
    },
    /// An entry's stored hash is not the hash of its contents: it was edited.
    #[error("entry {seq}: hash does not match its contents")]
    Altered {
        /// The entry.
        seq: i64,
    },
    /// A hash field is not 64 hex digits.
    #[error("entry {seq}: {field} is not 64 hex digits")]
    MalformedEntry {
        /// The entry.
        seq: i64,
        /// Which field.
        field: &'static str,
    },
    /// The head is for another chain than the one being verified.
    #[error("head: signed for {found}, not for {expected}")]
    HeadWrongChain {
        /// The chain the head names.
        found: String,
        /// The chain being verified.
        expected: String,
    },
    /// The signed head names more entries than the log holds: entries at the end are gone.
    #[error("head: names entry {head} but the log ends at entry {last}")]
    HeadBeyondLog {
        /// The head's `seq`.
        head: i64,
        /// The last entry present.
        last: i64,
    },
    /// The head's hash is not the hash of the entry it names.
    #[error("head: hash does not match entry {seq}")]
    HeadMismatch {
        /// The head's `seq`.
        seq: i64,
    },
    /// The head was signed by another key than the published one.
    #[error("head: signed by key {found}, not by the published key {expected}")]
    WrongKey {
        /// The head's `key_id`.
        found: String,
        /// The published key's id.
        expected: String,
    },
    /// The signature does not verify with the published key.
    #[error("head: signature does not verify with key {key_id}")]
    BadSignature {
        /// The published key's id.
        key_id: String,
    },
    /// The head's `prev_head` is not the digest of the chain's head one entry earlier.
    #[error("head: prev_head does not match the head of entry {}", seq - 1)]
    PrevHeadMismatch {
        /// The head's `seq`.
        seq: i64,
    },
    /// A head field is malformed.
    #[error("head: {0}")]
    MalformedHead(&'static str),
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_chain(out: &mut Vec<u8>, tenant_id: Option<&str>) {
    match tenant_id {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_bytes(out, t.as_bytes());
        }
    }
}

/// Describes a chain for messages.
fn chain_name(tenant_id: Option<&str>) -> String {
    match tenant_id {
        None => "the server-wide chain".into(),
        Some(t) => format!("tenant {t:?}'s chain"),
    }
}

/// The bytes an entry's hash is taken over (docs/FORMATS.md): the domain, the previous hash,
/// then the entry's fields, every variable-length field prefixed by its length.
pub fn entry_preimage(
    prev_hash: &[u8; 32],
    seq: i64,
    tenant_id: Option<&str>,
    at: i64,
    kind: &str,
    body: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + kind.len() + body.len());
    put_bytes(&mut out, ENTRY_DOMAIN.as_bytes());
    out.extend_from_slice(prev_hash);
    out.extend_from_slice(&seq.to_be_bytes());
    put_chain(&mut out, tenant_id);
    out.extend_from_slice(&at.to_be_bytes());
    put_bytes(&mut out, kind.as_bytes());
    put_bytes(&mut out, body.as_bytes());
    out
}

/// SHA-256 of [`entry_preimage`].
pub fn entry_hash(
    prev_hash: &[u8; 32],
    seq: i64,
    tenant_id: Option<&str>,
    at: i64,
    kind: &str,
    body: &str,
) -> [u8; 32] {
    sha256(&entry_preimage(prev_hash, seq, tenant_id, at, kind, body))
}

/// The bytes a head's signature covers (docs/FORMATS.md): the domain, the chain, `seq`,
/// `hash`, `at` and `prev_head`.
pub fn head_message(
    tenant_id: Option<&str>,
    seq: i64,
    hash: &[u8; 32],
    at: i64,
    prev_head: &[u8; 32],
) -> Vec<u8> {
    let mut out = head_message_v1_domain(HEAD_DOMAIN, tenant_id, seq, hash, at);
    out.extend_from_slice(prev_head);
    out
}

/// The bytes a head of the first format covered: no `prev_head`.
pub fn head_message_v1(tenant_id: Option<&str>, seq: i64, hash: &[u8; 32], at: i64) -> Vec<u8> {
    head_message_v1_domain(HEAD_DOMAIN_V1, tenant_id, seq, hash, at)
}

fn head_message_v1_domain(
    domain: &str,
    tenant_id: Option<&str>,
    seq: i64,
    hash: &[u8; 32],
    at: i64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    put_bytes(&mut out, domain.as_bytes());
    put_chain(&mut out, tenant_id);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&at.to_be_bytes());
    out
}

/// A head's digest: SHA-256 of its [`head_message`]. The next head names it as `prev_head`.
pub fn head_digest(
    tenant_id: Option<&str>,
    seq: i64,
    hash: &[u8; 32],
    at: i64,
    prev_head: &[u8; 32],
) -> [u8; 32] {
    sha256(&head_message(tenant_id, seq, hash, at, prev_head))
}

/// The digest of the head after each entry, in order: element `i` is the digest of the head
/// naming entry `i + 1` (written at the entry's `at`, naming the previous digest, zeros
/// before the first). The heads of a chain are thus fixed by its entries: a head at `seq`
/// must carry element `seq - 2` (zeros for `seq` 1) as its `prev_head`. `entries` must be
/// a chain from `seq` 1 in order; hashes that do not parse count as zeros ([`verify_chain`]
/// names them).
pub fn head_digests(chain: Option<&str>, entries: &[Entry]) -> Vec<[u8; 32]> {
    let mut prev = GENESIS_HASH;
    entries
        .iter()
        .map(|e| {
            let hash = parse_hash(&e.hash).unwrap_or(GENESIS_HASH);
            prev = head_digest(chain, e.seq, &hash, e.at, &prev);
            prev
        })
        .collect()
}

/// The `prev_head` a head at `seq` must carry, from [`head_digests`] of its chain.
fn expected_prev_head(digests: &[[u8; 32]], seq: i64) -> Option<[u8; 32]> {
    match usize::try_from(seq) {
        Ok(0) => Some(GENESIS_HASH),
        Ok(1) => Some(GENESIS_HASH),
        Ok(n) => digests.get(n - 2).copied(),
        Err(_) => None,
    }
}

/// A signing key's id: SHA-256 of its 32-byte Ed25519 public key, hex.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(sha256(public_key))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Parses a 64-hex-digit hash.
pub fn parse_hash(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

impl Entry {
    /// Recomputes this entry's hash from its fields and `prev_hash`.
    pub fn computed_hash(&self) -> Result<[u8; 32], AuditError> {
        let prev = parse_hash(&self.prev_hash).ok_or(AuditError::MalformedEntry {
            seq: self.seq,
            field: "prev_hash",
        })?;
        Ok(entry_hash(
            &prev,
            self.seq,
            self.tenant_id.as_deref(),
            self.at,
            &self.kind,
            &self.body,
        ))
    }
}

impl SignedHead {
    /// Checks the signature against `public_key` (32 bytes), and that the head names that
    /// key.
    pub fn verify_signature(&self, public_key: &[u8]) -> Result<(), AuditError> {
        let expected = key_id(public_key);
        if self.key_id != expected {
            return Err(AuditError::WrongKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        let hash = parse_hash(&self.hash).ok_or(AuditError::MalformedHead("hash"))?;
        let signature =
            hex::decode(&self.signature).map_err(|_| AuditError::MalformedHead("signature"))?;
        let message = match &self.prev_head {
            None => head_message_v1(self.tenant_id.as_deref(), self.seq, &hash, self.at),
            Some(prev) => {
                let prev = parse_hash(prev).ok_or(AuditError::MalformedHead("prev_head"))?;
                head_message(self.tenant_id.as_deref(), self.seq, &hash, self.at, &prev)
            }
        };
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&message, &signature)
            .map_err(|_| AuditError::BadSignature { key_id: expected })
    }
}

/// Verifies one chain from genesis: `entries` must be the chain's entries from `seq` 1 in
/// order, each linking to the one before (`prev_hash`) and hashing to its stored `hash`; the
/// signed `head` must be for the same chain, name one of them (entries after it are checked
/// for chaining but are not covered by the signature) and carry a valid signature by
/// `public_key` (the 32-byte Ed25519 key `GET /v1/audit/key` publishes). `chain` is the
/// chain the caller means to verify: a tenant id, or `None` for the server-wide chain.
///
/// The error names the first broken entry, e.g. `entry 1834: hash does not chain`.
///
/// A head proves what the chain held when it was signed; an auditor who keeps the heads
/// it has seen also detects a later rewrite by checking that a new chain still contains
/// them ([`contains_head`]).
pub fn verify_chain(
    chain: Option<&str>,
    entries: &[Entry],
    head: &SignedHead,
    public_key: &[u8],
) -> Result<(), AuditError> {
    if head.tenant_id.as_deref() != chain {
        return Err(AuditError::HeadWrongChain {
            found: chain_name(head.tenant_id.as_deref()),
            expected: chain_name(chain),
        });
    }
    let mut prev = GENESIS_HASH;
    for (i, entry) in entries.iter().enumerate() {
        let seq = i as i64 + 1;
        if entry.seq != seq {
            return Err(if entries[i..].iter().any(|e| e.seq == seq) {
                AuditError::OutOfOrder {
                    seq,
                    found: entry.seq,
                }
            } else {
                AuditError::Missing {
                    seq,
                    next: entry.seq,
                }
            });
        }
        if entry.tenant_id.as_deref() != chain {
            return Err(AuditError::WrongChain {
                seq,
                found: chain_name(entry.tenant_id.as_deref()),
                expected: chain_name(chain),
            });
        }
        let prev_hash = parse_hash(&entry.prev_hash).ok_or(AuditError::MalformedEntry {
            seq,
            field: "prev_hash",
        })?;
        if prev_hash != prev {
            return Err(AuditError::Unchained { seq });
        }
        let stored =
            parse_hash(&entry.hash).ok_or(AuditError::MalformedEntry { seq, field: "hash" })?;
        if entry.computed_hash()? != stored {
            return Err(AuditError::Altered { seq });
        }
        prev = stored;
    }
    let last = entries.len() as i64;
    if head.seq < 0 {
        return Err(AuditError::MalformedHead("seq is negative"));
    }
    if head.seq > last {
        return Err(AuditError::HeadBeyondLog {
            head: head.seq,
            last,
        });
    }
    let head_hash = parse_hash(&head.hash).ok_or(AuditError::MalformedHead("hash"))?;
    let named = match usize::try_from(head.seq) {
        Ok(0) | Err(_) => GENESIS_HASH,
        Ok(n) => parse_hash(&entries[n - 1].hash).unwrap_or(GENESIS_HASH),
    };
    if head_hash != named {
        return Err(AuditError::HeadMismatch { seq: head.seq });
    }
    head.verify_signature(public_key)?;
    check_prev_head(head, &head_digests(chain, entries))
}

/// Checks a head's `prev_head` (when it has one) against the chain's head digests.
fn check_prev_head(head: &SignedHead, digests: &[[u8; 32]]) -> Result<(), AuditError> {
    let Some(prev) = &head.prev_head else {
        return Ok(());
    };
    let prev = parse_hash(prev).ok_or(AuditError::MalformedHead("prev_head"))?;
    match expected_prev_head(digests, head.seq) {
        Some(expected) if expected == prev => Ok(()),
        _ => Err(AuditError::PrevHeadMismatch { seq: head.seq }),
    }
}

/// Whether a verified chain still holds an earlier head an auditor kept: the entry at the
/// old head's `seq` must have the old head's hash, and the heads before it the old head's
/// `prev_head`. `entries` must have passed [`verify_chain`].
pub fn contains_head(entries: &[Entry], earlier: &SignedHead) -> Result<(), AuditError> {
    let hash = parse_hash(&earlier.hash).ok_or(AuditError::MalformedHead("hash"))?;
    let n =
        usize::try_from(earlier.seq).map_err(|_| AuditError::MalformedHead("seq is negative"))?;
    let found = match n {
        0 => Some(GENESIS_HASH),
        n => entries.get(n - 1).and_then(|e| parse_hash(&e.hash)),
    };
    match found {
        Some(h) if h == hash => check_prev_head(
            earlier,
            &head_digests(earlier.tenant_id.as_deref(), &entries[..n]),
        ),
        Some(_) => Err(AuditError::HeadMismatch { seq: earlier.seq }),
        None => Err(AuditError::HeadBeyondLog {
            head: earlier.seq,
            last: entries.len() as i64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    /// Builds a chain of `n` entries for `tenant`, and a head over all of them.
    fn chain(tenant: Option<&str>, n: i64, pair: &Ed25519KeyPair) -> (Vec<Entry>, SignedHead) {
        let mut prev = GENESIS_HASH;
        let mut entries = Vec::new();
        for seq in 1..=n {
            let body = format!("{{\"n\":{seq}}}");
            let hash = entry_hash(&prev, seq, tenant, 1_800_000_000 + seq, "test.event", &body);
            entries.push(Entry {
                seq,
                tenant_id: tenant.map(str::to_owned),
                at: 1_800_000_000 + seq,
                kind: "test.event".into(),
                body,
                prev_hash: hex::encode(prev),
                hash: hex::encode(hash),
            });
            prev = hash;
        }
        let head = sign(tenant, &entries, n, pair);
        (entries, head)
    }

    /// The head naming entry `n` of `entries`, signed as the server signs it.
    fn sign(tenant: Option<&str>, entries: &[Entry], n: i64, pair: &Ed25519KeyPair) -> SignedHead {
        let digests = head_digests(tenant, entries);
        let i = n as usize;
        let (hash, at) = match i {
            0 => (GENESIS_HASH, 0),
            _ => (parse_hash(&entries[i - 1].hash).unwrap(), entries[i - 1].at),
        };
        let prev = if i < 2 { GENESIS_HASH } else { digests[i - 2] };
        let signature = pair.sign(&head_message(tenant, n, &hash, at, &prev));
        SignedHead {
            tenant_id: tenant.map(str::to_owned),
            seq: n,
            hash: hex::encode(hash),
            at,
            prev_head: Some(hex::encode(prev)),
            key_id: key_id(pair.public_key().as_ref()),
            signature: hex::encode(signature.as_ref()),
        }
    }

    fn pair() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap()
    }

    fn rehash(entries: &mut [Entry], from: usize) {
        for i in from..entries.len() {
            let prev = if i == 0 {
                hex::encode(GENESIS_HASH)
            } else {
                entries[i - 1].hash.clone()
            };
            entries[i].prev_hash = prev;
            entries[i].hash = hex::encode(entries[i].computed_hash().unwrap());
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        // The vector in docs/FORMATS.md ("Audit log").
        let hash = entry_hash(
            &GENESIS_HASH,
            1,
            Some("tenant-a"),
            1_800_000_000,
            "tenant.created",
            r#"{"min_cohort_size":10}"#,
        );
        assert_eq!(
            hex::encode(hash),
            "b75e6c19010be453d1b6db8553249bd624c5ada09ac0c12a648db1595236c8ba"
        );
        // The server-wide chain is not the chain of a tenant with an empty name.
        assert_ne!(
            entry_hash(&GENESIS_HASH, 1, None, 0, "k", "{}"),
            entry_hash(&GENESIS_HASH, 1, Some(""), 0, "k", "{}")
        );
    }

    #[test]
    fn a_clean_chain_verifies_and_each_tampering_is_named() {
        let pair = pair();
        let pk = pair.public_key().as_ref().to_vec();
        let t = Some("tenant-a");
        let (entries, head) = chain(t, 8, &pair);
        verify_chain(t, &entries, &head, &pk).unwrap();
        let check = |entries: &[Entry], head: &SignedHead| {
            verify_chain(t, entries, head, &pk).unwrap_err().to_string()
        };

        let mut edited = entries.clone();
        edited[4].body = r#"{"n":99}"#.into();
        assert_eq!(
            check(&edited, &head),
            "entry 5: hash does not match its contents"
        );
        // Edited and re-hashed: the next entry no longer chains.
        let mut rehashed = edited.clone();
        rehashed[4].hash = hex::encode(rehashed[4].computed_hash().unwrap());
        assert_eq!(check(&rehashed, &head), "entry 6: hash does not chain");
        // Re-hashing everything after it moves the head: only the signature catches that.
        rehash(&mut rehashed, 4);
        assert_eq!(check(&rehashed, &head), "head: hash does not match entry 8");

        let mut deleted = entries.clone();
        deleted.remove(2);
        assert_eq!(
            check(&deleted, &head),
            "entry 3: missing (the log skips from entry 2 to entry 4)"
        );
        // Deleted and renumbered: the entry after the gap does not chain.
        for (i, e) in deleted.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(check(&deleted, &head), "entry 3: hash does not chain");

        let mut reordered = entries.clone();
        reordered.swap(3, 4);
        assert_eq!(
            check(&reordered, &head),
            "entry 4: out of order (entry 5 is in its place)"
        );
        // Reordered with the positions renumbered: the content no longer chains.
        reordered[3].seq = 4;
        reordered[4].seq = 5;
        assert_eq!(check(&reordered, &head), "entry 4: hash does not chain");

        // Entries cut from the end: the signed head names more than the log holds.
        assert_eq!(
            check(&entries[..6], &head),
            "head: names entry 8 but the log ends at entry 6"
        );
        // Another chain's entries, or head.
        let (other, other_head) = chain(Some("tenant-b"), 8, &pair);
        assert_eq!(
            check(&other, &head),
            "entry 1: belongs to tenant \"tenant-b\"'s chain, not to tenant \"tenant-a\"'s chain"
        );
        assert_eq!(
            check(&entries, &other_head),
            "head: signed for tenant \"tenant-b\"'s chain, not for tenant \"tenant-a\"'s chain"
        );
        // A forged or re-dated head.
        let mut forged = head.clone();
        forged.at += 1;
        assert!(check(&entries, &forged).starts_with("head: signature does not verify"));
        let other_pair = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        let (_, foreign) = chain(t, 8, &other_pair);
        assert!(check(&entries, &foreign).starts_with("head: signed by key"));
        // A malformed hash is named, never a panic.
        let mut bad = entries.clone();
        bad[0].hash = "zz".into();
        assert_eq!(check(&bad, &head), "entry 1: hash is not 64 hex digits");
    }

    #[test]
    fn heads_before_the_end_and_empty_chains_verify() {
        let pair = pair();
        let pk = pair.public_key().as_ref().to_vec();
        let (entries, head) = chain(None, 5, &pair);
        let early = sign(None, &entries, 3, &pair);
        verify_chain(None, &entries, &early, &pk).unwrap();
        contains_head(&entries, &early).unwrap();
        contains_head(&entries, &head).unwrap();
        let (_, empty) = chain(None, 0, &pair);
        verify_chain(None, &[], &empty, &pk).unwrap();
        // A rewritten chain no longer holds the head an auditor kept.
        let mut rewritten = entries.clone();
        rewritten[1].body = "{}".into();
        rehash(&mut rewritten, 1);
        assert_eq!(
            contains_head(&rewritten, &early).unwrap_err().to_string(),
            "head: hash does not match entry 3"
        );
    }

    #[test]
    fn heads_name_the_head_before_them() {
        let pair = pair();
        let pk = pair.public_key().as_ref().to_vec();
        let t = Some("tenant-a");
        let (entries, head) = chain(t, 6, &pair);
        // Every head of the chain verifies, and each names the digest of the one before.
        let digests = head_digests(t, &entries);
        for n in 1..=6 {
            let h = sign(t, &entries, n, &pair);
            verify_chain(t, &entries, &h, &pk).unwrap();
            contains_head(&entries, &h).unwrap();
            let hash = parse_hash(&h.hash).unwrap();
            let prev = parse_hash(h.prev_head.as_ref().unwrap()).unwrap();
            assert_eq!(
                head_digest(t, n, &hash, h.at, &prev),
                digests[n as usize - 1]
            );
        }
        // A head that names another predecessor, signed with the right key, is caught.
        let mut forked = head.clone();
        forked.prev_head = Some(hex::encode([9u8; 32]));
        let message = head_message(
            t,
            6,
            &parse_hash(&forked.hash).unwrap(),
            forked.at,
            &[9u8; 32],
        );
        forked.signature = hex::encode(pair.sign(&message).as_ref());
        assert_eq!(
            verify_chain(t, &entries, &forked, &pk)
                .unwrap_err()
                .to_string(),
            "head: prev_head does not match the head of entry 5"
        );
        // An entry re-dated (and everything after re-hashed): a kept head no longer matches.
        let early = sign(t, &entries, 4, &pair);
        let mut redated = entries.clone();
        redated[1].at += 1;
        rehash(&mut redated, 1);
        assert_eq!(
            contains_head(&redated, &early).unwrap_err().to_string(),
            "head: hash does not match entry 4"
        );
        // Truncated below a kept head.
        assert_eq!(
            contains_head(&entries[..2], &early)
                .unwrap_err()
                .to_string(),
            "head: names entry 4 but the log ends at entry 2"
        );
        // Heads of the first format (no prev_head) still verify.
        let hash = parse_hash(&head.hash).unwrap();
        let v1 = SignedHead {
            prev_head: None,
            signature: hex::encode(pair.sign(&head_message_v1(t, 6, &hash, head.at)).as_ref()),
            ..head.clone()
        };
        verify_chain(t, &entries, &v1, &pk).unwrap();
        // A v1 signature does not pass as a v2 head, nor the other way round.
        let mut mixed = v1.clone();
        mixed.prev_head = head.prev_head.clone();
        assert!(
            verify_chain(t, &entries, &mixed, &pk)
                .unwrap_err()
                .to_string()
                .starts_with("head: signature does not verify")
        );
    }
}
