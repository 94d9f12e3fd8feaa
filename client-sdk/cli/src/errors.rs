//! Errors as the CLI shows them: with a hint of what to do, from the problem type.

use blindsight_client::api::{ApiError, Problem};

/// An error that carries its own hint (printed as `error: …; hint: …`).
#[derive(Debug)]
pub(crate) struct Hinted {
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

pub(crate) fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// The server's refusal (or the client's wait) a cause of an error is, if it is one.
pub(crate) fn api_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a ApiError> {
    cause.downcast_ref::<ApiError>().or_else(|| {
        match cause.downcast_ref::<blindsight_client::Error>() {
            Some(
                blindsight_client::Error::Api(e)
                | blindsight_client::Error::Fetch { source: e, .. },
            ) => Some(e),
            _ => None,
        }
    })
}

/// A hint for errors the user can act on, by the server's problem slug.
pub(crate) fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        let Some(api) = api_error(cause) else {
            continue;
        };
        if let ApiError::WaitTimedOut { job_id, .. } = api {
            return Some(format!(
                "wait again with `blindsight results {job_id}` or a longer --timeout"
            ));
        }
        let hint = match api.problem()? {
            Problem::CohortTooSmall => {
                "widen the selection (--cohort, --since, --until) to at least the tenant's minimum cohort, set when the tenant is created"
            }
            Problem::PrivacyBudgetExhausted => {
                "ask for a larger epsilon per query (less noise is spent faster) or fewer queries; the budget is set when the tenant is created"
            }
            Problem::NoRecords => {
                "check --key-id, --cohort and --since/--until (times are when a record was recorded, else received)"
            }
            Problem::UnknownRecordRef => {
                "each --record must be stored under --key-id and match the rest of the selection"
            }
            Problem::UnknownModel => {
                "register it with `blindsight model <file.json>`, or use the built-in --model crisis --model-version 1"
            }
            Problem::ModelExists => "models are immutable: register a change under a new version",
            Problem::UnknownKeySet | Problem::UnknownKeySetRef => {
                "register the key set with `blindsight register <key-id>.public`"
            }
            Problem::UnknownSchema => "the built-in schema is --schema session --schema-version 1",
            Problem::UnknownJob => "list this tenant's jobs with `blindsight jobs`",
            Problem::JobNotFinished => "wait for it with `blindsight results <job-id>`",
            Problem::Forbidden => "this command needs the key holder's token in BLINDSIGHT_TOKEN",
            Problem::Unauthorized => {
                "check BLINDSIGHT_TOKEN: it must be a token issued for this tenant"
            }
            _ => return None,
        };
        return Some(hint.to_owned());
    }
    None
}

/// The server's problem type in an error's chain, if the server refused with one.
pub(crate) fn refusal(err: &anyhow::Error) -> Option<Problem> {
    err.chain().find_map(|cause| api_error(cause)?.problem())
}
