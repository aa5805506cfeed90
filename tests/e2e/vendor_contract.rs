//! The vendors' contract, not our reading of it: every request the product sends in a
//! sync, a rerun, an enrichment, a duplicates search and merge, and both reverts, held
//! against what the vendors publish.
//!
//! - ConnectWise: every path and method, every query parameter, every field named in
//!   `fields`, `conditions`, `childConditions`, `customFieldConditions` and `orderBy`,
//!   and every member of every body (with its type) exists in ConnectWise's own model,
//!   generated from its published OpenAPI document (`infra/contract/connectwise_model.py`
//!   reads it from the pyconnectwise package; `make contract-model` writes it).
//! - Lansweeper: every GraphQL document, with its variables, validates against
//!   Lansweeper's published schema (`infra/contract/lansweeper.graphql`), and every
//!   document the product has (`shared::lansweeper::documents`) is among them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shared::lansweeper::documents;
use shared::operator::{MergeOptions, MergeRequest};
use shared::pipeline::{self};
use simulators::connectwise::{CONFIGURATION_POD, CONFIGURATIONS, TICKETS};
use simulators::control::{Seen, path_template};
use simulators::lansweeper::published;

use lscw_tests::world::{World, settings, sync, world};

/// ConnectWise's model, as `make contract-model` wrote it.
fn connectwise_model() -> Model {
    let path = std::env::var("CW_MODEL").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/contract/connectwise-model.json"
        )
        .to_string()
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "ConnectWise's model is not at {path} ({e}): run `make contract-model` (make test does)"
        )
    });
    Model(serde_json::from_str(&text).unwrap())
}

/// ConnectWise's published model: models by name, paths with their methods and bodies.
struct Model(Value);

/// `pageId` pages forward-only listings: ConnectWise's developer guide documents it
/// ("Pagination"), the generated clients' shared parameter list does not.
const DOCUMENTED_QUERY_PARAMETERS: &[&str] = &["pageId"];

/// `lastUpdated` in conditions: the developer guide's own example of a condition
/// (`lastUpdated > [2016-08-20T18:04:26Z]`); the model holds it under `_info`.
const DOCUMENTED_CONDITION_FIELDS: &[&str] = &["lastUpdated"];

/// Words of the conditions grammar, never field names.
const CONDITION_WORDS: &[&str] = &[
    "and", "or", "not", "in", "like", "contains", "true", "false", "null", "asc", "desc",
];

impl Model {
    /// The path's entry, found as ConnectWise routes it: numeric segments are ids, case
    /// does not matter.
    fn path(&self, method: &str, path: &str) -> Result<&Value, String> {
        let template = path_template(path);
        let entry = self.0["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(&template))
            .map(|(_, entry)| entry)
            .ok_or_else(|| format!("{method} {path}: no such path in ConnectWise's model"))?;
        let methods = entry["methods"].as_array().unwrap();
        if !methods.iter().any(|m| m == method) {
            return Err(format!(
                "{method} {path}: ConnectWise's model has only {methods:?} there"
            ));
        }
        Ok(entry)
    }

    fn model(&self, name: &str) -> &Value {
        &self.0["models"][name]
    }

    /// Checks a field path (`manufacturer/name`, `communicationItems/value`) through the
    /// model `name`.
    fn field_path(&self, name: &str, path: &str) -> Result<(), String> {
        let mut model = name.to_string();
        let segments: Vec<&str> = path.split('/').collect();
        for (index, segment) in segments.iter().enumerate() {
            let field = &self.model(&model)[*segment];
            if field.is_null() {
                return Err(format!("`{path}`: {model} has no `{segment}`"));
            }
            if index + 1 < segments.len() {
                match field["model"].as_str() {
                    Some(next) => model = next.to_string(),
                    // A dictionary (`_info`) or value of any shape: its keys are not modelled.
                    None => return Ok(()),
                }
            }
        }
        Ok(())
    }

    /// Checks a body member by member, with its type, against the model `name`.
    fn value(&self, name: &str, value: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            problems.push(format!("{at}: a {name} must be an object, not {value}"));
            return;
        };
        let model = self.model(name);
        for (key, member) in object {
            let field = &model[key];
            let here = format!("{at}.{key}");
            if field.is_null() {
                problems.push(format!("{here}: {name} has no `{key}`"));
                continue;
            }
            if member.is_null() {
                continue;
            }
            let fits = match field["type"].as_str().unwrap_or("any") {
                "str" | "datetime" | "date" => member.is_string(),
                "int" => member.is_i64() || member.is_u64(),
                "float" => member.is_number(),
                "bool" => member.is_boolean(),
                "ref" => {
                    if let Some(model) = field["model"].as_str() {
                        self.value(model, member, &here, problems);
                    }
                    member.is_object()
                }
                "list" => {
                    if let (Some(items), Some(model)) = (member.as_array(), field["model"].as_str())
                    {
                        for (index, item) in items.iter().enumerate() {
                            self.value(model, item, &format!("{here}[{index}]"), problems);
                        }
                    }
                    member.is_array()
                }
                _ => true,
            };
            if !fits {
                problems.push(format!(
                    "{here}: {member} is not a {} ({name})",
                    field["type"]
                ));
            }
        }
    }

