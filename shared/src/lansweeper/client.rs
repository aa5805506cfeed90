use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::PAGE_SIZE;
use super::config::LansweeperConfig;
use super::documents::{self, AUTHORIZED_SITES, CREATE_CUSTOM_FIELD, CUSTOM_FIELDS, PROFILE_SITES};
use super::error::{GraphQlError, LansweeperError};
use crate::http::{HttpExecutor, Idempotence, RatePacer, RetryPolicy};

/// Tuning; the defaults are Lansweeper's published limits.
#[derive(Debug, Clone)]
pub struct LansweeperOptions {
    pub retry: RetryPolicy,
    /// Requests allowed per `rate_window`.
    pub rate_limit: usize,
    pub rate_window: Duration,
    /// Requests allowed per `hourly_window` (Lansweeper: 2,000 synchronous an hour).
    pub hourly_limit: usize,
    pub hourly_window: Duration,
    pub page_size: u32,
    pub max_concurrent: usize,
    pub timeout: Duration,
    /// How many times faster than Lansweeper's the quota's clock runs (1: Lansweeper's).
    pub quota_speed: f64,
}

impl Default for LansweeperOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy {
                // Hitting the quota costs a full quiet minute before anything is accepted.
                rate_limit_fallback: Duration::from_secs(60),
                max_elapsed: Duration::from_secs(200),
                ..RetryPolicy::default()
            },
            rate_limit: 150,
            rate_window: Duration::from_secs(60),
            hourly_limit: 2_000,
            hourly_window: Duration::from_secs(3_600),
            page_size: PAGE_SIZE,
            max_concurrent: 4,
            timeout: Duration::from_secs(60),
            quota_speed: 1.0,
        }
    }
}

impl LansweeperOptions {
    /// The quota windows run `factor` times faster: for a simulator started with the same
    /// speed (`lscw simulate lansweeper --speed`), never for Lansweeper itself.
    pub fn sped_up(mut self, factor: f64) -> Self {
        let factor = factor.max(1.0);
        self.rate_window = self.rate_window.div_f64(factor);
        self.hourly_window = self.hourly_window.div_f64(factor);
        self.retry.rate_limit_fallback = self.retry.rate_limit_fallback.div_f64(factor);
        self.quota_speed = factor;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub name: String,
}

/// Lansweeper's custom field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomFieldType {
    #[serde(rename = "INPUT")]
    Text,
    #[serde(rename = "TEXTAREA")]
    TextArea,
    #[serde(rename = "SELECT")]
    Select,
    #[serde(rename = "NUMERIC")]
    Number,
    #[serde(rename = "DATE")]
    Date,
    #[serde(rename = "TIME")]
    Time,
    #[serde(rename = "CURRENCY")]
    Currency,
    #[serde(rename = "HYPERLINK")]
    Hyperlink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomField {
    pub key: String,
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
}

#[derive(Clone)]
pub struct LansweeperClient {
    http: HttpExecutor,
    config: LansweeperConfig,
    authorization: HeaderValue,
    page_size: u32,
    /// The longest quota window: how far back spent requests still count.
    horizon: Duration,
    /// The short window's limit and length, as Lansweeper counts them for the token.
    rate_limit: usize,
    rate_window: Duration,
    quota_speed: f64,
}

impl LansweeperClient {
    pub fn new(
        config: LansweeperConfig,
        options: LansweeperOptions,
    ) -> Result<Self, LansweeperError> {
        let reqwest_client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| LansweeperError::Config(format!("HTTP client: {e}")))?;
        let http = HttpExecutor::new(reqwest_client, options.retry, options.max_concurrent)
            .with_pacer(RatePacer::new(options.rate_limit, options.rate_window))
            .with_quota(RatePacer::new(options.hourly_limit, options.hourly_window));
        // A personal access token is sent as `Token`, an OAuth token as `Bearer`.
        let scheme = if config.token.starts_with("Bearer ") {
            ""
        } else {
            "Token "
        };
        let mut authorization = HeaderValue::from_str(&format!("{scheme}{}", config.token))
            .map_err(|_| LansweeperError::Config("LS_TOKEN contains invalid characters".into()))?;
        authorization.set_sensitive(true);
        Ok(Self {
            http,
            config,
            authorization,
            page_size: options.page_size.clamp(1, PAGE_SIZE),
            horizon: options.hourly_window.max(options.rate_window),
            rate_limit: options.rate_limit,
            rate_window: options.rate_window,
            quota_speed: options.quota_speed.max(1.0),
        })
    }

