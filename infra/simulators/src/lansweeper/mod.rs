//! The Lansweeper Data API simulator: a GraphQL server on `/api/v2/graphql` with the
//! real token checks, error shapes and the 150-requests-a-minute quota.

mod generate;
mod schema;
mod server;
mod site;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use generate::{SITE_ID, SiteSpec, TOKEN, generate};
pub use site::{CustomFieldDef, Site, SiteData, VALID_PATHS, shape};

use crate::control::Control;
use crate::server::Server;

/// How the simulator enforces Lansweeper's limits.
#[derive(Debug, Clone)]
pub struct LansweeperOptions {
    pub token: String,
    /// Requests allowed per window.
    pub rate_limit: usize,
    /// Lansweeper's window is a minute; tests shrink it to speed time up.
    pub rate_window: Duration,
    /// Synchronous requests allowed per hour (sixty `rate_window`s).
    pub hourly_limit: usize,
}

impl Default for LansweeperOptions {
    fn default() -> Self {
        Self {
            token: TOKEN.into(),
            rate_limit: 150,
            rate_window: Duration::from_secs(60),
            hourly_limit: 2_000,
        }
    }
}

impl LansweeperOptions {
    /// Time runs `factor` times faster: a minute's quota passes in 60/factor seconds.
    pub fn sped_up(factor: f64) -> Self {
        Self {
            rate_window: Duration::from_secs_f64(60.0 / factor.max(1.0)),
            ..Self::default()
        }
    }
}

pub(crate) struct Shared {
    site: Mutex<Site>,
    options: LansweeperOptions,
    rate: Mutex<server::RateState>,
    control: Control,
}

impl Shared {
    fn site(&self) -> MutexGuard<'_, Site> {
        self.site
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rate(&self) -> MutexGuard<'_, server::RateState> {
        self.rate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops the server.
pub struct LansweeperSimulator {
    server: Server,
    shared: Arc<Shared>,
}

impl LansweeperSimulator {
    pub async fn start(
        site: Site,
        options: LansweeperOptions,
        listen: &str,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            site: Mutex::new(site),
            options,
            rate: Mutex::new(server::RateState::default()),
            control: Control::default(),
        });
        let server = Server::start(server::router(shared.clone()), listen, "Lansweeper").await?;
        Ok(Self { server, shared })
    }

    /// What `LS_API_URL` takes.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v2/graphql", self.server.addr())
    }

    pub fn site_id(&self) -> String {
        self.shared.site().data.id.clone()
    }

    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Requests refused for rate so far.
    pub fn rate_refusals(&self) -> u64 {
        self.shared.rate().refused
    }

    /// Reads or edits the site's data directly.
    pub fn with_site<T>(&self, f: impl FnOnce(&mut Site) -> T) -> T {
        f(&mut self.shared.site())
    }

    pub async fn wait(self) {
        self.server.wait().await;
    }
}