    /// Everything wrong with one request.
    fn check(&self, seen: &Seen) -> Vec<String> {
        let mut problems = Vec::new();
        let entry = match self.path(&seen.method, &seen.path) {
            Ok(entry) => entry,
            Err(problem) => return vec![problem],
        };
        let at = format!("{} {}", seen.method, seen.path);
        // A count's conditions are its collection's.
        let read_model = match seen.path.strip_suffix("/count") {
            Some(collection) => self
                .path("GET", collection)
                .ok()
                .and_then(|e| e["get"].as_str()),
            None => entry["get"].as_str(),
        };
        for (parameter, value) in &seen.query {
            let known = self.0["queryParams"].get(parameter).is_some()
                || DOCUMENTED_QUERY_PARAMETERS.contains(&parameter.as_str());
            if !known {
                problems.push(format!("{at}: no query parameter `{parameter}`"));
                continue;
            }
            let paths: Vec<String> = match parameter.as_str() {
                "fields" => value.split(',').map(|f| f.trim().to_string()).collect(),
                "conditions" | "childConditions" | "orderBy" => condition_fields(value),
                _ => Vec::new(),
            };
            let model = if parameter == "customFieldConditions" {
                Some("CustomFieldValue")
            } else {
                read_model
            };
            let paths = if parameter == "customFieldConditions" {
                condition_fields(value)
            } else {
                paths
            };
            for path in paths {
                if parameter == "conditions" && DOCUMENTED_CONDITION_FIELDS.contains(&path.as_str())
                {
                    continue;
                }
                match model {
                    Some(model) => {
                        if let Err(problem) = self.field_path(model, &path) {
                            problems.push(format!("{at} {parameter}: {problem}"));
                        }
                    }
                    None => problems.push(format!(
                        "{at}: `{parameter}` names `{path}`, the path reads no model"
                    )),
                }
            }
        }
        let Some(body) = &seen.body else {
            return problems;
        };
        let Some(model) = entry["body"][&seen.method]["model"].as_str() else {
            problems.push(format!("{at}: the model takes no body there"));
            return problems;
        };
        match (seen.method.as_str(), body) {
            ("PATCH", Value::Array(operations)) => {
                for operation in operations {
                    let op = operation["op"].as_str().unwrap_or("");
                    if !["add", "replace", "remove"].contains(&op) {
                        problems.push(format!("{at}: JSON-Patch op `{op}`"));
                    }
                    let path = operation["path"].as_str().unwrap_or("");
                    let member = path.trim_start_matches('/').split('/').next().unwrap_or("");
                    if self.model(model)[member].is_null() {
                        problems.push(format!(
                            "{at}: patch path `{path}`: {model} has no `{member}`"
                        ));
                    }
                }
            }
            // Bulk writes take an array of the model.
            (_, Value::Array(items)) if seen.path.ends_with("/bulk") => {
                for (index, item) in items.iter().enumerate() {
                    self.value(model, item, &format!("{at}[{index}]"), &mut problems);
                }
            }
            (_, body) => self.value(model, body, &at, &mut problems),
        }
        problems
    }
}

