//! HTTP side of the ConnectWise simulator: authentication, routing, listing with
//! conditions, both paging modes, `fields`, `/count`, writes and bulk writes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::Shared;
use super::conditions::{self, Expr};
use super::schema::{Kind, Resource, route};
use super::tenant::{ApiError, Tenant, not_found};
use crate::control::{Seen, endpoint_key};

const MAX_PAGE_SIZE: usize = 1000;
/// The longest path and query ConnectWise's web server takes.
const MAX_URL_CHARS: usize = 2_048;
const DEFAULT_PAGE_SIZE: usize = 25;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/login/companyinfo/{company}", get(company_info))
        .route("/{codebase}/apis/3.0/{*rest}", any(api))
        .route(
            "/{codebase}/services/system_io/router/openrecord.rails",
            get(open_record),
        )
        .with_state(shared)
}

async fn company_info(State(shared): State<Arc<Shared>>, Path(company): Path<String>) -> Response {
    let tenant = shared.tenant();
    if !company.eq_ignore_ascii_case(&tenant.company_id) {
        // ConnectWise answers an unknown company with a bare `null`.
        return json_response(StatusCode::OK, Value::Null, None);
    }
    let body = json!({
        "CompanyName": tenant.company_name,
        "Codebase": tenant.codebase,
        "VersionCode": "v2025.1",
        "VersionNumber": "v4.6",
        "CompanyID": tenant.company_id,
        "IsCloud": false,
    });
    json_response(StatusCode::OK, body, None)
}

/// The web UI's deep link to a record: the page a person lands on from Lansweeper.
async fn open_record(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let tenant = shared.tenant();
    // A signed-out user is asked for the company unless the link names it.
    let named = params
        .get("companyName")
        .is_some_and(|c| c.eq_ignore_ascii_case(&tenant.company_id));
    if !named {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><form><label>Company <input name=\"companyName\"></label></form></body></html>",
        )
            .into_response();
    }
    let record = params
        .get("recid")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|_| {
            params
                .get("recordType")
                .is_some_and(|t| t.eq_ignore_ascii_case("ConfigFv"))
        })
        .and_then(|id| tenant.get("configurations", id));
    match record {
        Some(record) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<html><body><h1>Configuration {}</h1><p>{}</p></body></html>",
                record["id"],
                record["name"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('<', "&lt;")
            ),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "record not found").into_response(),
    }
}

