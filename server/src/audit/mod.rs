//! The audit log: append-only, hash-chained, with heads the server signs (Ed25519).
//!
//! Each tenant has its own chain, which begins with the tenant's creation; events that belong
//! to no tenant (failed authentications, lockouts, the signing keys in use) form the
//! server-wide chain. Every entry is written in the same transaction as the event it records
//! (`store::audit`), so an event without its entry, or an entry without its event, cannot be
//! committed.
//!
//! - [`chain`]: entries, the canonical encoding and hash chain, signed heads and
//!   [`verify_chain`]: pure (no I/O), for `blindsight audit verify` to reuse.
//! - [`Event`]: what is recorded, ids, digests and outcomes only.
//! - [`SigningKey`]: the signing key and its file (owner-only, created atomically); it signs
//!   heads and job receipts.
//! - [`evidence`] and [`verify`]: what `blindsight audit verify` checks, and the checks.

pub mod chain;
mod event;
pub mod evidence;
mod key;
pub mod verify;

pub use chain::{AuditError, Entry, SignedHead, contains_head, verify_chain};
pub use event::Event;
pub use key::{AUDIT_KEY_FILE, KeyError, SigningKey};
