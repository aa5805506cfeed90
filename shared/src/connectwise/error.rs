use serde::{Deserialize, Serialize};

use crate::http::TransportError;

/// One entry of ConnectWise's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

/// Everything that can go wrong talking to ConnectWise.
#[derive(Debug, thiserror::Error)]
pub enum ConnectWiseError {
    #[error("ConnectWise connection is not configured: {0}")]
    Config(String),
    #[error("invalid input `{field}`: {message}")]
    InvalidInput { field: String, message: String },
    #[error("unknown ConnectWise action `{0}`")]
    UnknownAction(String),
    #[error("ConnectWise answered {status} {code}: {message}{}", describe_details(.errors))]
    Api {
        status: u16,
        code: String,
        message: String,
        errors: Vec<ApiErrorDetail>,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("unexpected answer from ConnectWise: {0}")]
    Decode(String),
    #[error("the listing of {path} is incomplete: {read} records read, ConnectWise counts {count}")]
    IncompleteListing { path: String, read: u64, count: u64 },
}

impl ConnectWiseError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether a write that failed this way may still have been carried out: a 5xx, a
    /// lost or garbled answer. Such a creation is never sent again before reading what
    /// ConnectWise holds.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500,
            Self::Transport(TransportError::OutcomeUnknown { .. }) | Self::Decode(_) => true,
            _ => false,
        }
    }

    /// Whether trying again later may succeed (network, 5xx, 429, a garbled or short
    /// answer); bad settings, refused input and other 4xx will fail again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500 || *status == 429,
            Self::Transport(TransportError::Build(_)) => false,
            Self::Transport(_) | Self::Decode(_) | Self::IncompleteListing { .. } => true,
            Self::Config(_) | Self::InvalidInput { .. } | Self::UnknownAction(_) => false,
        }
    }

    /// The HTTP status ConnectWise answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn describe_details(errors: &[ApiErrorDetail]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut part = String::new();
            if let Some(field) = &e.field {
                part.push_str(&format!("field `{field}`: "));
            }
            part.push_str(e.message.as_deref().unwrap_or(""));
            if let Some(code) = &e.code {
                part.push_str(&format!(" ({code})"));
            }
            part
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join("; "))
    }
}
