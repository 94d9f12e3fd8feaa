//! [`Admin`]: what the operator does through the API.

use crate::api::{ApiError, Client, NewTenant, TenantCreated};

/// The operator, with the server's admin token.
#[derive(Debug)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Connects to the server at `url` with the admin token.
    pub fn connect(url: &str, admin_token: &str) -> Self {
        Self {
            client: Client::new(url, admin_token),
        }
    }

    /// Creates a tenant; its keyholder, ingest and auditor tokens are in the reply, and shown
    /// only this once. Never retried after a lost connection (it could create a second tenant).
    pub fn create_tenant(&self, tenant: &NewTenant) -> Result<TenantCreated, ApiError> {
        self.client.create_tenant_with(tenant)
    }

    /// The transport.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