    /// A wait for the quota in the quota's own seconds, as the state machine's Wait state
    /// counts them (at least one): the wait itself against Lansweeper; against a simulator
    /// whose quota runs faster, that many times it, as every other clock of the run is
    /// compressed alike (so the Wait, compressed in turn, lasts the wait).
    pub fn quota_seconds(&self, wait: Duration) -> u64 {
        (wait.as_secs_f64() * self.quota_speed).ceil().max(1.0) as u64
    }

    /// How long `quota_seconds` lasts on this machine's clock.
    pub fn quota_wait(&self, quota_seconds: u64) -> Duration {
        Duration::from_secs(quota_seconds).div_f64(self.quota_speed)
    }

    /// The token's hash: Lansweeper counts its minute and hour per token, so every user
    /// of one token shares one quota; the hash names it, never the token.
    pub fn token_hash(&self) -> u64 {
        crate::normalize::fnv1a(&self.config.token)
    }

    /// How far back a spent request still counts against a quota.
    pub fn quota_horizon(&self) -> Duration {
        self.horizon
    }

    /// When the requests still counting against the quotas finished (epoch ms).
    pub async fn spent(&self) -> Vec<u64> {
        let mut spent = Vec::new();
        for pacer in self.http.pacers() {
            spent.extend(pacer.spent().await);
        }
        spent.sort_unstable();
        spent.dedup();
        spent
    }

    /// Counts requests others made with this token (epoch ms) against this client's
    /// quotas too.
    pub async fn adopt_spent(&self, spent: &[u64]) {
        for pacer in self.http.pacers() {
            pacer.adopt(spent).await;
        }
    }

    /// How long the next request would wait for the quotas (zero when it would not).
    pub async fn wait_before_next(&self) -> Duration {
        self.wait_before_next_leaving(0).await
    }

    /// How long until the next request fits the quotas with `hour_reserve` requests of
    /// the hourly quota still left for others (the sync's next fetch).
    pub async fn wait_before_next_leaving(&self, hour_reserve: usize) -> Duration {
        let mut wait = Duration::ZERO;
        for pacer in self.http.pacers() {
            let reserve = if pacer.window() >= self.horizon {
                hour_reserve
            } else {
                0
            };
            wait = wait.max(pacer.wait_for_room_leaving(reserve).await);
        }
        wait
    }

    pub fn site_id(&self) -> &str {
        &self.config.site_id
    }

    /// The same connection for another site: pacing, quotas and call counts stay shared,
    /// as Lansweeper counts them per token.
    #[must_use]
    pub fn for_site(&self, site_id: &str) -> Self {
        let mut config = self.config.clone();
        config.site_id = site_id.to_string();
        Self {
            http: self.http.clone(),
            config,
            authorization: self.authorization.clone(),
            page_size: self.page_size,
            horizon: self.horizon,
            rate_limit: self.rate_limit,
            rate_window: self.rate_window,
            quota_speed: self.quota_speed,
        }
    }

    /// The same connection, paced to `share` of the token's short window (`(n, d)`: n
    /// of every d requests a window allows). Two processes that run beside each other,
    /// each within its own share, never exceed the window together, where each pacing
    /// itself to all of it would; the hourly quota and the call counts stay shared.
    /// Built before the client's first request: what it spent so far is not carried over.
    #[must_use]
    pub fn with_window_share(&self, (n, d): (usize, usize)) -> Self {
        let limit = (self.rate_limit * n / d.max(1)).max(1);
        Self {
            http: self
                .http
                .clone()
                .with_pacer(RatePacer::new(limit, self.rate_window)),
            ..self.for_site(&self.config.site_id)
        }
    }

    /// HTTP requests sent to Lansweeper, retries included.
    pub fn api_calls(&self) -> u64 {
        self.http.calls()
    }

