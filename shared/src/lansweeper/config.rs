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
    /// The token is a personal access token, or Lansweeper's `lsf_` form (its checksum
    /// verified), whose site id and regional API URL count where `LS_SITE_ID` and
    /// `LS_API_URL` are not set.
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

/// Characters of an `lsf_` token's checksum, at its end.
const CHECKSUM_CHARS: usize = 11;

/// An `lsf_` token without its prefix, as Lansweeper's connector documentation decodes
/// it: the encoded part, then an 11-character checksum (the CRC-32 of the encoded part,
/// taken as a signed 32-bit integer, in hexadecimal, left-padded with zeroes), the
/// encoded part base64 of a JSON object with `token`, `userId` and, where present,
/// `siteId` and `regionUrl`. Errors never echo any part of the token.
fn unpack(rest: &str) -> Result<Packed, LansweeperError> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let refused = |why: &str| {
        LansweeperError::Config(format!(
            "LS_TOKEN starts with lsf_ but {why}; copy the token again from Lansweeper"
        ))
    };
    let rest = rest.trim();
    let split = rest
        .len()
        .checked_sub(CHECKSUM_CHARS)
        .filter(|&at| at > 0 && rest.is_char_boundary(at))
        .ok_or_else(|| refused("is too short to carry its checksum"))?;
    let (encoded, checksum) = rest.split_at(split);
    if !checksum.eq_ignore_ascii_case(&lsf_checksum(encoded)) {
        return Err(refused(
            "its checksum does not match (the token is damaged or incomplete)",
        ));
    }
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded).ok())
        .ok_or_else(|| refused("its encoded part is not base64"))?;
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|_| refused("its encoded part is not a JSON object"))?;
    let text = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(Packed {
        token: text("token").ok_or_else(|| refused("it carries no token"))?,
        site_id: text("siteId"),
        api_url: text("regionUrl").map(|region| api_url_of(&region)),
    })
}

/// The checksum an `lsf_` token's encoded part ends with.
fn lsf_checksum(encoded: &str) -> String {
    checksum_text(crc32fast::hash(encoded.as_bytes()))
}

/// A CRC-32 as an `lsf_` token writes it.
fn checksum_text(crc: u32) -> String {
    #[allow(
        clippy::cast_possible_wrap,
        reason = "Lansweeper takes the CRC-32 as signed"
    )]
    let signed = crc as i32;
    let hex = if signed < 0 {
        format!("-{:x}", signed.unsigned_abs())
    } else {
        format!("{signed:x}")
    };
    format!("{hex:0>CHECKSUM_CHARS$}")
}

/// The GraphQL endpoint of a region: `regionUrl` names the regional API.
fn api_url_of(region: &str) -> String {
    let region = region.trim_end_matches('/');
    if region.ends_with("/graphql") {
        region.to_string()
    } else {
        format!("{region}/api/v2/graphql")
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn lookup(token: String) -> impl Fn(&str) -> Option<String> {
        move |key| (key == "LS_TOKEN").then(|| token.clone())
    }

    /// An `lsf_` token built as Lansweeper's documentation describes it.
    fn lsf(json: &str) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        format!("lsf_{encoded}{}", lsf_checksum(&encoded))
    }

    #[test]
    fn a_plain_token_is_taken_as_it_is() {
        let plain = LansweeperConfig::from_lookup(lookup("pat-123".into())).unwrap();
        assert_eq!(plain.token, "pat-123");
        assert_eq!(plain.api_url, DEFAULT_API_URL);
    }

    /// Breaking it looks like: a real `lsf_` token refused (its checksum decoded as
    /// base64), or a damaged one taken.
    #[test]
    fn an_lsf_token_is_verified_and_decoded_as_lansweeper_documents_it() {
        let token = lsf(
            r#"{"token":"d0eec9fd","userId":"u-1","siteId":"site-7","regionUrl":"https://api.eu.lansweeper.com"}"#,
        );
        let config = LansweeperConfig::from_lookup(lookup(token.clone())).unwrap();
        assert_eq!(config.token, "d0eec9fd");
        assert_eq!(config.site_id, "site-7");
        assert_eq!(
            config.api_url,
            "https://api.eu.lansweeper.com/api/v2/graphql"
        );
        assert!(!format!("{config:?}").contains("d0eec9fd"), "never logged");

        // Settings that are set win over what the token carries.
        let overridden = LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some(token.clone()),
            "LS_SITE_ID" => Some("site-1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(overridden.site_id, "site-1");

        // One character of the encoded part changed: the checksum no longer matches.
        let mut damaged: Vec<char> = token.chars().collect();
        damaged[10] = if damaged[10] == 'A' { 'B' } else { 'A' };
        let damaged: String = damaged.into_iter().collect();
        let refused = LansweeperConfig::from_lookup(lookup(damaged.clone()))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("checksum"), "{refused}");
        for part in [&damaged[4..20], &damaged[damaged.len() - 11..]] {
            assert!(
                !refused.contains(part),
                "the token is never echoed: {refused}"
            );
        }
        let short = LansweeperConfig::from_lookup(lookup("lsf_abc".into()))
            .unwrap_err()
            .to_string();
        assert!(short.contains("too short"), "{short}");
    }

    #[test]
    fn the_checksum_is_the_signed_crc_32_left_padded_to_11() {
        // Both signs occur among tokens: a CRC of 2^31 or more is written negative.
        let checksums: Vec<String> = (0..64)
            .map(|i| lsf_checksum(&format!("encoded-part-{i}")))
            .collect();
        let negative = checksums.iter().find(|c| c.contains('-')).unwrap();
        let positive = checksums.iter().find(|c| !c.contains('-')).unwrap();
        for checksum in [negative, positive] {
            assert_eq!(checksum.len(), 11, "{checksum}");
        }
        // The documentation's example: a CRC of 2^31 or more ends a token in `00-7f480235`.
        assert_eq!(checksum_text(0x80b7_fdcb), "00-7f480235");
        assert_eq!(checksum_text(0x1234), "00000001234");
        let encoded = "eyJ0b2tlbiI6InQifQ==";
        let expected = lsf_checksum(encoded);
        let token = format!("lsf_{encoded}{expected}");
        assert_eq!(
            LansweeperConfig::from_lookup(lookup(token)).unwrap().token,
            "t"
        );
    }
}
