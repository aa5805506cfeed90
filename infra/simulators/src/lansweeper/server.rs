//! HTTP side of the Lansweeper simulator: token checks in their three real forms, the
//! request quota with its penalty minute, then the GraphQL schema.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::schema::{self, LansweeperSchema};
use super::{Shared, published};
use crate::control::Seen;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    schema: LansweeperSchema,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let schema = schema::build(shared.clone());
    Router::new()
        .route("/api/v2/graphql", post(graphql))
        .with_state(AppState { shared, schema })
}

/// The quota: a sliding window of accepted requests, and once it is exceeded a penalty
/// that lasts until a whole window passes with no request at all.
#[derive(Debug, Default)]
pub(crate) struct RateState {
    accepted: VecDeque<Instant>,
    /// Accepted requests of the last hour.
    hour: VecDeque<Instant>,
    penalty_until: Option<Instant>,
    pub(crate) refused: u64,
}

struct RateVerdict {
    allowed: bool,
    remaining: usize,
    reset_in: Duration,
}

impl RateState {
    fn admit(
        &mut self,
        now: Instant,
        limit: usize,
        window: Duration,
        hourly_limit: usize,
    ) -> RateVerdict {
        let hour = window * 60;
        while self
            .hour
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            self.hour.pop_front();
        }
        if self.hour.len() >= hourly_limit {
            // The hourly quota: refused until the oldest request of the hour ages out.
            self.refused += 1;
            let reset_in = self.hour.front().map_or(hour, |oldest| {
                hour.saturating_sub(now.duration_since(*oldest))
            });
            return RateVerdict {
                allowed: false,
                remaining: 0,
                reset_in,
            };
        }
        if self.penalty_until.is_some_and(|until| now < until) {
            // Knocking during the penalty restarts it.
            self.penalty_until = Some(now + window);
            self.refused += 1;
            return RateVerdict {
                allowed: false,
                remaining: 0,
                reset_in: window,
            };
        }
        self.penalty_until = None;
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() >= limit {
            self.penalty_until = Some(now + window);
            self.refused += 1;
            return RateVerdict {
                allowed: false,
                remaining: 0,
                reset_in: window,
            };
        }
        self.accepted.push_back(now);
        self.hour.push_back(now);
        let reset_in = self.accepted.front().map_or(window, |oldest| {
            window.saturating_sub(now.duration_since(*oldest))
        });
        RateVerdict {
            allowed: true,
            remaining: limit - self.accepted.len(),
            reset_in,
        }
    }
}

fn errors_body(message: &str, code: Option<&str>) -> Value {
    let mut error = json!({"message": message});
    if let Some(code) = code {
        error["extensions"] = json!({"code": code});
    }
    json!({"errors": [error], "data": null})
}

fn respond(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Which operation a request is, for the per-endpoint counters.
fn operation(body: &str) -> &'static str {
    [
        "editAsset",
        "createCustomField",
        "assetResources",
        "customFields",
        "authorizedSites",
        "me",
    ]
    .into_iter()
    .find(|name| body.contains(name))
    .unwrap_or("other")
}

/// Serves a GraphQL request and counts a refusal (a 4xx answer) against its operation.
async fn graphql(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let endpoint = format!(
        "POST graphql:{}",
        operation(&String::from_utf8_lossy(&body))
    );
    app.shared.control.see(|| Seen {
        method: "POST".into(),
        path: "/api/v2/graphql".into(),
        query: Vec::new(),
        body: serde_json::from_slice(&body).ok(),
    });
    let response = answer(&app, &endpoint, &headers, &body).await;
    app.shared
        .control
        .on_answer(&endpoint, response.status().as_u16());
    response
}