    /// One GraphQL query, or a mutation that sets values (sending it twice is the same as
    /// once); answers `data`, or the typed error.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, LansweeperError> {
        self.graphql_with(Idempotence::Idempotent, query, variables)
            .await
    }

    async fn graphql_with(
        &self,
        idempotence: Idempotence,
        query: &str,
        variables: Value,
    ) -> Result<Value, LansweeperError> {
        let body = json!({"query": query, "variables": variables});
        let response = self
            .http
            .execute(idempotence, |client| {
                client
                    .post(&self.config.api_url)
                    .header(AUTHORIZATION, self.authorization.clone())
                    .json(&body)
            })
            .await?;
        interpret(response.status, &response.body)
    }

    /// The sites the token can see (to find `LS_SITE_ID`).
    pub async fn sites(&self) -> Result<Vec<Site>, LansweeperError> {
        match self.graphql(AUTHORIZED_SITES, json!({})).await {
            Ok(data) => decode(&data["authorizedSites"]["sites"], "authorizedSites"),
            Err(LansweeperError::GraphQl { .. } | LansweeperError::Forbidden(_)) => {
                // Personal access tokens see their sites through their profiles.
                let data = self.graphql(PROFILE_SITES, json!({})).await?;
                let profiles = data["me"]["profiles"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                profiles
                    .iter()
                    .map(|profile| decode(&profile["site"], "me.profiles.site"))
                    .collect()
            }
            Err(other) => Err(other),
        }
    }

    /// The site every request names; an error when none is configured.
    pub(super) fn required_site(&self) -> Result<&str, LansweeperError> {
        self.config.require_site()
    }

    /// Assets a page holds.
    pub(super) fn page_size(&self) -> u32 {
        self.page_size
    }

    pub async fn custom_fields(&self) -> Result<Vec<CustomField>, LansweeperError> {
        let site_id = self.config.require_site()?;
        let data = self
            .graphql(CUSTOM_FIELDS, json!({"siteId": site_id}))
            .await?;
        decode(&data["site"]["customFields"], "site.customFields")
    }

    pub async fn create_custom_field(
        &self,
        name: &str,
        field_type: CustomFieldType,
    ) -> Result<CustomField, LansweeperError> {
        let site_id = self.config.require_site()?;
        if name.trim().is_empty() {
            return Err(LansweeperError::InvalidInput {
                field: "name".into(),
                message: "is required".into(),
            });
        }
        // A second field of the same name is not the same as one: never resent blindly.
        let data = self
            .graphql_with(
                Idempotence::NotIdempotent,
                CREATE_CUSTOM_FIELD,
                json!({"siteId": site_id, "field": {"name": name.trim(), "type": field_type, "props": {}}}),
            )
            .await?;
        decode(&data["site"]["createCustomField"], "createCustomField")
    }

    /// Several assets' custom field values in one request, each `editAsset` under an
    /// alias of its own (`e0: site(id: …) { editAsset(…) }`). Answers each edit's outcome
    /// in order: written, or why Lansweeper refused that edit alone. An error when the
    /// request was refused whole: whether Lansweeper takes several mutations in one
    /// request is not published, so a caller splits a refused batch and tries again.
    pub async fn edit_assets_custom_fields(
        &self,
        edits: &[(&str, &[(String, String)])],
    ) -> Result<Vec<Result<(), String>>, LansweeperError> {
        let site_id = self.config.require_site()?;
        let mut variables = serde_json::Map::new();
        variables.insert("siteId".into(), json!(site_id));
        for (index, (asset_key, values)) in edits.iter().enumerate() {
            variables.insert(format!("k{index}"), json!(asset_key));
            variables.insert(format!("f{index}"), edit_input(values));
        }
        let query = documents::edit_assets(edits.len());
        let alias_of = |error: &GraphQlError| {
            error
                .path
                .first()
                .and_then(Value::as_str)
                .and_then(|alias| (0..edits.len()).find(|i| documents::edit_alias(*i) == alias))
        };
        let (data, errors) = match self.graphql(&query, Value::Object(variables)).await {
            Ok(data) => (data, Vec::new()),
            // Some edits refused, each at its alias: the others were written.
            Err(LansweeperError::GraphQl {
                errors,
                partial_data: Some(data),
            }) if errors.iter().all(|e| alias_of(e).is_some()) => (data, errors),
            Err(other) => return Err(other),
        };
        Ok((0..edits.len())
            .map(|index| {
                if let Some(refused) = errors.iter().find(|e| alias_of(e) == Some(index)) {
                    return Err(refused.message.clone());
                }
                match data
                    .get(documents::edit_alias(index))
                    .map(|site| &site["editAsset"])
                {
                    Some(edited) if !edited.is_null() => Ok(()),
                    _ => Err("Lansweeper answered nothing for this edit".to_string()),
                }
            })
            .collect())
    }
}