/// Serves an API request and counts a refusal (a 4xx answer) against its endpoint.
async fn api(
    State(shared): State<Arc<Shared>>,
    Path((codebase, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(raw_params): Query<Vec<(String, String)>>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let endpoint = endpoint_key(method.as_str(), &format!("/{rest}"));
    let control = shared.control.clone();
    let response = answer(
        shared,
        (codebase, rest),
        method,
        &headers,
        raw_params,
        &uri,
        body,
    )
    .await;
    control.on_answer(&endpoint, response.status().as_u16());
    response
}

#[allow(
    clippy::too_many_lines,
    reason = "one request's way through the simulator, faults in the order ConnectWise meets them: read top to bottom"
)]
async fn answer(
    shared: Arc<Shared>,
    (codebase, rest): (String, String),
    method: Method,
    headers: &HeaderMap,
    raw_params: Vec<(String, String)>,
    uri: &axum::http::Uri,
    body: Bytes,
) -> Response {
    let control = &shared.control;
    let _in_flight = control.begin();
    // ConnectWise's web server refuses URLs much over 2,000 characters.
    if uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URL_CHARS {
        control.on_request(&endpoint_key(method.as_str(), &format!("/{rest}")));
        return (
            StatusCode::URI_TOO_LONG,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>414 Request-URI Too Long</h1></body></html>",
        )
            .into_response();
    }
    let endpoint = endpoint_key(method.as_str(), &format!("/{rest}"));
    control.see(|| Seen {
        method: method.to_string(),
        path: format!("/{rest}"),
        query: raw_params.clone(),
        body: serde_json::from_slice(&body).ok(),
    });
    let fault = control.on_request(&endpoint);
    let forward_only_ignored = control.ignores_forward_only(&endpoint);
    let latency = control.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = fault {
        let mut response = error_response(&ApiError::new(
            fault.status,
            if fault.status == 429 {
                "TooManyRequests"
            } else {
                "ServerError"
            },
            "injected fault",
        ));
        if let Some(seconds) = fault.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let request = Request {
        method,
        path: rest,
        params: raw_params
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        forward_only: !forward_only_ignored
            && headers
                .get("pagination-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("forward-only")),
        base: format!(
            "http://{}/{codebase}/apis/3.0",
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
        ),
        body,
    };
    let response = {
        let mut tenant = shared.tenant();
        if format!("{codebase}/") != tenant.codebase {
            return error_response(&ApiError::new(404, "NotFound", "Unknown codebase"));
        }
        if let Err(error) = authenticate(&tenant, headers) {
            return error_response(&error);
        }
        match serve(&mut tenant, &shared, &request) {
            Ok(response) => response,
            Err(error) => error_response(&error),
        }
    };
    if request.method == Method::GET {
        if forward_only_ignored {
            let mut response = response;
            response.headers_mut().remove(header::LINK);
            return response;
        }
        if request.forward_only && request.param("pageId").is_some() && control.listings_cut() {
            let mut response = response;
            response.headers_mut().remove(header::LINK);
            return response;
        }
        return response;
    }
    // The write is saved; its answer may still be lost on the way back.
    crate::server::lose_answer(control, &endpoint, response).await
}

struct Request {
    method: Method,
    path: String,
    params: HashMap<String, String>,
    forward_only: bool,
    base: String,
    body: Bytes,
}

impl Request {
    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::new(
                400,
                "InvalidObject",
                format!("The request body is not valid JSON: {e}"),
            )
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

fn authenticate(tenant: &Tenant, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = || ApiError::new(401, "Unauthorized", "The credentials are invalid.");
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(unauthorized)?;
    let (login, private_key) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let (company, public_key) = login.split_once('+').ok_or_else(unauthorized)?;
    if !company.eq_ignore_ascii_case(&tenant.company_id)
        || public_key != tenant.public_key
        || private_key != tenant.private_key
    {
        return Err(unauthorized());
    }
    let has_client_id = headers
        .get("clientid")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !has_client_id {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            "A clientId header is required. Register one at developer.connectwise.com.",
        ));
    }
    Ok(())
}

#[allow(
    clippy::too_many_lines,
    reason = "the routing table: one arm per endpoint and method, as the API reference lists them"
)]
fn serve(tenant: &mut Tenant, shared: &Shared, request: &Request) -> Result<Response, ApiError> {
    let (resource, rest) = route(&request.path).ok_or_else(|| {
        ApiError::new(404, "NotFound", format!("/{} was not found.", request.path))
    })?;
    let method = &request.method;
    let read_only = || {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("The simulator serves {} read-only.", resource.path),
        )
    };
    match (rest.as_slice(), method) {
        ([], &Method::GET) => list(tenant, resource, request),
        (["count"], &Method::GET) => {
            let matched = Filter::from_request(resource, request)?;
            let count = tenant
                .records(resource.collection)
                .filter(|record| matched.accepts(&tenant.render(resource, record, &request.base)))
                .count();
            Ok(json_response(
                StatusCode::OK,
                json!({ "count": count }),
                None,
            ))
        }
        ([], &Method::POST) => {
            if !resource.writable {
                return Err(read_only());
            }
            let created = tenant.create(resource, &request.json_body()?)?;
            Ok(json_response(
                StatusCode::CREATED,
                tenant.render(resource, &created, &request.base),
                None,
            ))
        }
        (["bulk"], &Method::POST | &Method::PUT) if resource.bulk => {
            bulk(tenant, shared, resource, request)
        }
        ([id, sub], _)
            if sub.eq_ignore_ascii_case("configurations")
                && super::schema::WITH_CONFIGURATIONS.contains(&resource.collection) =>
        {
            let id: i64 = id.parse().map_err(|_| {
                ApiError::new(404, "NotFound", format!("/{} was not found.", request.path))
            })?;
            match *method {
                Method::GET => {
                    if tenant.get(resource.collection, id).is_none() {
                        return Err(not_found(resource, id));
                    }
                    let records: Vec<Value> = tenant
                        .attached(resource, id)
                        .into_iter()
                        .filter_map(|c| tenant.get("configurations", c))
                        .map(|c| {
                            let mut item = json!({"id": c["id"], "_info": {
                                "configuration_href": format!("{}/company/configurations/{}", request.base, c["id"])
                            }});
                            if let Some(device) = c.get("deviceIdentifier") {
                                item["deviceIdentifier"] = device.clone();
                            }
                            item
                        })
                        .collect();
                    page_list(
                        records,
                        request,
                        &format!("{}/{id}/configurations", resource.path),
                    )
                }
                Method::POST => {
                    let body = request.json_body()?;
                    let configuration =
                        body.get("id").and_then(Value::as_i64).ok_or_else(|| {
                            ApiError::new(
                                400,
                                "InvalidObject",
                                "The body names the configuration: {\"id\": …}.",
                            )
                        })?;
                    tenant.attach_once(resource, id, configuration)?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        json!({"id": configuration}),
                        None,
                    ))
                }
                _ => Err(read_only()),
            }
        }
        ([id], _) => {
            let id: i64 = id.parse().map_err(|_| {
                ApiError::new(404, "NotFound", format!("/{} was not found.", request.path))
            })?;
            match *method {
                Method::GET => {
                    let record = tenant
                        .get(resource.collection, id)
                        .ok_or_else(|| not_found(resource, id))?;
                    let shown = project(
                        &tenant.render(resource, record, &request.base),
                        request.param("fields"),
                    );
                    Ok(json_response(StatusCode::OK, shown, None))
                }
                Method::PUT if resource.writable => {
                    let record =
                        tenant.replace(resource, id, &with_id(request.json_body()?, id))?;
                    Ok(json_response(
                        StatusCode::OK,
                        tenant.render(resource, &record, &request.base),
                        None,
                    ))
                }
                Method::PATCH if resource.writable => {
                    let record = tenant.patch(resource, id, &request.json_body()?)?;
                    Ok(json_response(
                        StatusCode::OK,
                        tenant.render(resource, &record, &request.base),
                        None,
                    ))
                }
                Method::DELETE if resource.writable => {
                    tenant.delete(resource, id)?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(read_only()),
            }
        }
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!("{} /{} was not found.", method, request.path),
        )),
    }
}

