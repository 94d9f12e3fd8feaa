//! One small type per role, over one transport [`Client`]: what each holder of a token can do,
//! and nothing else.
//!
//! - [`Recorder`]: an app with an ingest token and the pinned app bundle: records sessions or
//!   any registered schema's values. Holds nothing that decrypts.
//! - [`KeyHolder`]: the clinic with a keyholder token: registers keys and models, queues risk
//!   and aggregate jobs, waits for them, decrypts results, opens transcripts.
//! - [`Auditor`]: compliance with an auditor token: gathers the evidence and runs every check.
//! - [`Admin`]: the operator with the admin token: creates tenants.

mod admin;
mod auditor;
mod keyholder;
mod recorder;

pub use admin::Admin;
pub use auditor::Auditor;
pub use keyholder::KeyHolder;
pub use recorder::Recorder;
