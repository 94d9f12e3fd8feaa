//! The audit log: append-only, hash-chained, with heads the server signs (Ed25519).
//!
//! Each tenant has its own chain, which begins with the tenant's creation; events that belong
//! to no tenant (failed authentications, lockouts, the signing keys in use) form the
//! server-wide chain. Every entry is written in the same transaction as the event it records
//! (`store::audit`), so an event without its entry, or an entry without its event, cannot be
//! committed.
//!
//! - Entries, their hash chain, signed heads and `verify_chain` are wire types, defined once
//!   in `blindsight_proto::chain` for the server and every auditor.
//! - [`Event`]: what is recorded, ids, digests and outcomes only.
//! - [`SigningKey`]: the signing key and its file (owner-only, created atomically); it signs
//!   heads and job receipts.
//! - [`witness`]: the heads the key signed, kept beside it outside the database; a chain that
//!   no longer extends them is halted (entries removed, an older backup restored).
//! - The checks of `blindsight audit verify` live in `blindsight-audit`; the server's store
//!   gathers their evidence from its database (`store::evidence`).

mod event;
mod key;
pub mod witness;

pub use blindsight_proto::chain::{
    self, AuditError, Entry, SignedHead, contains_head, verify_chain,
};
pub use event::Event;
pub use key::{AUDIT_KEY_FILE, KeyError, SigningKey};
