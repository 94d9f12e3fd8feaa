//! Custom record schemas: `PUT /v1/schemas/{schema_id}/{version}` and `GET /v1/schemas`. The
//! definition itself is `blindsight_crypto::RecordSchema`, kept as its canonical JSON text.

use serde::{Deserialize, Serialize};

/// The reply to `PUT /v1/schemas/{schema_id}/{version}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaRegistered {
    /// The schema id.
    pub schema_id: String,
    /// Its version.
    pub version: u32,
    /// SHA-256 of its canonical JSON.
    pub digest: String,
    /// Whether this call stored it (false: the same schema was already registered).
    pub created: bool,
}

/// A registered schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaInfo {
    /// The schema id.
    pub schema_id: String,
    /// Its version.
    pub version: u32,
    /// Its canonical JSON.
    pub definition: String,
    /// SHA-256 of `definition`.
    pub digest: String,
}

/// The reply to `GET /v1/schemas`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaList {
    /// The tenant's custom schemas.
    pub schemas: Vec<SchemaInfo>,
}
