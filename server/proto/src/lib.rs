//! `blindsight-proto`: Blindsight's wire protocol, defined once for the server and the client.
//!
//! Every `/v1` request and response body, the frozen job spec, the problem types (one enum,
//! mapped to and from its slug and status), and the audit log's entries and signed heads with
//! their verification. Binary bodies (envelopes, bundles, proven lists, results) are
//! `blindsight-crypto`'s formats; this crate holds the JSON around them.
//!
//! Depends on `blindsight-crypto`, serde and ring (for the audit chain's hashes and
//! signatures) only: no I/O, no async, no HTTP stack. The `openapi` feature derives utoipa
//! schemas for the server's OpenAPI document.
//!
//! - [`problem`]: [`Problem`] and the [`ProblemDocument`] every refusal carries;
//! - [`tenants`], [`keysets`], [`schemas`], [`records`], [`models`], [`jobs`], [`audit`]: the
//!   bodies of each group of routes;
//! - [`chain`]: audit-log entries, the hash chain, signed heads and [`verify_chain`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod chain;
pub mod jobs;
pub mod keysets;
pub mod models;
pub mod problem;
mod query;
pub mod records;
pub mod schemas;
pub mod tenants;

pub use audit::{AuditKey, AuditPage, AuditQuery};
pub use chain::{AuditError, Entry, SignedHead, contains_head, verify_chain};
pub use jobs::{
    Job, JobCreated, JobList, JobReceipt, JobRequest, JobSpec, JobStatus, JobTasks, ListedSpec,
    ModelRef, RollupPart, Selection, rollup_ranges, rollup_shards,
};
pub use keysets::{KeysetRegistered, MANIFEST_FINGERPRINT_HEADER};
pub use models::{ModelInfo, ModelList, ModelRegistered};
pub use problem::{PROBLEM_BASE, Problem, ProblemDocument};
pub use query::percent_encode;
pub use records::{RecordListQuery, RecordPage, RecordStored, RecordSummary};
pub use schemas::{SchemaInfo, SchemaList, SchemaRegistered};
pub use tenants::{MAX_MIN_COHORT, NewTenant, TenantCreated, TenantTokens, Token};
