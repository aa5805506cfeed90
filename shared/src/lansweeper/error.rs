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
            // A GraphQL server's own failure (Apollo's `INTERNAL_SERVER_ERROR`, what a
            // resolver that threw answers): the same request may go through later.
            // Anything else it answers is about the request, and fails alike again.
            Self::GraphQl { errors, .. } => {
                !errors.is_empty()
                    && errors
                        .iter()
                        .all(|e| e.code() == Some("INTERNAL_SERVER_ERROR"))
            }
            Self::Config(_)
            | Self::InvalidInput { .. }
            | Self::Unauthenticated
            | Self::Forbidden(_) => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(codes: &[&str]) -> LansweeperError {
        let errors = codes
            .iter()
            .map(|code| {
                serde_json::from_value(serde_json::json!({
                    "message": "failed", "extensions": {"code": code}
                }))
                .unwrap()
            })
            .collect();
        LansweeperError::GraphQl {
            errors,
            partial_data: None,
        }
    }

    /// Breaking it looks like: a run failed for good (and its state machine's Retry never
    /// tried) because Lansweeper's server failed once.
    #[test]
    fn a_server_s_own_failure_is_transient_a_refused_request_is_not() {
        assert!(answered(&["INTERNAL_SERVER_ERROR"]).is_transient());
        assert!(!answered(&["GRAPHQL_VALIDATION_FAILED"]).is_transient());
        assert!(!answered(&["INTERNAL_SERVER_ERROR", "BAD_USER_INPUT"]).is_transient());
        assert!(!answered(&[]).is_transient());
    }
}