/// PUT bodies may omit the id the path gives.
fn with_id(mut body: Value, id: i64) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), json!(id));
    }
    body
}

/// The three condition parameters, parsed and checked against the resource's fields.
struct Filter {
    conditions: Option<Expr>,
    child_conditions: Option<Expr>,
    custom_field_conditions: Option<Expr>,
}

impl Filter {
    fn from_request(resource: &Resource, request: &Request) -> Result<Self, ApiError> {
        let parse = |name: &str, check: &dyn Fn(&[String]) -> Result<(), String>| {
            request
                .param(name)
                .map(|text| {
                    let expr = conditions::parse(text)
                        .map_err(|e| ApiError::new(400, "InvalidObject", format!("{name}: {e}")))?;
                    for path in expr.paths() {
                        check(path).map_err(|e| {
                            ApiError::new(400, "InvalidObject", format!("{name}: {e}"))
                        })?;
                    }
                    Ok(expr)
                })
                .transpose()
        };
        Ok(Self {
            conditions: parse("conditions", &|path| check_path(resource, path, false))?,
            child_conditions: parse("childConditions", &|path| check_path(resource, path, true))?,
            custom_field_conditions: parse("customFieldConditions", &|path| {
                let known = [
                    "id",
                    "caption",
                    "type",
                    "entryMethod",
                    "numberOfDecimals",
                    "value",
                ];
                if path.len() == 1 && known.iter().any(|k| k.eq_ignore_ascii_case(&path[0])) {
                    Ok(())
                } else {
                    Err(format!("`{}` is not a custom field member", path.join("/")))
                }
            })?,
        })
    }

