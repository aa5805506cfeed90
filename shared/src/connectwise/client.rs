use std::time::Duration;

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, LINK};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::ConnectionConfig;
use super::error::{ApiErrorDetail, ConnectWiseError};
use super::query::{ListQuery, PagePlan};
use super::{API_VERSION, DEFAULT_CODEBASE};
use crate::http::{HttpExecutor, Idempotence, RetryPolicy};

/// Tuning of a client; the defaults suit ConnectWise cloud.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Requests in flight at once (ConnectWise throttles around 1000 a minute).
    pub max_concurrent: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            max_concurrent: 8,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The outcome of one item of a bulk request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkItemResult {
    pub success: bool,
    pub original_index: usize,
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorBody>,
}

/// ConnectWise's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<ApiErrorDetail>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ApiErrorDetail>, D::Error> {
    Ok(Option::<Vec<ApiErrorDetail>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct BulkResponse {
    payload: Vec<BulkItemResult>,
}

#[derive(Deserialize)]
struct CountResponse {
    count: u64,
}

/// A connection to one ConnectWise tenant. Cheap to clone; clones share the call counter
/// and the concurrency cap.
#[derive(Clone)]
pub struct ConnectWiseClient {
    http: HttpExecutor,
    base_url: String,
    headers: HeaderMap,
    /// The company users sign in to (`CW_COMPANY_ID`), which record links name.
    company_id: String,
}

impl ConnectWiseClient {
    /// Builds the client; without `CW_BASE_URL`, looks up the tenant's codebase first.
    pub async fn connect(
        config: &ConnectionConfig,
        options: ClientOptions,
    ) -> Result<Self, ConnectWiseError> {
        let reqwest_client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| ConnectWiseError::Config(format!("HTTP client: {e}")))?;
        let http = HttpExecutor::new(reqwest_client, options.retry, options.max_concurrent);
        let headers = auth_headers(config)?;
        let base_url = if let Some(base) = &config.base_url {
            base.trim_end_matches('/').to_string()
        } else {
            let root = config
                .site_root()
                .ok_or_else(|| ConnectWiseError::Config("CW_SITE is not set".into()))?;
            let codebase = lookup_codebase(&http, &root, &config.company_id).await?;
            format!("{root}/{codebase}apis/3.0")
        };
        Url::parse(&base_url)
            .map_err(|e| ConnectWiseError::Config(format!("API base `{base_url}`: {e}")))?;
        Ok(Self {
            http,
            base_url,
            headers,
            company_id: config.company_id.clone(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The link that opens configuration `id` in ConnectWise's web UI.
    pub fn configuration_url(&self, id: i64) -> String {
        configuration_url(&self.base_url, &self.company_id, id)
    }

    /// HTTP requests sent to ConnectWise by this client and its clones, retries included.
    pub fn api_calls(&self) -> u64 {
        self.http.calls()
    }

    /// A list action: one page, or every record, as the query's paging says.
    pub async fn list(
        &self,
        path: &str,
        query: &ListQuery,
    ) -> Result<Vec<Value>, ConnectWiseError> {
        match query.plan()? {
            PagePlan::Single { page, page_size } => {
                let mut params = query.filter_params();
                if let Some(order) = &query.order_by {
                    params.push(("orderBy", order.clone()));
                }
                params.push(("page", page.to_string()));
                params.push(("pageSize", page_size.to_string()));
                let (body, _) = self.send(Method::GET, path, &params, None, false).await?;
                into_array(body)
            }
            PagePlan::All { .. } => {
                let mut all = Vec::new();
                self.for_each_page(path, query, |page| {
                    all.extend(page);
                    Ok(())
                })
                .await?;
                Ok(all)
            }
        }
    }

    /// Reads every record matching the query with forward-only paging (id order), handing
    /// each page to `on_page` as it arrives. Returns the number of records read.
    ///
    /// A listing is complete or it is an error: a full page that names no next page is
    /// checked against `/count`, and an endpoint that ignores forward-only paging (a full
    /// first page and no `Link` header) is read on by numbered pages.
    pub async fn for_each_page(
        &self,
        path: &str,
        query: &ListQuery,
        mut on_page: impl FnMut(Vec<Value>) -> Result<(), ConnectWiseError>,
    ) -> Result<u64, ConnectWiseError> {
        let page_size = match query.plan()? {
            PagePlan::All { page_size } | PagePlan::Single { page_size, .. } => page_size,
        };
        let mut page_id: Option<i64> = None;
        let mut total = 0u64;
        loop {
            let mut params = query.filter_params();
            params.push(("pageSize", page_size.to_string()));
            if let Some(id) = page_id {
                params.push(("pageId", id.to_string()));
            }
            let (body, headers) = self.send(Method::GET, path, &params, None, true).await?;
            let records = into_array(body)?;
            let count = records.len();
            let full = count == page_size as usize;
            total += count as u64;
            let next = next_page_id(&headers);
            on_page(records)?;
            match next {
                Some(next) if count > 0 => {
                    if page_id.is_some_and(|previous| next <= previous) {
                        return Err(ConnectWiseError::Decode(format!(
                            "forward-only paging went backwards (pageId {next} after {page_id:?})"
                        )));
                    }
                    page_id = Some(next);
                }
                _ if full && page_id.is_none() && !headers.contains_key(LINK) => {
                    tracing::debug!(path, "forward-only paging ignored; reading numbered pages");
                    let rest = self
                        .numbered_pages_from(path, query, page_size, 2, &mut on_page)
                        .await?;
                    return self.checked_total(path, query, total + rest).await;
                }
                _ if full => return self.checked_total(path, query, total).await,
                _ => return Ok(total),
            }
        }
    }

    /// Reads numbered pages from `first` on until one comes back short.
    async fn numbered_pages_from(
        &self,
        path: &str,
        query: &ListQuery,
        page_size: u32,
        first: u32,
        on_page: &mut impl FnMut(Vec<Value>) -> Result<(), ConnectWiseError>,
    ) -> Result<u64, ConnectWiseError> {
        let mut total = 0u64;
        for page in first.. {
            let mut params = query.filter_params();
            params.push(("orderBy", "id asc".into()));
            params.push(("page", page.to_string()));
            params.push(("pageSize", page_size.to_string()));
            let (body, _) = self.send(Method::GET, path, &params, None, false).await?;
            let records = into_array(body)?;
            let count = records.len();
            total += count as u64;
            on_page(records)?;
            if count < page_size as usize {
                break;
            }
        }
        Ok(total)
    }

    /// `total` when `/count` agrees that nothing was left unread; an error otherwise.
    async fn checked_total(
        &self,
        path: &str,
        query: &ListQuery,
        total: u64,
    ) -> Result<u64, ConnectWiseError> {
        let count = self.count(path, query).await?;
        if count > total {
            return Err(ConnectWiseError::IncompleteListing {
                path: path.to_string(),
                read: total,
                count,
            });
        }
        Ok(total)
    }

    /// Every record the query matches, and an error unless `/count` agrees that none was
    /// missed: the read that decides what to create.
    pub async fn list_complete(
        &self,
        path: &str,
        query: &ListQuery,
    ) -> Result<Vec<Value>, ConnectWiseError> {
        self.list_complete_as(path, query, |record| record).await
    }

    /// [`Self::list_complete`], each record made into what the caller keeps as its page
    /// arrives, so a large listing is never held whole in its full form.
    pub async fn list_complete_as<T>(
        &self,
        path: &str,
        query: &ListQuery,
        mut keep: impl FnMut(Value) -> T,
    ) -> Result<Vec<T>, ConnectWiseError> {
        let mut all = Vec::new();
        let read = self
            .for_each_page(path, query, |page| {
                all.extend(page.into_iter().map(&mut keep));
                Ok(())
            })
            .await?;
        self.checked_total(path, query, read).await?;
        Ok(all)
    }

    /// `GET {path}/count` with the query's filters.
    pub async fn count(&self, path: &str, query: &ListQuery) -> Result<u64, ConnectWiseError> {
        let params: Vec<_> = query
            .filter_params()
            .into_iter()
            .filter(|(k, _)| *k != "fields")
            .collect();
        let (body, _) = self
            .send(Method::GET, &format!("{path}/count"), &params, None, false)
            .await?;
        let parsed: CountResponse = serde_json::from_value(body)
            .map_err(|e| ConnectWiseError::Decode(format!("count: {e}")))?;
        Ok(parsed.count)
    }

    pub async fn get(&self, path: &str) -> Result<Value, ConnectWiseError> {
        Ok(self.send(Method::GET, path, &[], None, false).await?.0)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ConnectWiseError> {
        Ok(self
            .send(Method::POST, path, &[], Some(body), false)
            .await?
            .0)
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ConnectWiseError> {
        Ok(self
            .send(Method::PUT, path, &[], Some(body), false)
            .await?
            .0)
    }

    /// JSON-Patch: `[{"op":"replace","path":"name","value":"X"}]`.
    pub async fn patch(&self, path: &str, operations: &Value) -> Result<Value, ConnectWiseError> {
        Ok(self
            .send(Method::PATCH, path, &[], Some(operations), false)
            .await?
            .0)
    }

    /// A bulk request (`POST` creates, `PUT` updates) answering one result per item, in
    /// the items' order. A failed item never fails its siblings.
    pub async fn bulk(
        &self,
        method: Method,
        path: &str,
        items: &[Value],
    ) -> Result<Vec<BulkItemResult>, ConnectWiseError> {
        let body = Value::Array(items.to_vec());
        let (answer, _) = self.send(method, path, &[], Some(&body), false).await?;
        let parsed: BulkResponse = serde_json::from_value(answer).map_err(|e| {
            ConnectWiseError::Decode(format!("bulk answer is not a BulkResult: {e}"))
        })?;
        let mut results = parsed.payload;
        results.sort_by_key(|r| r.original_index);
        if results.len() != items.len()
            || results
                .iter()
                .enumerate()
                .any(|(i, r)| r.original_index != i)
        {
            return Err(ConnectWiseError::Decode(format!(
                "bulk answer has {} results for {} items",
                results.len(),
                items.len()
            )));
        }
        Ok(results)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<&Value>,
        forward_only: bool,
    ) -> Result<(Value, HeaderMap), ConnectWiseError> {
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        // PUT and PATCH replace what they name: sending them twice is sending them once.
        // A POST creates: it is never resent once it may have reached ConnectWise.
        let idempotence = if method == Method::POST {
            Idempotence::NotIdempotent
        } else {
            Idempotence::Idempotent
        };
        let response = self
            .http
            .execute(idempotence, |client| {
                let mut request = client
                    .request(method.clone(), &url)
                    .headers(self.headers.clone())
                    .query(params);
                if forward_only {
                    request = request.header("pagination-type", "forward-only");
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                request
            })
            .await?;
        let crate::http::Answer {
            status,
            headers,
            body: text,
        } = response;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &text));
        }
        if text.trim().is_empty() {
            return Ok((Value::Null, headers));
        }
        let value = serde_json::from_str(&text)
            .map_err(|e| ConnectWiseError::Decode(format!("{method} {path}: {e}")))?;
        Ok((value, headers))
    }
}

fn auth_headers(config: &ConnectionConfig) -> Result<HeaderMap, ConnectWiseError> {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}+{}:{}",
        config.company_id, config.public_key, config.private_key
    ));
    let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| ConnectWiseError::Config("credentials contain invalid characters".into()))?;
    authorization.set_sensitive(true);
    let client_id = HeaderValue::from_str(&config.client_id)
        .map_err(|_| ConnectWiseError::Config("CW_CLIENT_ID contains invalid characters".into()))?;
    let accept = HeaderValue::from_str(&format!(
        "application/vnd.connectwise.com+json; version={API_VERSION}"
    ))
    .map_err(|_| ConnectWiseError::Config("API version".into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, authorization);
    headers.insert("clientId", client_id);
    headers.insert(ACCEPT, accept);
    Ok(headers)
}

async fn lookup_codebase(
    http: &HttpExecutor,
    root: &str,
    company_id: &str,
) -> Result<String, ConnectWiseError> {
    #[derive(Deserialize)]
    struct CompanyInfo {
        #[serde(rename = "Codebase")]
        codebase: Option<String>,
    }
    let url = format!("{root}/login/companyinfo/{company_id}");
    let response = http
        .execute(Idempotence::Idempotent, |client| client.get(&url))
        .await?;
    let (status, text) = (response.status, response.body);
    if !status.is_success() {
        return Err(api_error(status.as_u16(), &text));
    }
    // An unknown company answers 200 with `null`.
    let info: Option<CompanyInfo> = serde_json::from_str(&text)
        .map_err(|e| ConnectWiseError::Decode(format!("company info: {e}")))?;
    let info = info.ok_or_else(|| {
        ConnectWiseError::Config(format!(
            "ConnectWise knows no company `{company_id}` at {root}"
        ))
    })?;
    let codebase = info
        .codebase
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_CODEBASE.to_string());
    Ok(if codebase.ends_with('/') {
        codebase
    } else {
        format!("{codebase}/")
    })
}

