//! The Lansweeper Data API simulator: a GraphQL server on `/api/v2/graphql` with the
//! real token checks, error shapes and the 150-requests-a-minute quota.

mod clock;
mod generate;
pub mod published;
mod schema;
mod server;
mod site;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use clock::QuotaClock;
pub use generate::{SITE_ID, SiteSpec, TOKEN, generate};
pub use site::{CustomFieldDef, Site, SiteData, VALID_PATHS, shape};

use crate::control::Control;
use crate::server::Server;

/// The default cap on the mutations one request carries: below the product's first
/// batch (20), so every run of the simulator shows the product finding the size that
/// goes through, as it must against a Lansweeper whose limit is unpublished.
pub const MUTATIONS_PER_REQUEST: usize = 10;

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
    /// What the quota's minutes and hours are counted by.
    pub clock: QuotaClock,
    /// The most root mutation fields (aliased `site { editAsset }`s) one request may
    /// carry; a request with more is refused whole, as a GraphQL server with a batching
    /// or complexity limit refuses it. Lansweeper publishes no such limit, so the default
    /// is a cautious [`MUTATIONS_PER_REQUEST`]; `None`: no cap.
    pub mutations_per_request: Option<usize>,
}

impl Default for LansweeperOptions {
    fn default() -> Self {
        Self {
            token: TOKEN.into(),
            rate_limit: 150,
            rate_window: Duration::from_secs(60),
            hourly_limit: 2_000,
            clock: QuotaClock::default(),
            mutations_per_request: Some(MUTATIONS_PER_REQUEST),
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
    /// The sites the token sees; the first is the one `site_id` and `with_site` mean.
    sites: Mutex<Vec<Site>>,
    options: LansweeperOptions,
    rate: Mutex<server::RateState>,
    control: Control,
}

impl Shared {
    fn sites(&self) -> MutexGuard<'_, Vec<Site>> {
        self.sites
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the site with this id, if the token sees it.
    fn with_site<T>(&self, id: &str, f: impl FnOnce(&mut Site) -> T) -> Option<T> {
        self.sites().iter_mut().find(|s| s.data.id == id).map(f)
    }

    fn rate(&self) -> MutexGuard<'_, server::RateState> {
        self.rate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator's sites, shared with it.
#[derive(Clone)]
pub struct Sites(Arc<Shared>);

impl Sites {
    /// Reads or edits the first site's data directly.
    ///
    /// # Panics
    /// The simulator serves no site.
    pub fn with_site<T>(&self, f: impl FnOnce(&mut Site) -> T) -> T {
        let mut sites = self.0.sites();
        f(sites.first_mut().expect("the simulator serves a site"))
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
        Self::start_sites(vec![site], options, listen).await
    }

    /// Serves several sites to the one token (an MSP's clients).
    pub async fn start_sites(
        sites: Vec<Site>,
        options: LansweeperOptions,
        listen: &str,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            sites: Mutex::new(sites),
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

    /// The first site's id.
    pub fn site_id(&self) -> String {
        self.shared
            .sites()
            .first()
            .map(|s| s.data.id.clone())
            .unwrap_or_default()
    }

    /// Every site's id, in order.
    pub fn site_ids(&self) -> Vec<String> {
        self.shared
            .sites()
            .iter()
            .map(|s| s.data.id.clone())
            .collect()
    }

    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Requests refused for rate so far.
    pub fn rate_refusals(&self) -> u64 {
        self.shared.rate().refused
    }

    /// Reads or edits the first site's data directly.
    ///
    /// # Panics
    /// The simulator serves no site.
    pub fn with_site<T>(&self, f: impl FnOnce(&mut Site) -> T) -> T {
        self.sites().with_site(f)
    }

    /// The sites' data apart from the server: what a test edits from a hook that runs
    /// while the product is midway through its work.
    pub fn sites(&self) -> Sites {
        Sites(self.shared.clone())
    }

    /// Reads or edits one site's data directly; None when it serves no such site.
    pub fn with_site_id<T>(&self, id: &str, f: impl FnOnce(&mut Site) -> T) -> Option<T> {
        self.shared.with_site(id, f)
    }

    pub async fn wait(self) {
        self.server.wait().await;
    }
}
