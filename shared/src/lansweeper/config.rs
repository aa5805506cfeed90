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
    ///
    /// The token is a personal access token, or the connector's form: `lsf_` followed by
    /// base64 of a JSON object holding the token, and possibly the site id and the API's
    /// regional URL, which count where `LS_SITE_ID` and `LS_API_URL` are not set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LansweeperError> {
        let value = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let given = value("LS_TOKEN")
            .ok_or_else(|| LansweeperError::Config("LS_TOKEN is not set".into()))?;
        let packed = match given.strip_prefix("lsf_") {
            Some(encoded) => unpack(encoded)?,
            None => Packed {
                token: given,
                ..Packed::default()
            },
        };
        Ok(Self {
            token: packed.token,
            site_id: value("LS_SITE_ID").or(packed.site_id).unwrap_or_default(),
            api_url: value("LS_API_URL")
                .or(packed.api_url)
                .unwrap_or_else(|| DEFAULT_API_URL.to_string()),
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

/// What an `lsf_` token carries.
#[derive(Default)]
struct Packed {
    token: String,
    site_id: Option<String>,
    api_url: Option<String>,
}

/// The base64 JSON of an `lsf_` token. Errors never echo the token.
fn unpack(encoded: &str) -> Result<Packed, LansweeperError> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let refused = || {
        LansweeperError::Config(
            "LS_TOKEN starts with lsf_ but is not base64 of a JSON object with a token".into(),
        )
    };
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded.trim()).ok())
        .ok_or_else(refused)?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| refused())?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|key| {
            object
                .get(*key)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
    };
    Ok(Packed {
        token: text(&["token", "accessToken"]).ok_or_else(refused)?,
        site_id: text(&["siteId", "site_id", "site"]),
        api_url: text(&["apiUrl", "api_url", "url", "endpoint"]),
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn lookup(token: String) -> impl Fn(&str) -> Option<String> {
        move |key| (key == "LS_TOKEN").then(|| token.clone())
    }

    #[test]
    fn a_plain_token_and_the_connector_s_packed_token_both_work() {
        let plain = LansweeperConfig::from_lookup(lookup("pat-123".into())).unwrap();
        assert_eq!(plain.token, "pat-123");
        assert_eq!(plain.api_url, DEFAULT_API_URL);

        let packed = base64::engine::general_purpose::STANDARD.encode(
            r#"{"token":"d0eec9fd","siteId":"site-7","apiUrl":"https://api.eu.lansweeper.com/api/v2/graphql"}"#,
        );
        let config = LansweeperConfig::from_lookup(lookup(format!("lsf_{packed}"))).unwrap();
        assert_eq!(config.token, "d0eec9fd");
        assert_eq!(config.site_id, "site-7");
        assert!(config.api_url.contains(".eu."));

        // Settings that are set win over what the token carries.
        let overridden = LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some(format!("lsf_{packed}")),
            "LS_SITE_ID" => Some("site-1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(overridden.site_id, "site-1");

        let broken = LansweeperConfig::from_lookup(lookup("lsf_not-base64-secret!".into()))
            .unwrap_err()
            .to_string();
        assert!(
            broken.contains("lsf_") && !broken.contains("secret"),
            "{broken}"
        );
        assert!(!format!("{config:?}").contains("d0eec9fd"), "never logged");
    }
}
