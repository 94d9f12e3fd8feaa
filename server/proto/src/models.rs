//! Risk models: `POST /v1/models` and `GET /v1/models`. The model definition itself is
//! `blindsight_crypto::compute::RiskModel`.

use blindsight_crypto::compute::RiskModel;
use serde::{Deserialize, Serialize};

/// The reply to `POST /v1/models` (201 when stored, 200 when the same model already was).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelRegistered {
    /// The model id.
    pub model_id: String,
    /// Its version.
    pub version: u32,
    /// SHA-256 of its canonical JSON.
    pub digest: String,
    /// The function id receipts name (`risk_score/<id>-v<version>`).
    pub function_id: String,
}

/// A model as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelInfo {
    /// The model id.
    pub model_id: String,
    /// Its version.
    pub version: u32,
    /// SHA-256 of its canonical JSON.
    pub digest: String,
    /// The function id receipts name.
    pub function_id: String,
    /// Built into the server (the same for every tenant).
    #[serde(default)]
    pub builtin: bool,
    /// The definition (docs/MODELS.md).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub definition: RiskModel,
}

/// The reply to `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelList {
    /// The built-in models, then the tenant's.
    pub models: Vec<ModelInfo>,
}
