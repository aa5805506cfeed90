use std::fmt;

use super::DEFAULT_API_URL;
use super::error::LansweeperError;

/// Token and site; from the environment on one machine, from the secret in Lambda.
#[derive(Clone)]
pub struct LansweeperConfig {
    pub token: String,
    pub site_id: String,
    pub api_url: String,
}

impl LansweeperConfig {
    pub fn from_env() -> Result<Self, LansweeperError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// `LS_TOKEN`, `LS_SITE_ID` (may be empty when only listing sites), `LS_API_URL`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LansweeperError> {
        let value = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Ok(Self {
            token: value("LS_TOKEN")
                .ok_or_else(|| LansweeperError::Config("LS_TOKEN is not set".into()))?,
            site_id: value("LS_SITE_ID").unwrap_or_default(),
            api_url: value("LS_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        })
    }

    pub(crate) fn require_site(&self) -> Result<&str, LansweeperError> {
        if self.site_id.is_empty() {
            Err(LansweeperError::Config(
                "LS_SITE_ID is not set (`lscw sites` lists the sites the token can see)".into(),
            ))
        } else {
            Ok(&self.site_id)
        }
    }
}

impl fmt::Debug for LansweeperConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LansweeperConfig")
            .field("token", &"<redacted>")
            .field("site_id", &self.site_id)
            .field("api_url", &self.api_url)
            .finish()
    }
}
