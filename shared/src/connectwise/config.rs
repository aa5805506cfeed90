use std::fmt;

use serde::Deserialize;

use super::error::ConnectWiseError;

/// Where and as whom to reach ConnectWise. Read from the environment on one machine and
/// from the Secrets Manager secret (same keys) in Lambda.
#[derive(Clone, Deserialize)]
pub struct ConnectionConfig {
    /// `CW_SITE`: e.g. `api-na.myconnectwise.net`; a scheme may be given (`http://…`).
    #[serde(rename = "CW_SITE", default)]
    pub site: Option<String>,
    #[serde(rename = "CW_COMPANY_ID")]
    pub company_id: String,
    #[serde(rename = "CW_PUBLIC_KEY")]
    pub public_key: String,
    #[serde(rename = "CW_PRIVATE_KEY")]
    pub private_key: String,
    #[serde(rename = "CW_CLIENT_ID")]
    pub client_id: String,
    /// `CW_BASE_URL`: the whole API base, e.g. `https://host/v4_6_release/apis/3.0`.
    /// When set, no codebase lookup happens.
    #[serde(rename = "CW_BASE_URL", default)]
    pub base_url: Option<String>,
}

impl ConnectionConfig {
    pub fn from_env() -> Result<Self, ConnectWiseError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds the connection from any key → value source (environment, secret JSON).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConnectWiseError> {
        let required = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConnectWiseError::Config(format!("{key} is not set")))
        };
        let optional = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let config = Self {
            site: optional("CW_SITE"),
            company_id: required("CW_COMPANY_ID")?,
            public_key: required("CW_PUBLIC_KEY")?,
            private_key: required("CW_PRIVATE_KEY")?,
            client_id: required("CW_CLIENT_ID")?,
            base_url: optional("CW_BASE_URL"),
        };
        if config.site.is_none() && config.base_url.is_none() {
            return Err(ConnectWiseError::Config(
                "set CW_SITE (e.g. api-na.myconnectwise.net) or CW_BASE_URL".into(),
            ));
        }
        Ok(config)
    }

    /// `https://{site}` unless the site already names its scheme.
    pub(crate) fn site_root(&self) -> Option<String> {
        self.site.as_ref().map(|site| {
            let site = site.trim_end_matches('/');
            if site.starts_with("http://") || site.starts_with("https://") {
                site.to_string()
            } else {
                format!("https://{site}")
            }
        })
    }
}

/// Keys are never printed, not even in debug output.
impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("site", &self.site)
            .field("company_id", &self.company_id)
            .field("public_key", &"<redacted>")
            .field("private_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_key_is_named() {
        let err = ConnectionConfig::from_lookup(lookup(&[("CW_SITE", "x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConnectWise connection is not configured: CW_COMPANY_ID is not set"
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let config = ConnectionConfig::from_lookup(lookup(&[
            ("CW_SITE", "api-na.myconnectwise.net"),
            ("CW_COMPANY_ID", "co"),
            ("CW_PUBLIC_KEY", "pub-secret"),
            ("CW_PRIVATE_KEY", "priv-secret"),
            ("CW_CLIENT_ID", "cid"),
        ]))
        .unwrap();
        let text = format!("{config:?}");
        assert!(
            !text.contains("pub-secret") && !text.contains("priv-secret"),
            "{text}"
        );
        assert_eq!(
            config.site_root().as_deref(),
            Some("https://api-na.myconnectwise.net")
        );
    }
}