    fn accepts(&self, record: &Value) -> bool {
        self.conditions.as_ref().is_none_or(|c| c.matches(record))
            && self
                .child_conditions
                .as_ref()
                .is_none_or(|c| child_matches(c, record))
            && self.custom_field_conditions.as_ref().is_none_or(|c| {
                record
                    .get("customFields")
                    .and_then(Value::as_array)
                    .is_some_and(|fields| fields.iter().any(|field| c.matches(field)))
            })
    }
}

/// `childConditions` that all name one array hold of one of its items together
/// (`communicationItems/value="a@b.c" and communicationItems/communicationType="Email"`
/// is an e-mail item with that value, not a phone number with it beside some e-mail), as
/// ConnectWise joins the child rows; others are read over the whole record.
fn child_matches(expr: &Expr, record: &Value) -> bool {
    let paths = expr.paths();
    let Some(array) = paths.first().and_then(|p| p.first()) else {
        return expr.matches(record);
    };
    if !paths
        .iter()
        .all(|p| p.first().is_some_and(|f| f.eq_ignore_ascii_case(array)))
    {
        return expr.matches(record);
    }
    let items = record
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(array)))
        .and_then(|(_, v)| v.as_array());
    match items {
        Some(items) => items.iter().any(|item| {
            let mut one = Map::new();
            one.insert(array.clone(), Value::Array(vec![item.clone()]));
            expr.matches(&Value::Object(one))
        }),
        None => expr.matches(record),
    }
}

/// Conditions may name the resource's own fields and the members of its references;
/// only `childConditions` may reach into arrays.
fn check_path(resource: &Resource, path: &[String], child: bool) -> Result<(), String> {
    let unknown = || format!("`{}` is not a field of {}", path.join("/"), resource.name);
    let first = &path[0];
    if first.eq_ignore_ascii_case("id") {
        return if path.len() == 1 {
            Ok(())
        } else {
            Err(unknown())
        };
    }
    if first.eq_ignore_ascii_case("_info") {
        let known = ["lastUpdated", "dateEntered", "enteredBy", "updatedBy"];
        return if path.len() == 2 && known.iter().any(|k| k.eq_ignore_ascii_case(&path[1])) {
            Ok(())
        } else {
            Err(unknown())
        };
    }
    let spec = resource.field(first).ok_or_else(unknown)?;
    match (spec.kind, path.len(), child) {
        (Kind::CustomFields | Kind::Items, 2, true) => Ok(()),
        (Kind::CustomFields | Kind::Items, _, _) => Err(format!(
            "`{}`: search arrays with childConditions or customFieldConditions",
            path.join("/")
        )),
        (_, _, true) => Err(format!(
            "`{}` is not an array; use conditions",
            path.join("/")
        )),
        (Kind::Reference(reference), 2, false) => {
            let member = &path[1];
            if member.eq_ignore_ascii_case("id")
                || reference
                    .labels
                    .iter()
                    .any(|(own, _)| own.eq_ignore_ascii_case(member))
            {
                Ok(())
            } else {
                Err(unknown())
            }
        }
        (_, 1, false) => Ok(()),
        _ => Err(unknown()),
    }
}

fn page_size(request: &Request) -> Result<usize, ApiError> {
    match request.param("pageSize") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(text) => {
            let size: i64 = text
                .trim()
                .parse()
                .map_err(|_| ApiError::new(400, "InvalidObject", "pageSize must be an integer"))?;
            if size < 1 {
                return Err(ApiError::new(
                    400,
                    "InvalidObject",
                    "pageSize must be at least 1",
                ));
            }
            // ConnectWise caps rather than refuses.
            Ok((size as usize).min(MAX_PAGE_SIZE))
        }
    }
}