async fn answer(app: &AppState, endpoint: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let shared = &app.shared;
    let control = &shared.control;
    let _in_flight = control.begin();
    let fault = control.on_request(endpoint);
    let latency = control.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = fault {
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = respond(
            status,
            errors_body("injected fault", Some("INTERNAL_SERVER_ERROR")),
        );
        if let Some(seconds) = fault.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }

    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token_ok = |token: &str| token.trim() == shared.options.token;
    match authorization {
        None => {
            return respond(
                StatusCode::UNAUTHORIZED,
                errors_body("You have to provide authorization.", None),
            );
        }
        Some(value) => {
            if let Some(token) = value.strip_prefix("Bearer ") {
                if !token_ok(token) {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        errors_body("Unauthenticated", Some("UNAUTHENTICATED")),
                    );
                }
            } else if !value.strip_prefix("Token ").is_some_and(token_ok) {
                return respond(
                    StatusCode::BAD_REQUEST,
                    errors_body("Context creation failed: You must be logged in.", None),
                );
            }
        }
    }

    let verdict = shared.rate().admit(
        shared.options.clock.now(),
        shared.options.rate_limit,
        shared.options.rate_window,
        shared.options.hourly_limit,
    );
    let reset_epoch = SystemTime::now()
        .checked_add(verdict.reset_in)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let rate_headers = [
        ("x-ratelimit-limit", shared.options.rate_limit.to_string()),
        ("x-ratelimit-remaining", verdict.remaining.to_string()),
        ("x-ratelimit-reset", reset_epoch.to_string()),
    ];
    let mut response = if verdict.allowed {
        let response = execute(&app.schema, body, shared.options.mutations_per_request).await;
        // An edit is saved; its answer may still be lost on the way back (as
        // `Control::lose_answers_to("graphql:editAsset", …)` says).
        if endpoint.ends_with(":editAsset") && response.status().is_success() {
            crate::server::lose_answer(control, endpoint, response).await
        } else {
            response
        }
    } else {
        let mut refused = respond(
            StatusCode::TOO_MANY_REQUESTS,
            errors_body(
                "Too many requests, please try again later.",
                Some("RATE_LIMITED"),
            ),
        );
        let seconds = verdict.reset_in.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, value);
        }
        refused
    };
    for (name, value) in rate_headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// How many root fields the request's mutation carries (each alias counts); 0 for a query
/// or a document that does not parse (the schema reports that).
fn root_mutations(query: &str) -> usize {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return 0;
    };
    let count = |op: &async_graphql::parser::types::OperationDefinition| {
        if op.ty == OperationType::Mutation {
            op.selection_set.node.items.len()
        } else {
            0
        }
    };
    match &document.operations {
        DocumentOperations::Single(op) => count(&op.node),
        DocumentOperations::Multiple(ops) => {
            ops.values().map(|op| count(&op.node)).max().unwrap_or(0)
        }
    }
}

async fn execute(schema: &LansweeperSchema, body: &[u8], mutation_cap: Option<usize>) -> Response {
    let request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return respond(
                StatusCode::BAD_REQUEST,
                errors_body(
                    &format!("The request body is not a GraphQL request: {error}"),
                    Some("BAD_REQUEST"),
                ),
            );
        }
    };
    // Lansweeper's published schema first: what it refuses is refused here, whatever this
    // simulator's own schema would take.
    let raw: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Err(refused) = published::check(
        &request.query,
        request.operation_name.as_deref(),
        raw.get("variables").unwrap_or(&Value::Null),
    ) {
        return respond(
            StatusCode::BAD_REQUEST,
            errors_body(&refused.message, Some(refused.code)),
        );
    }
    if let Some(cap) = mutation_cap {
        let carried = root_mutations(&request.query);
        if carried > cap {
            return respond(
                StatusCode::BAD_REQUEST,
                errors_body(
                    &format!(
                        "A request may carry at most {cap} mutations; this one carries {carried}"
                    ),
                    Some("GRAPHQL_VALIDATION_FAILED"),
                ),
            );
        }
    }
    let answer = schema.execute(request).await;
    let status = if answer.errors.is_empty() {
        StatusCode::OK
    } else if answer.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| c.to_string().contains("FORBIDDEN"))
    }) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_REQUEST
    };
    let body =
        serde_json::to_value(&answer).unwrap_or_else(|_| errors_body("serialisation failed", None));
    respond(status, body)
}
