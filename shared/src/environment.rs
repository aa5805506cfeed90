//! Where a deployment's settings come from and what is built from them: the clients,
//! the store and the sync settings. The Lambda functions and `lscw` build it the same
//! way; only the store they hand it differs.

use std::collections::HashMap;

use crate::connectwise::{ClientOptions, ConnectWiseClient, ConnectionConfig};
use crate::error::PipelineError;
use crate::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};
use crate::settings::SyncSettings;
use crate::store::Store;

/// Settings by key: the secret's values (when `SECRET_ARN` names one) win over the
/// environment's.
pub struct Lookup {
    pub(crate) values: HashMap<String, String>,
    pub(crate) environment: bool,
}

impl Lookup {
    /// Settings from the environment alone.
    pub fn environment() -> Self {
        Self {
            values: HashMap::new(),
            environment: true,
        }
    }

    /// These settings and no others (a demo's, a test's): the environment is not read.
    pub fn from_values<K: Into<String>, V: Into<String>>(
        values: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: values
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            environment: false,
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .cloned()
            .filter(|v| !v.is_empty())
            .or_else(|| self.environment.then(|| std::env::var(key).ok()).flatten())
    }
}

/// Built once per process (in `main` of a Lambda function, at the start of an `lscw`
/// command), handed to every invocation.
pub struct Environment<S> {
    pub connectwise: ConnectWiseClient,
    pub lansweeper: LansweeperClient,
    pub store: S,
    pub settings: SyncSettings,
}

impl<S: Store> Environment<S> {
    /// Connects both APIs as `lookup` says and reads the sync settings.
    ///
    /// # Errors
    /// A setting is missing or malformed, or ConnectWise's codebase cannot be found.
    pub async fn connect(lookup: &Lookup, store: S) -> Result<Self, PipelineError> {
        Self::connect_with(lookup, store, LansweeperOptions::default()).await
    }

    /// As [`Environment::connect`], with Lansweeper's pacing set (a simulator's faster clock).
    ///
    /// # Errors
    /// As [`Environment::connect`].
    pub async fn connect_with(
        lookup: &Lookup,
        store: S,
        lansweeper_options: LansweeperOptions,
    ) -> Result<Self, PipelineError> {
        let get = |key: &str| lookup.get(key);
        let mut options = ClientOptions::default();
        if let Some(n) = get("CW_MAX_CONCURRENCY") {
            options.max_concurrent = n.trim().parse().map_err(|_| {
                PipelineError::Config(format!("CW_MAX_CONCURRENCY must be a number, got `{n}`"))
            })?;
        }
        let connectwise =
            ConnectWiseClient::connect(&ConnectionConfig::from_lookup(get)?, options).await?;
        // Only for a simulator run at the same speed: Lansweeper's clock is real time.
        let lansweeper_options = match get("LS_QUOTA_SPEED") {
            Some(speed) => {
                let factor: f64 = speed
                    .trim()
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f >= 1.0)
                    .ok_or_else(|| {
                        PipelineError::Config(format!(
                            "LS_QUOTA_SPEED must be a number from 1, got `{speed}`"
                        ))
                    })?;
                lansweeper_options.sped_up(factor)
            }
            None => lansweeper_options,
        };
        let lansweeper =
            LansweeperClient::new(LansweeperConfig::from_lookup(get)?, lansweeper_options)?;
        Ok(Self {
            connectwise,
            lansweeper,
            store,
            settings: SyncSettings::from_lookup(get)?,
        })
    }
}