fn list(
    tenant: &Tenant,
    resource: &'static Resource,
    request: &Request,
) -> Result<Response, ApiError> {
    let filter = Filter::from_request(resource, request)?;
    let size = page_size(request)?;
    let fields = request.param("fields");
    let render = |record: &Value| tenant.render(resource, record, &request.base);

    if request.forward_only {
        let after: i64 = match request.param("pageId") {
            None => 0,
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| ApiError::new(400, "InvalidObject", "pageId must be an integer"))?,
        };
        // Records come in id order; `pageId` means "after this id". `orderBy` and `page`
        // are ignored in this mode.
        let mut page: Vec<Value> = tenant
            .records_after(resource.collection, after)
            .map(render)
            .filter(|record| filter.accepts(record))
            .take(size + 1)
            .collect();
        let more = page.len() > size;
        page.truncate(size);
        let link = match (
            more,
            page.last()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_i64),
        ) {
            (true, Some(last_id)) => {
                let mut params = carried_params(request);
                params.push(("pageSize".into(), size.to_string()));
                params.push(("pageId".into(), last_id.to_string()));
                format!("<{}>; rel=\"next\"", link_url(request, resource, &params))
            }
            _ => String::new(),
        };
        let items = page.iter().map(|r| project(r, fields)).collect();
        return Ok(json_response(
            StatusCode::OK,
            Value::Array(items),
            Some(link),
        ));
    }

    let page: usize = match request.param("page") {
        None => 1,
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|p: &usize| *p >= 1)
            .ok_or_else(|| {
                ApiError::new(400, "InvalidObject", "page must be a positive integer")
            })?,
    };
    let mut all: Vec<Value> = tenant
        .records(resource.collection)
        .map(render)
        .filter(|record| filter.accepts(record))
        .collect();
    if let Some(order) = request.param("orderBy") {
        sort(&mut all, resource, order)?;
    }
    let total = all.len();
    let last_page = total.div_ceil(size).max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|r| project(r, fields))
        .collect();
    let mut links = Vec::new();
    let page_link = |n: usize, rel: &str| {
        let mut params = carried_params(request);
        params.push(("page".into(), n.to_string()));
        params.push(("pageSize".into(), size.to_string()));
        format!("<{}>; rel=\"{rel}\"", link_url(request, resource, &params))
    };
    if page > 1 {
        links.push(page_link(1, "first"));
        links.push(page_link(page - 1, "prev"));
    }
    if page < last_page {
        links.push(page_link(page + 1, "next"));
        links.push(page_link(last_page, "last"));
    }
    Ok(json_response(
        StatusCode::OK,
        Value::Array(items),
        Some(links.join(", ")),
    ))
}