/// The field paths a condition (or `orderBy`) names: its identifiers, once strings,
/// bracketed dates, numbers and the grammar's words are set aside.
fn condition_fields(text: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // A string; `\"` inside it is a quote, not its end.
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            '[' => {
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_ascii_alphanumeric() || next == '_' || next == '/' {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if !CONDITION_WORDS.contains(&word.to_ascii_lowercase().as_str()) {
                    fields.push(word);
                }
            }
            _ => {}
        }
    }
    fields
}

/// Every kind of request the product sends, in one world: a sync, a rerun after changes
/// on both sides, an enrichment, duplicates found and merged, both reverts, and the
/// Lansweeper calls of setup (sites, one edit).
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, every kind of request in the order an operator meets them: read top to bottom"
)]
async fn everything_the_product_sends() -> (World, Vec<Seen>, Vec<Seen>) {
    let mut world = world(60).await;
    // Pages of 25: later pages (`NEXT`) are sent too.
    world.ls_client = lscw_tests::ls_client_for(
        &world.ls,
        simulators::lansweeper::TOKEN,
        shared::lansweeper::LansweeperOptions {
            page_size: 25,
            ..lscw_tests::ls_options()
        },
    );
    // Some devices have a last user: their contacts are looked up.
    world.cw.with_tenant(|tenant| {
        world
            .ls
            .with_site(|site| simulators::scenario::give_users(tenant, site, 5).unwrap())
    });
    world.cw.control().record_requests(true);
    world.ls.control().record_requests(true);
    let first = sync(&world).await;
    assert!(first.failed.is_empty(), "{:#?}", first.failed);
    // A rerun with changes: an asset renamed and moved, a configuration typed by hand.
    world.ls.with_site(|site| {
        site.data.assets[3]["assetBasicInfo"]["name"] = json!("renamed-by-lansweeper");
        site.data.assets[4]["assetCustom"]["location"] = json!("Moved Office");
    });
    let twin = world.cw.with_tenant(|tenant| {
        let original = tenant.records("configurations").next().unwrap().clone();
        let mut twin = json!({
            "name": format!("{} (typed by hand)", original["name"].as_str().unwrap()),
            "type": original["type"], "company": original["company"],
            "serialNumber": original["serialNumber"],
        });
        twin["macAddress"] = original["macAddress"].clone();
        let twin = tenant.create(&CONFIGURATIONS, &twin).unwrap()["id"]
            .as_i64()
            .unwrap();
        // A ticket on the twin: the merge moves it onto the one kept.
        let ticket = tenant
            .create(
                &TICKETS,
                &json!({"summary": "Fault", "recordType": "ServiceTicket",
                    "status": {"id": 1, "name": "New"}, "company": original["company"],
                    "closedFlag": false}),
            )
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        tenant.attach(&TICKETS, ticket, twin).unwrap();
        twin
    });
    let second = sync(&world).await;
    assert!(second.counts.modified > 0, "{second:#?}");
    let enriched = shared::enrichment::run_enrich(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap()
    .0;
    assert!(enriched.written > 0, "{:?}", enriched.failed.first());
    let groups = shared::operator::find_duplicates(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        None,
    )
    .await
    .unwrap();
    let requests: Vec<MergeRequest> = groups.iter().filter_map(MergeRequest::suggested).collect();
    assert!(
        requests
            .iter()
            .any(|r| r.drop.contains(&twin) || r.keep == twin),
        "{groups:#?}"
    );
    let merged = shared::operator::merge(
        &world.cw_client,
        &world.ls_client,
        &world.store,
        &settings(),
        &requests,
        MergeOptions {
            dry_run: false,
            approve: true,
        },
    )
    .await
    .unwrap();
    assert!(!merged.merged.is_empty(), "{merged:?}");
    // The run recorded as the state machine's run-report records it, trail and all.
    let input = shared::states::RecordReportInput {
        run_id: second.run_id.as_str().into(),
        ..shared::states::RecordReportInput::default()
    };
    pipeline::record_report(
        &world.store,
        &input,
        &shared::pipeline::Retention::of(&settings()),
    )
    .await
    .unwrap();
    shared::operator::revert_run(
        &world.cw_client,
        &world.store,
        &settings(),
        &second.run_id,
        true,
    )
    .await
    .unwrap();
    shared::operator::revert_enrichment(
        &world.ls_client,
        &world.store,
        &settings(),
        &enriched.run_id,
    )
    .await
    .unwrap()
    .expect("the enrichment wrote");
    // `lscw doctor --fix` on a tenant whose configurations screen lost the sync's fields:
    // the definitions read, the missing ones made.
    world.cw.with_tenant(lscw_tests::drop_sync_fields);
    let named = shared::settings::SyncSettings {
        configuration_pod_id: Some(CONFIGURATION_POD),
        ..settings()
    };
    let made = shared::custom_fields::find_or_create(&world.cw_client, &named, true)
        .await
        .unwrap();
    assert!(!made.created.is_empty(), "{made:?}");
    // Setup's calls: the sites both ways a token sees them, a batch of one edit.
    world.ls_client.sites().await.unwrap();
    world
        .ls_client
        .graphql(documents::PROFILE_SITES, json!({}))
        .await
        .unwrap();
    let key = world
        .ls
        .with_site(|site| site.data.assets[0]["key"].as_str().unwrap().to_string());
    let field = world.ls_client.custom_fields().await.unwrap().remove(0);
    let cleared = [(field.key, String::new())];
    let one = world
        .ls_client
        .edit_assets_custom_fields(&[(key.as_str(), &cleared[..])])
        .await
        .unwrap();
    assert_eq!(one, [Ok(())]);
    let cw = world.cw.control().seen();
    let ls = world.ls.control().seen();
    (world, cw, ls)
}

/// Breaking it looks like: a `location` object written in every bulk POST and PUT and
/// read as `location/name`, fields ConnectWise's model does not have (a rerun that never
/// converges, or no configuration created at all).
#[tokio::test]
async fn every_connectwise_request_is_in_connectwise_s_published_model() {
    let model = connectwise_model();
    let (_world, connectwise, _) = everything_the_product_sends().await;
    let mut problems = BTreeSet::new();
    let mut fields_named = 0;
    for seen in &connectwise {
        fields_named += seen.query.len()
            + seen
                .body
                .as_ref()
                .map_or(0, |b| b.to_string().matches("\":").count());
        problems.extend(model.check(seen));
    }
    assert!(connectwise.len() > 50, "{} requests", connectwise.len());
    let kinds: BTreeSet<String> = connectwise
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.method,
                path_template(&s.path).replace("/{id}", "")
            )
        })
        .collect();
    for expected in [
        "POST /company/configurations/bulk",
        "PUT /company/configurations/bulk",
        "GET /company/configurations",
        "GET /service/tickets",
        "POST /service/tickets/configurations",
        "GET /company/contacts",
        "POST /system/userDefinedFields",
    ] {
        assert!(
            kinds.contains(expected),
            "{expected} never sent: {kinds:#?}"
        );
    }
    assert!(
        problems.is_empty(),
        "{} of {} requests ({fields_named} names) outside ConnectWise's model:\n{}",
        problems.len(),
        connectwise.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Breaking it looks like: `Cannot query field 'key' on type 'EditAssetResponse'` on
/// every batched edit, the product halving to one edit a request (a first enrichment of
/// 100,000 assets back to ~50 hours).
#[tokio::test]
async fn every_lansweeper_document_validates_against_lansweeper_s_published_schema() {
    let (world, _, lansweeper) = everything_the_product_sends().await;
    let mut problems = Vec::new();
    let mut queries = BTreeSet::new();
    for seen in &lansweeper {
        let body = seen.body.as_ref().expect("a GraphQL request is JSON");
        let query = body["query"].as_str().unwrap_or_default();
        queries.insert(query.to_string());
        if let Err(refused) = published::check(
            query,
            body["operationName"].as_str(),
            body.get("variables").unwrap_or(&Value::Null),
        ) {
            problems.push(format!("{refused}\n  in {query}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for document in [
        documents::AUTHORIZED_SITES,
        documents::PROFILE_SITES,
        documents::CUSTOM_FIELDS,
        documents::CREATE_CUSTOM_FIELD,
        documents::FIRST_PAGE,
        documents::NEXT_PAGE,
    ] {
        assert!(
            queries.contains(document),
            "never sent, so never checked: {document}"
        );
    }
    // Batched edits of every size sent, each checked with its variables.
    let batched: BTreeSet<usize> = queries
        .iter()
        .filter(|q| q.starts_with("mutation EditAssets("))
        .map(|q| q.matches("editAsset(").count())
        .collect();
    assert!(
        batched.contains(&1) && batched.iter().any(|n| *n > 1),
        "{batched:?}"
    );
    assert_eq!(
        world.ls.control().refusals().get("POST graphql:other"),
        None,
        "nothing refused as malformed"
    );
}

/// What is not settled about an endpoint the product uses, and how the product lives
/// with either answer (`../shared/reference/`).
const UNCONFIRMED: &[(&str, &str)] = &[
    (
        "/company/configurations/bulk",
        "the answer: the OpenAPI document says one configuration, tenants answer a `BulkResult` (one result per item); the product reads per-item results and fails a request it cannot read, never guessing which items were saved",
    ),
    (
        "/company/configurations",
        "`pageId` and `pagination-type: forward-only` (the developer guide's, not the model's parameters); some endpoints ignore them and answer numbered pages, which the product detects",
    ),
    (
        "/service/tickets",
        "`lastUpdated` in conditions: the developer guide's example; the model keeps it under `_info`",
    ),
    (
        "editAsset",
        "how many aliased edits one request may carry (unpublished): the product starts at 20, halves on a whole refusal, and remembers the size that went through",
    ),
    (
        "assetResources",
        "the filter operators `EXISTS` and `REGEXP` (in the introspected schema, not in Lansweeper's MCP server's list); the product sends only `EQUAL`",
    ),
];

/// The table of `docs/vendor-contract.md` between its markers, as the product's requests
/// make it: every endpoint and operation it sends, the published source it is checked
/// against, and what is unconfirmed.
fn endpoint_table(model: &Model, connectwise: &[Seen], lansweeper: &[Seen]) -> String {
    let mut rows = BTreeSet::new();
    for seen in connectwise {
        let template = path_template(&seen.path);
        let class = model
            .path(&seen.method, &seen.path)
            .ok()
            .and_then(|e| e["endpointClass"].as_str())
            .unwrap_or("(not in the model)");
        let unconfirmed = UNCONFIRMED
            .iter()
            .find(|(path, _)| *path == template && seen.method != "PATCH")
            .map_or("", |(_, note)| note);
        rows.insert(format!(
            "| ConnectWise | `{} {template}` | OpenAPI model, `{class}` | {unconfirmed} |",
            seen.method
        ));
    }
    for seen in lansweeper {
        let query = seen
            .body
            .as_ref()
            .and_then(|b| b["query"].as_str())
            .unwrap_or("");
        let operation = lansweeper_operation(query);
        let unconfirmed = UNCONFIRMED
            .iter()
            .find(|(name, _)| operation.contains(name))
            .map_or("", |(_, note)| note);
        rows.insert(format!(
            "| Lansweeper | `{operation}` | published schema (`infra/contract/lansweeper.graphql`) | {unconfirmed} |"
        ));
    }
    let mut table = String::from(
        "| API | endpoint or operation | checked against | unconfirmed |\n|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&row);
        table.push('\n');
    }
    table
}

/// A GraphQL document as its operation and the fields it reaches: `mutation site.editAsset
/// ×n`, `query site.assetResources`.
fn lansweeper_operation(query: &str) -> String {
    let kind = if query.trim_start().starts_with("mutation") {
        "mutation"
    } else {
        "query"
    };
    let reached = [
        ("authorizedSites", "authorizedSites.sites"),
        ("me {", "me.profiles.site"),
        ("customFields", "site.customFields"),
        ("createCustomField", "site.createCustomField"),
        ("assetResources", "site.assetResources"),
        ("editAsset", "site.editAsset"),
    ]
    .iter()
    .find(|(needle, _)| query.contains(needle))
    .map_or("?", |(_, path)| path);
    let selects_total = if query.contains("total") {
        " (first page, selecting total)"
    } else if reached == "site.assetResources" {
        " (later pages)"
    } else {
        ""
    };
    let aliased = if query.contains("e1: site(") {
        " (aliased, several a request)"
    } else {
        ""
    };
    format!("{kind} {reached}{selects_total}{aliased}")
}

/// Breaking it looks like: an endpoint the product has begun to use that nobody has
/// checked against what the vendor publishes, or a table that says one the product no
/// longer sends. `make structure` writes the table anew.
#[tokio::test]
async fn the_endpoint_table_is_what_the_product_sends() {
    let model = connectwise_model();
    let (_world, connectwise, lansweeper) = everything_the_product_sends().await;
    let table = endpoint_table(&model, &connectwise, &lansweeper);
    shared::manual::hold("docs/vendor-contract.md", "endpoints", &table)
        .unwrap_or_else(|behind| panic!("{behind}\n{table}"));
}

/// The checks themselves: a field outside the model, a wrong type, an unknown path or
/// parameter, a condition on a member the model lacks are each caught.
#[test]
fn a_request_outside_connectwise_s_model_is_caught() {
    let model = connectwise_model();
    let seen = |method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>| Seen {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        body,
    };
    let good = seen(
        "POST",
        "/company/configurations/bulk",
        &[],
        Some(
            json!([{"name": "PC", "type": {"id": 1}, "company": {"id": 2}, "locationId": 4,
            "customFields": [{"id": 5, "value": "k"}]}]),
        ),
    );
    assert_eq!(model.check(&good), Vec::<String>::new());
    for (bad, expected) in [
        (
            seen(
                "POST",
                "/company/configurations/bulk",
                &[],
                Some(json!([{"name": "PC", "location": {"id": 4}}])),
            ),
            "has no `location`",
        ),
        (
            seen(
                "PUT",
                "/company/configurations/bulk",
                &[],
                Some(json!([{"id": 9, "locationId": "Rotterdam"}])),
            ),
            "is not a",
        ),
        (
            seen(
                "GET",
                "/company/configurations",
                &[("fields", "id,location/name")],
                None,
            ),
            "has no `location`",
        ),
        (
            seen(
                "GET",
                "/company/configurations",
                &[("conditions", "department/name = \"x\" and id > 3")],
                None,
            ),
            "has no `department`",
        ),
        (
            seen("GET", "/company/configurations", &[("colour", "red")], None),
            "no query parameter",
        ),
        (
            seen("DELETE", "/company/configurations/types", &[], None),
            "has only",
        ),
        (
            seen("GET", "/company/configurationz", &[], None),
            "no such path",
        ),
        (
            seen(
                "PATCH",
                "/company/configurations/12",
                &[],
                Some(json!([{"op": "replace", "path": "location", "value": {"id": 1}}])),
            ),
            "has no `location`",
        ),
    ] {
        let problems = model.check(&bad);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{bad:?}: {problems:?}"
        );
    }
    assert_eq!(
        condition_fields(
            r#"name = "a \" and b" and lastUpdated > [2016-08-20T18:04:26Z] and id in (3,4) or manufacturer/name like "x%""#
        ),
        ["name", "lastUpdated", "id", "manufacturer/name"]
    );
}
