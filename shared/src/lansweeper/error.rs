use serde::{Deserialize, Serialize};

use crate::http::TransportError;

/// One entry of a GraphQL `errors` array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphQlError {
    pub message: String,
    /// Where in the answer the error sits (`site.assetResources`).
    #[serde(default)]
    pub path: Vec<serde_json::Value>,
    #[serde(default)]
    pub extensions: Option<serde_json::Value>,
}

impl GraphQlError {
    pub fn code(&self) -> Option<&str> {
        self.extensions.as_ref()?.get("code")?.as_str()
    }

    pub fn path_text(&self) -> String {
        self.path
            .iter()
            .map(|p| match p {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LansweeperError {
    #[error("Lansweeper connection is not configured: {0}")]
    Config(String),
    #[error("invalid input `{field}`: {message}")]
    InvalidInput { field: String, message: String },
    #[error("Lansweeper rejected the token (check LS_TOKEN and that it is not expired)")]
    Unauthenticated,
    #[error("Lansweeper refused access: {0}")]
    Forbidden(String),
    #[error("Lansweeper answered with errors: {}", describe(.errors))]
    GraphQl {
        errors: Vec<GraphQlError>,
        /// What the answer held besides the errors.
        partial_data: Option<serde_json::Value>,
    },
    #[error("Lansweeper answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("unexpected answer from Lansweeper: {0}")]
    Decode(String),
}

impl LansweeperError {
    /// How long Lansweeper asked to wait, when it still refused for rate once the
    /// retries were spent: work that can stop here hands the wait back instead of failing.
    pub fn rate_limited_for(&self) -> Option<std::time::Duration> {
        match self {
            Self::Transport(TransportError::RateLimited { wait, .. }) => Some(*wait),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (network, 5xx, 429, a garbled answer); a
    /// refused token, refused input or a GraphQL error will fail again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::Transport(TransportError::Build(_)) => false,
            Self::Transport(_) | Self::Decode(_) => true,
            Self::Config(_)
            | Self::InvalidInput { .. }
            | Self::Unauthenticated
            | Self::Forbidden(_)
            | Self::GraphQl { .. } => false,
        }
    }
}

fn describe(errors: &[GraphQlError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut text = e.message.clone();
            if !e.path.is_empty() {
                text.push_str(&format!(" (at {})", e.path_text()));
            }
            if let Some(code) = e.code() {
                text.push_str(&format!(" [{code}]"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a site the token cannot read is reported (it fails alone; the others go on).
pub fn site_refused(site: &str, reason: &str) -> String {
    format!("Lansweeper refused access to site {site}: {reason}")
}
