//! The ConnectWise PSA simulator: `/{codebase}apis/3.0/…` and `/login/companyinfo/{id}`.

mod conditions;
pub(crate) mod generate;
mod schema;
mod server;
mod tenant;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub use generate::{
    COMPANY_ID, COMPANY_NAMES, CONFIGURATION_POD, LEVEL_NAMES, PRIVATE_KEY, PUBLIC_KEY, TenantSpec,
    empty_tenant, generate,
};
pub use schema::{
    AGREEMENTS, CONFIGURATIONS, CONTACTS, RESOURCES, Resource, TICKETS, USER_DEFINED_FIELDS,
};
pub use tenant::{ApiError, CustomFieldDef, ReferenceRefusal, Tenant, TenantData};

use crate::control::Control;
use crate::server::Server;

/// The client id the generated tenant's examples use; any non-empty id is accepted.
pub const CLIENT_ID: &str = "00000000-0000-4000-8000-00000000c0de";

pub(crate) struct Shared {
    tenant: Mutex<Tenant>,
    control: Control,
}

impl Shared {
    fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.tenant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server.
pub struct ConnectWiseSimulator {
    server: Server,
    shared: Arc<Shared>,
}

impl ConnectWiseSimulator {
    /// Serves `tenant` on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(tenant: Tenant, listen: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            tenant: Mutex::new(tenant),
            control: Control::default(),
        });
        let server = Server::start(server::router(shared.clone()), listen, "ConnectWise").await?;
        Ok(Self { server, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`, what `CW_SITE` takes to exercise the codebase lookup.
    pub fn site(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// What `CW_BASE_URL` takes.
    pub fn base_url(&self) -> String {
        let codebase = self.shared.tenant().codebase.clone();
        format!("http://{}/{codebase}apis/3.0", self.server.addr())
    }

    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Reads or edits the tenant's data directly, as a person in the ConnectWise UI would.
    pub fn with_tenant<T>(&self, f: impl FnOnce(&mut Tenant) -> T) -> T {
        f(&mut self.shared.tenant())
    }

    /// Serves until the process is stopped.
    pub async fn wait(self) {
        self.server.wait().await;
    }
}