/// An `EditAssetInput` setting custom field values. A value that is gone is sent as the
/// empty string, which is how Lansweeper documents clearing a field (of any type).
fn edit_input(values: &[(String, String)]) -> Value {
    let fields: Vec<Value> = values
        .iter()
        .map(|(key, value)| json!({"fieldKey": key, "value": value}))
        .collect();
    json!({"assetCustom": {"fields": fields}})
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, LansweeperError> {
    serde_json::from_value(value.clone())
        .map_err(|e| LansweeperError::Decode(format!("{what}: {e}")))
}

#[derive(Deserialize)]
struct GraphQlResponse {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

/// Turns an HTTP answer into `data` or the error it means. A bad token comes in three
/// forms (401; 400 "You must be logged in"; `UNAUTHENTICATED`), all one error here.
fn interpret(status: StatusCode, text: &str) -> Result<Value, LansweeperError> {
    if status == StatusCode::UNAUTHORIZED {
        return Err(LansweeperError::Unauthenticated);
    }
    let parsed: Option<GraphQlResponse> = serde_json::from_str(text).ok();
    let Some(parsed) = parsed else {
        if text.contains("must be logged in") {
            return Err(LansweeperError::Unauthenticated);
        }
        return Err(LansweeperError::Http {
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        });
    };
    if parsed
        .errors
        .iter()
        .any(|e| e.code() == Some("UNAUTHENTICATED") || e.message.contains("must be logged in"))
    {
        return Err(LansweeperError::Unauthenticated);
    }
    if let Some(forbidden) = parsed
        .errors
        .iter()
        .find(|e| e.code() == Some("FORBIDDEN") || status == StatusCode::FORBIDDEN)
    {
        return Err(LansweeperError::Forbidden(forbidden.message.clone()));
    }
    if !parsed.errors.is_empty() {
        return Err(LansweeperError::GraphQl {
            errors: parsed.errors,
            partial_data: parsed.data.filter(|d| !d.is_null()),
        });
    }
    if !status.is_success() {
        return Err(LansweeperError::Http {
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        });
    }
    parsed
        .data
        .ok_or_else(|| LansweeperError::Decode("an answer with neither data nor errors".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Breaking it looks like: a soak whose Lansweeper quota runs 60 times faster handing
    /// the state machine's Wait a wait already compressed, which the Wait compresses again
    /// (the enrichment then writes into a quota still spent).
    #[test]
    fn a_wait_is_told_in_the_quota_s_seconds() {
        let config = crate::lansweeper::LansweeperConfig::from_lookup(|key| match key {
            "LS_TOKEN" => Some("pat-1".into()),
            "LS_SITE_ID" => Some("site".into()),
            _ => None,
        })
        .unwrap();
        let lansweeper =
            LansweeperClient::new(config.clone(), LansweeperOptions::default()).unwrap();
        assert_eq!(lansweeper.quota_seconds(Duration::from_millis(1_200)), 2);
        assert_eq!(lansweeper.quota_seconds(Duration::from_millis(10)), 1);
        assert_eq!(lansweeper.quota_wait(30), Duration::from_secs(30));
        let sped = LansweeperClient::new(config, LansweeperOptions::default().sped_up(60.0))
            .unwrap()
            .with_window_share((1, 3));
        assert_eq!(sped.quota_seconds(Duration::from_secs(1)), 60);
        assert_eq!(sped.quota_wait(60), Duration::from_secs(1));
    }

    #[test]
    fn three_forms_of_a_bad_token_are_one_error() {
        let forms = [
            (
                StatusCode::UNAUTHORIZED,
                r#"{"errors":[{"message":"You have to provide authorization."}]}"#,
            ),
            (
                StatusCode::BAD_REQUEST,
                r#"{"errors":[{"message":"Context creation failed: You must be logged in."}]}"#,
            ),
            (
                StatusCode::BAD_REQUEST,
                r#"{"errors":[{"message":"Unauthenticated","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}"#,
            ),
            (
                StatusCode::BAD_REQUEST,
                "Context creation failed: You must be logged in.",
            ),
        ];
        for (status, body) in forms {
            assert!(
                matches!(
                    interpret(status, body),
                    Err(LansweeperError::Unauthenticated)
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_with_partial_data_keep_both() {
        let body = r#"{"errors":[{"message":"Invalid path: assetBasicInfo.colour","path":["site","assetResources"],"extensions":{"code":"BAD_USER_INPUT"}}],"data":{"site":null}}"#;
        match interpret(StatusCode::BAD_REQUEST, body) {
            Err(error @ LansweeperError::GraphQl { .. }) => {
                assert_eq!(
                    error.to_string(),
                    "Lansweeper answered with errors: Invalid path: assetBasicInfo.colour (at site.assetResources) [BAD_USER_INPUT]"
                );
                let LansweeperError::GraphQl { partial_data, .. } = error else {
                    unreachable!()
                };
                assert_eq!(partial_data, Some(json!({"site": null})));
            }
            other => panic!("{other:?}"),
        }
        let forbidden = r#"{"errors":[{"message":"You don't have access to this site","extensions":{"code":"FORBIDDEN"}}]}"#;
        assert!(matches!(
            interpret(StatusCode::FORBIDDEN, forbidden),
            Err(LansweeperError::Forbidden(_))
        ));
    }
}