/// Paging over a list that is not a resource of its own (`/{id}/configurations`): both
/// modes, in id order, no conditions.
fn page_list(records: Vec<Value>, request: &Request, path: &str) -> Result<Response, ApiError> {
    let size = page_size(request)?;
    let id = |r: &Value| r.get("id").and_then(Value::as_i64).unwrap_or(0);
    let link = |params: Vec<(String, String)>, rel: &str| {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        format!(
            "<{}/{path}?{}>; rel=\"{rel}\"",
            request.base,
            query.join("&")
        )
    };
    if request.forward_only {
        let after: i64 = request
            .param("pageId")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        let mut page: Vec<Value> = records
            .into_iter()
            .filter(|r| id(r) > after)
            .take(size + 1)
            .collect();
        let more = page.len() > size;
        page.truncate(size);
        let next = match (more, page.last()) {
            (true, Some(last)) => link(
                vec![
                    ("pageSize".into(), size.to_string()),
                    ("pageId".into(), id(last).to_string()),
                ],
                "next",
            ),
            _ => String::new(),
        };
        return Ok(json_response(
            StatusCode::OK,
            Value::Array(page),
            Some(next),
        ));
    }
    let page: usize = request
        .param("page")
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let total = records.len();
    let items: Vec<Value> = records
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let mut links = Vec::new();
    if page * size < total {
        links.push(link(
            vec![
                ("page".into(), (page + 1).to_string()),
                ("pageSize".into(), size.to_string()),
            ],
            "next",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        Value::Array(items),
        Some(links.join(", ")),
    ))
}

/// The filter parameters a paging link repeats.
fn carried_params(request: &Request) -> Vec<(String, String)> {
    [
        "conditions",
        "childConditions",
        "customFieldConditions",
        "fields",
        "orderBy",
    ]
    .iter()
    .filter_map(|name| {
        request
            .param(name)
            .map(|v| ((*name).to_string(), v.to_string()))
    })
    .collect()
}

fn link_url(request: &Request, resource: &Resource, params: &[(String, String)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("{}/{}?{}", request.base, resource.path, query.join("&"))
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `orderBy=name asc` / `id desc`: one field, as the project uses it.
fn sort(records: &mut [Value], resource: &Resource, order: &str) -> Result<(), ApiError> {
    let mut words = order.split_whitespace();
    let field = words.next().unwrap_or("");
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::new(
                400,
                "InvalidObject",
                format!("orderBy: unknown direction `{other}`"),
            ));
        }
    };
    let path: Vec<String> = field.split('/').map(str::to_string).collect();
    check_path(resource, &path, false)
        .map_err(|e| ApiError::new(400, "InvalidObject", format!("orderBy: {e}")))?;
    let key = |record: &Value| {
        let mut value = record;
        for segment in &path {
            value = value.get(segment.as_str()).unwrap_or(&Value::Null);
        }
        match value {
            Value::String(s) => (1, s.to_lowercase(), 0.0),
            Value::Number(n) => (1, String::new(), n.as_f64().unwrap_or(0.0)),
            Value::Bool(b) => (1, String::new(), f64::from(u8::from(*b))),
            _ => (0, String::new(), 0.0),
        }
    };
    records.sort_by(|a, b| {
        let ordering = key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal);
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    Ok(())
}

/// `fields=id,name,type/name`: only those members, nested as in the record.
fn project(record: &Value, fields: Option<&str>) -> Value {
    let Some(fields) = fields else {
        return record.clone();
    };
    let mut out = Map::new();
    for path in fields.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        copy_path(record, &mut out, &path.split('/').collect::<Vec<_>>());
    }
    Value::Object(out)
}

fn copy_path(source: &Value, target: &mut Map<String, Value>, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some((key, value)) = source
        .as_object()
        .and_then(|map| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(first)))
    else {
        return;
    };
    if rest.is_empty() || !value.is_object() {
        target.insert(key.clone(), value.clone());
        return;
    }
    let slot = target
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(child) = slot.as_object_mut() {
        copy_path(value, child, rest);
    }
}

fn bulk(
    tenant: &mut Tenant,
    shared: &Shared,
    resource: &Resource,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = request.json_body()?;
    let items = body.as_array().ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidObject",
            "A bulk request body is an array of objects.",
        )
    })?;
    if let Some(refused) = tenant.whole_refusal(resource, items) {
        return Err(refused);
    }
    let creating = request.method == Method::POST;
    let endpoint = endpoint_key(request.method.as_str(), &format!("/{}", request.path));
    let payload: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            let outcome = if shared.control.take_item_failure(name) {
                Err(ApiError::new(500, "ServerError", "injected item failure"))
            } else if creating {
                tenant.create(resource, item)
            } else {
                match item.get("id").and_then(Value::as_i64) {
                    Some(id) => tenant.replace(resource, id, item),
                    None => Err(ApiError::new(
                        400,
                        "InvalidObject",
                        "An update needs the record's id.",
                    )),
                }
            };
            match outcome {
                Ok(record) => json!({
                    "success": true,
                    "originalIndex": index,
                    "statusCode": if creating { 201 } else { 200 },
                    "data": tenant.render(resource, &record, &request.base),
                }),
                Err(error) => {
                    shared.control.on_item_answer(&endpoint, error.status);
                    json!({
                        "success": false,
                        "originalIndex": index,
                        "statusCode": error.status,
                        "error": error.body,
                    })
                }
            }
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"payload": payload, "_info": {}}),
        None,
    ))
}

fn json_response(status: StatusCode, body: Value, link: Option<String>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(link) = link
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, error.body.clone(), None)
}