fn api_error(status: u16, text: &str) -> ConnectWiseError {
    match serde_json::from_str::<ApiErrorBody>(text) {
        Ok(body) if !body.code.is_empty() || !body.message.is_empty() => ConnectWiseError::Api {
            status,
            code: body.code,
            message: body.message,
            errors: body.errors,
        },
        _ => ConnectWiseError::Api {
            status,
            code: String::new(),
            message: text.chars().take(300).collect(),
            errors: Vec::new(),
        },
    }
}

/// A list answer's records. An empty answer is not an empty list: a listing that may be
/// short must never pass for a complete one.
fn into_array(body: Value) -> Result<Vec<Value>, ConnectWiseError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Null => Err(ConnectWiseError::Decode(
            "an empty answer where a list was expected".into(),
        )),
        other => Err(ConnectWiseError::Decode(format!(
            "expected a list, got {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The `pageId` of the `rel="next"` link, if there is one.
fn next_page_id(headers: &HeaderMap) -> Option<i64> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let url = Url::parse(target).ok()?;
        url.query_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case("pageId"))
            .and_then(|(_, v)| v.parse().ok())
    })
}

/// The link to a configuration in ConnectWise's web UI, from the API base and the
/// company a user signs in to: `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`
/// and `myco` → `https://na.myconnectwise.net/v4_6_release/services/system_io/router/openrecord.rails?companyName=myco&recordType=ConfigFv&recid=ID`.
/// The router asks a signed-out user for the company unless the link names it.
pub fn configuration_url(api_base: &str, company: &str, id: i64) -> String {
    let ui = api_base
        .trim_end_matches('/')
        .trim_end_matches("/apis/3.0")
        .replacen("://api-", "://", 1);
    let company: String = company
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "{ui}/services/system_io/router/openrecord.rails?companyName={company}&recordType=ConfigFv&recid={id}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_id_reads_the_next_link_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static(
                "<https://h/v4_6_release/apis/3.0/x?pageSize=1000&pageId=1000>; rel=\"next\"",
            ),
        );
        assert_eq!(next_page_id(&headers), Some(1000));
        headers.insert(LINK, HeaderValue::from_static(""));
        assert_eq!(next_page_id(&headers), None);
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://h/x?page=1>; rel=\"first\""),
        );
        assert_eq!(next_page_id(&headers), None);
    }

    #[test]
    fn error_bodies_keep_code_message_and_field() {
        let err = api_error(
            400,
            r#"{"code":"InvalidObject","message":"location object is invalid","errors":[{"code":"NullOrEmpty","message":"name may not be empty","resource":"location","field":"name"}]}"#,
        );
        assert_eq!(
            err.to_string(),
            "ConnectWise answered 400 InvalidObject: location object is invalid [field `name`: name may not be empty (NullOrEmpty)]"
        );
        let err = api_error(502, "<html>bad gateway</html>");
        assert_eq!(err.status(), Some(502));
    }
}
