//! One file per command.

mod audit;
mod jobs;
mod keygen;
mod model;
mod models;
mod query;
mod record;
mod register;
mod results;
mod score;
mod supervise;
mod transcript;
mod wait;

pub(crate) use audit::audit_verify;
pub(crate) use jobs::show_jobs;
pub(crate) use keygen::keygen;
pub(crate) use model::register_model;
pub(crate) use models::list_models;
pub(crate) use query::query;
pub(crate) use record::record;
pub(crate) use register::register;
pub(crate) use results::show_results;
pub(crate) use score::score;
pub(crate) use supervise::{Format, SuperviseArgs, supervise};
pub(crate) use transcript::open_transcript;
