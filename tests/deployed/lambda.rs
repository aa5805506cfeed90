//! The deployed form through the real Lambda binaries: the template's state machine, its
//! substitutions filled, executed by moto's Step Functions interpreter whose Lambda tasks
//! invoke the function binaries under their template limits (`infra/local/sfn_engine.py`),
//! against both simulators and moto's DynamoDB and Secrets Manager on loopback. The
//! functions are also invoked one by one, in the state machine's order, through the same
//! Lambda Invoke API.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use serde_json::{Value, json};
use shared::pipeline::{self, RunReport};
use shared::store::DynamoStore;
use simulators::connectwise::{CONFIGURATIONS, ConnectWiseSimulator};
use simulators::control::LostAnswer;
use simulators::lansweeper::{LansweeperSimulator, SiteSpec};

use lscw_tests::aws::{
    Engine, Setup, aws_env, aws_json, create_secret, create_table, run_execution_within,
    sdk_config, start_engine,
};
use lscw_tests::{cw_sim_credentials, start_cw};

const TABLE: &str = "lscw-sync-test";

/// The rest of a run whose fetch answered `fetched`, up to its report; then the lease is
/// given up, as the state machine's ReleaseLease state does.
async fn run_functions_after(
    engine: &Engine,
    store: &DynamoStore,
    fetched: Value,
) -> (RunReport, Vec<Value>, Value) {
    let mut outputs = Vec::new();
    assert!(
        fetched.to_string().len() < 256 * 1024,
        "state payload fits Step Functions"
    );
    assert!(
        fetched.get("assets").is_some() && fetched.get("staged").is_some(),
        "{fetched}"
    );
    outputs.push(fetched.clone());
    let ensured = engine
        .invoke("ensure-references", &fetched)
        .await
        .expect("ensure-references");
    outputs.push(ensured.clone());
    let matched = engine.invoke("match", &ensured).await.expect("match");
    outputs.push(matched.clone());
    let run_id = matched["runId"].as_str().unwrap().to_string();
    // Each Map's lanes, each invoked again with where it goes on until done.
    let (create, modify) = pipeline::planned_groups(store, &run_id).await.unwrap();
    for (function, lanes, count, groups) in [
        ("bulk-create", "createLanes", "createGroups", create),
        ("bulk-modify", "modifyLanes", "modifyGroups", modify),
    ] {
        assert_eq!(matched[count], groups.len());
        let mut batches = 0;
        for lane in matched[lanes].as_array().unwrap() {
            let mut input = lane.clone();
            loop {
                let output = engine.invoke(function, &input).await.expect(function);
                outputs.push(output.clone());
                batches += output["batches"].as_u64().unwrap() as usize;
                if output["done"] == true {
                    break;
                }
                input = json!({"runId": output["runId"], "lane": output["lane"],
                    "lanes": output["lanes"], "next": output["next"]});
            }
        }
        assert_eq!(
            batches,
            groups.iter().map(Vec::len).sum::<usize>(),
            "{function}"
        );
    }
    let report = pipeline::report(store, &run_id, false).await.unwrap();
    assert_eq!(
        report.accounted(),
        report.assets,
        "every asset accounted for: {report:#?}"
    );
    // The state machine's RecordReport: the run-report function records the summary.
    let summary = engine
        .invoke("run-report", &json!({"runId": run_id}))
        .await
        .expect("run-report");
    assert_eq!(summary["status"], json!(report.status), "{summary}");
    assert_eq!(summary["created"], report.counts.created);
    assert_eq!(summary["failed"], report.failed.len());
    assert_eq!(summary["conflicts"], report.conflicts.len());
    // What run-report printed for CloudWatch: the run's numbers in embedded metric format.
    let log = engine.log();
    let metrics = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["runId"] == run_id.as_str()
                && line.get("_aws").is_some()
                && line.get("Site").is_none()
        })
        .unwrap_or_else(|| panic!("no metric line of {run_id}"));
    let directive = &metrics["_aws"]["CloudWatchMetrics"][0];
    for metric in directive["Metrics"].as_array().unwrap() {
        assert!(
            metrics[metric["Name"].as_str().unwrap()].is_u64(),
            "{metric}"
        );
    }
    assert_eq!(metrics["Assets"], report.assets);
    assert_eq!(metrics["Created"], report.counts.created);
    assert_eq!(metrics["Modified"], report.counts.modified);
    assert_eq!(metrics["Conflicts"], report.conflicts.len());
    assert_eq!(metrics["Failed"], report.failed.len());
    assert_eq!(metrics["Unmapped"], report.unmapped.len());
    assert_eq!(metrics["ConnectWiseRequests"], report.api_calls.connectwise);
    assert!(shared::lease::release(store, &run_id).await.unwrap());
    (report, outputs, summary)
}

/// A deployment on loopback: the engine (moto and the Lambda service), both simulators
/// with an MSP's estate, the credentials in Secrets Manager, the mapping in the table and
/// the state machine created from the template's definition.
struct Deployment {
    engine: Engine,
    aws: aws_config::SdkConfig,
    store: DynamoStore,
    cw: ConnectWiseSimulator,
    ls: LansweeperSimulator,
    env: Setup,
    secret_arn: String,
    machine: String,
}

async fn deploy(assets: usize) -> Deployment {
    let engine = start_engine(TABLE);
    let aws = sdk_config(&engine.moto).await;
    create_table(&aws, TABLE).await;
    // An MSP's estate: three sites mapped to four clients' companies (the stored mapping).
    let (mut tenant, sites) = simulators::scenario::estate(&SiteSpec { seed: 5, assets }).unwrap();
    lscw_tests::add_foreign_custom_field(&mut tenant);
    let cw = start_cw(tenant).await;
    let ls = LansweeperSimulator::start_sites(sites, lscw_tests::ls_sim_options(), "127.0.0.1:0")
        .await
        .unwrap();
    let secret_arn = create_secret(&aws, "lscw/credentials", &secret_of(&cw, &ls, None)).await;
    let mut env = aws_env(&engine.moto);
    // The functions' Lansweeper clock runs as fast as the simulator's.
    env.push(("LS_QUOTA_SPEED", lscw_tests::LS_SPEED.to_string()));
    env.push(("RUST_LOG", "info".into()));
    // As the template's LoggingConfig sets it in Lambda.
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    let env = Setup {
        // The site is the secret's (its base URL names the simulator).
        parameters: vec![
            ("ConnectWiseSite", String::new()),
            ("TargetCompany", "BlueLightCo".into()),
        ],
        resources: vec![
            ("SyncTable", TABLE.into()),
            ("Credentials", secret_arn.clone()),
        ],
        env,
    };
    engine.configure(&env, 1.0, &json!({})).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), TABLE);
    shared::mapping::save(&store, lscw_tests::world::estate_mapping(), 0)
        .await
        .unwrap();
    let machine = engine.create_state_machine("sync").await;
    Deployment {
        engine,
        aws,
        store,
        cw,
        ls,
        env,
        secret_arn,
        machine,
    }
}

/// The credentials' secret; `token` replaces Lansweeper's.
fn secret_of(cw: &ConnectWiseSimulator, ls: &LansweeperSimulator, token: Option<&str>) -> Value {
    let mut secret = cw_sim_credentials(cw);
    secret["LS_TOKEN"] = json!(token.unwrap_or(simulators::lansweeper::TOKEN));
    secret["LS_SITE_ID"] = json!(ls.site_id());
    secret["LS_API_URL"] = json!(ls.api_url());
    secret
}

impl Deployment {
    /// One execution of the state machine to its end (its name is the run id).
    async fn execute(&self, name: &str) -> Value {
        run_execution_within(
            &self.engine.moto,
            &self.machine,
            name,
            Duration::from_secs(300),
        )
        .await
    }

    /// The execution's output, parsed.
    fn output(execution: &Value) -> Value {
        serde_json::from_str(execution["output"].as_str().unwrap()).unwrap()
    }

    /// Configurations per linked asset key: each asset has at most one.
    fn linked_once(&self) -> usize {
        lscw_tests::world::state(&self.cw).0.len()
    }
}

/// Every function stayed inside its template limits: no invocation past its deadline,
/// none killed for memory, peak memory under its `MemorySize`.
async fn within_limits(engine: &Engine) -> Value {
    let stats = engine.stats().await;
    for (function, numbers) in stats["functions"].as_object().unwrap() {
        assert_eq!(numbers["timedOut"], 0, "{function}: {numbers}");
        assert_eq!(numbers["outOfMemory"], 0, "{function}: {numbers}");
        assert!(
            numbers["peakMemoryKb"].as_u64().unwrap()
                < numbers["memoryMb"].as_u64().unwrap() * 1024,
            "{function}: {numbers}"
        );
    }
    stats
}

/// The configurations that carry `key` as their link.
fn linked_to(cw: &ConnectWiseSimulator, key: &str) -> Vec<Value> {
    cw.with_tenant(|t| {
        t.records("configurations")
            .map(|r| t.render(&CONFIGURATIONS, r, ""))
            .filter(|c| {
                c["customFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["caption"] == "ls_asset_id" && f["value"] == key)
            })
            .collect()
    })
}

#[tokio::test]
async fn the_deployed_form_syncs_end_to_end_and_a_second_run_writes_nothing() {
    let deployment = deploy(300).await;
    let (estate_assets, hostile) = add_a_hostile_asset(&deployment);
    let winner = two_runs_started_together_one_runs(&deployment).await;
    the_first_run_function_by_function(&deployment, winner, estate_assets, hostile).await;
    let edited = edited_on_both_sides(&deployment);
    let edits = the_second_run_under_the_state_machine(&deployment, edited).await;
    an_unchanged_run_writes_nothing(&deployment, edits).await;
    a_transient_failure_is_retried_by_the_state_machine(&deployment).await;
    a_run_finding_the_lease_held_is_skipped(&deployment).await;
    a_revoked_token_fails_the_run_and_is_recorded(&deployment).await;
    a_failing_step_logs_once_and_no_secret_is_logged(&deployment).await;
    every_function_ran_within_its_limits(&deployment).await;
}

/// A name and location that read as a condition if ever pasted into one.
const HOSTILE: &str = r#"x" or id>0 or name="y"#;

/// An asset named as a condition would be; answers the estate's size before it, and
/// the name.
fn add_a_hostile_asset(deployment: &Deployment) -> (usize, &'static str) {
    let ls = &deployment.ls;
    let estate_assets: usize = ls
        .site_ids()
        .iter()
        .map(|id| ls.with_site_id(id, |s| s.data.assets.len()).unwrap())
        .sum();
    let hostile = HOSTILE;
    ls.with_site(|site| {
        let mut asset = site.data.assets[1].clone();
        asset["key"] = json!("hostile-asset");
        asset["assetBasicInfo"]["name"] = json!(hostile);
        // Another device: its own serial, no MAC (a copy's would make both a conflict).
        asset["assetCustom"]["serialNumber"] = json!("HOSTILE-SERIAL-1");
        asset["assetBasicInfo"]["mac"] = Value::Null;
        asset["assetCustom"]["location"] = json!(hostile);
        site.add_asset(asset).unwrap();
    });

    (estate_assets, hostile)
}

/// Two runs started together (the schedule firing while a run is still going): one
/// takes the lease and runs, the other ends at once as skipped and writes nothing.
/// Answers the one that runs.
async fn two_runs_started_together_one_runs(deployment: &Deployment) -> Value {
    let Deployment { engine, store, .. } = deployment;
    let (input_a, input_b) = (json!({"runId": "run-a"}), json!({"runId": "run-b"}));
    let (a, b) = tokio::join!(
        engine.invoke("fetch-assets", &input_a),
        engine.invoke("fetch-assets", &input_b)
    );
    let (a, b) = (a.expect("run-a fetch"), b.expect("run-b fetch"));
    let (winner, skipped) = if a.get("skippedFor").is_some() {
        (b, a)
    } else {
        (a, b)
    };
    assert!(winner.get("skippedFor").is_none(), "{winner}");
    assert_eq!(skipped["skippedFor"]["runId"], winner["runId"], "{skipped}");
    assert!(skipped["skippedFor"]["startedAt"].as_u64().unwrap() > 0);
    assert_eq!(skipped["staged"], 0);
    let skipped_report = pipeline::report(store, skipped["runId"].as_str().unwrap(), false)
        .await
        .unwrap();
    assert_eq!(
        skipped_report.skipped_for.unwrap().run_id,
        winner["runId"].as_str().unwrap()
    );
    let renewed = engine.invoke("ensure-references", &winner).await;
    assert!(
        renewed.is_ok(),
        "the winner renews its own lease: {renewed:?}"
    );
    let refused = engine
        .invoke("ensure-references", &skipped)
        .await
        .unwrap_err();
    assert!(
        refused.contains("Permanent") && refused.contains("lost its lease"),
        "{refused}"
    );

    winner
}

/// The first run, its functions invoked one by one in the state machine's order:
/// created with the right references and custom fields; the hostile name is just a name.
async fn the_first_run_function_by_function(
    deployment: &Deployment,
    winner: Value,
    estate_assets: usize,
    hostile: &str,
) {
    let Deployment {
        engine, store, cw, ..
    } = deployment;
    let (first, _, _) = run_functions_after(engine, store, winner).await;
    // world::state fails on an asset with two configurations.
    assert!(deployment.linked_once() > 0);
    assert_eq!(first.assets as usize, estate_assets + 1);
    assert!(
        !first.unmapped.is_empty(),
        "the shared site's assets without a customer"
    );
    assert!(
        first.counts.created > 100 && first.counts.modified > 50,
        "{first:#?}"
    );
    assert!(!first.conflicts.is_empty());
    assert!(first.failed.is_empty(), "{:#?}", first.failed);
    assert!(first.api_calls.connectwise > 0 && first.api_calls.lansweeper > 0);

    // Created with the right references and custom fields; the hostile name is just a name.
    let linked = |key: &str| linked_to(cw, key);
    let hostile_config = linked("hostile-asset");
    assert_eq!(hostile_config.len(), 1);
    assert_eq!(hostile_config[0]["name"], hostile);
    assert_eq!(
        cw.with_tenant(|t| t.location_name(&hostile_config[0])),
        hostile
    );
    assert_eq!(hostile_config[0]["company"]["identifier"], "BlueLightCo");
    for conflict in &first.conflicts {
        assert!(
            linked(&conflict.asset_key).is_empty(),
            "conflict {} was written",
            conflict.asset_key
        );
    }
}

/// A person edits a configuration by hand; Lansweeper changes the asset's address.
/// Answers the configuration.
fn edited_on_both_sides(deployment: &Deployment) -> i64 {
    let (cw, ls) = (&deployment.cw, &deployment.ls);
    let key = ls.with_site(|site| {
        site.data.assets[8]["assetBasicInfo"]["ipAddress"] = json!("10.77.77.77");
        site.data.assets[8]["key"].as_str().unwrap().to_string()
    });
    let edited = linked_to(cw, &key)[0]["id"].as_i64().unwrap();
    cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", edited).unwrap().clone();
        body["notes"] = json!("keep me");
        let mut fields = body["customFields"].as_array().unwrap().clone();
        fields.push(json!({"id": 9, "value": "Jane at Dell"}));
        body["customFields"] = Value::Array(fields);
        tenant.replace(&CONFIGURATIONS, edited, &body).unwrap();
    });

    edited
}

/// The second run, as the schedule starts it: the state machine over the functions.
/// Answers the `editAsset` requests it took.
async fn the_second_run_under_the_state_machine(deployment: &Deployment, edited: i64) -> u64 {
    let Deployment {
        aws, store, cw, ls, ..
    } = deployment;
    cw.control().reset_counts();
    let linked_before = deployment.linked_once();
    let execution = deployment.execute("run-2").await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution:#}");
    let second = pipeline::report(store, "run-2", false).await.unwrap();
    assert_eq!(
        (second.counts.created, second.counts.modified),
        (0, 1),
        "{second:#?}"
    );
    assert_eq!(cw.control().count("POST "), 0);
    assert_eq!(
        cw.control().count("PUT "),
        1,
        "{:#?}",
        cw.control().requests()
    );
    assert_eq!(
        deployment.linked_once(),
        linked_before,
        "nothing created twice"
    );
    let after = cw.with_tenant(|t| {
        t.render(
            &CONFIGURATIONS,
            t.get("configurations", edited).unwrap(),
            "",
        )
    });
    assert_eq!(after["ipAddress"], "10.77.77.77");
    assert_eq!(after["notes"], "keep me");
    assert!(
        after["customFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["caption"] == "warranty_contact" && f["value"] == "Jane at Dell")
    );
    // The execution enriched (its Enrich state looped on the continuation until done),
    // recorded its report and gave its lease up.
    let output = Deployment::output(&execution);
    assert_eq!(output["runId"], "run-2");
    // Each Map ran one iteration per lane match planned.
    for (map, lanes) in [("created", "createLanes"), ("modified", "modifyLanes")] {
        assert_eq!(
            output[map].as_array().unwrap().len(),
            output["match"][lanes].as_array().map_or(0, Vec::len),
            "{map}: {output:#}"
        );
    }
    assert_eq!(output["enrich"]["output"]["done"], true, "{output:#}");
    let enriched = output["enrich"]["output"]["edits"].as_u64().unwrap();
    assert!(enriched > 100, "{output:#}");
    // Several assets' edits a request (aliased `editAsset`s).
    let edits = ls.control().count("POST graphql:editAsset");
    assert!(
        edits < enriched && edits >= enriched.div_ceil(20),
        "{edits} requests for {enriched} edits"
    );
    assert_eq!(
        shared::lease::holder(store).await.unwrap(),
        None,
        "ReleaseLease gave the lease up"
    );
    let recorded = store_item(aws, "report/run-2").await;
    assert_eq!(
        recorded.0, "SUCCEEDED_WITH_FAILURES",
        "its conflicts remain"
    );
    assert_eq!(
        output["report"]["output"]["status"],
        "SUCCEEDED_WITH_FAILURES"
    );
    let recorded: Value = serde_json::from_str(&recorded.1).unwrap();
    assert_eq!(recorded["runId"], "run-2");
    assert_eq!(recorded["modified"], 1);
    // One report, a section per site and company, covering the three sites.
    let sections = recorded["sections"].as_array().unwrap();
    let mut sites: Vec<&str> = sections
        .iter()
        .map(|s| s["site"].as_str().unwrap())
        .collect();
    sites.dedup();
    assert_eq!(sites.len(), 3, "{sections:#?}");
    let section_assets: u64 = sections.iter().map(|s| s["assets"].as_u64().unwrap()).sum();
    assert_eq!(section_assets, recorded["assets"].as_u64().unwrap());

    edits
}

/// A third run over unchanged data writes nothing, to either side.
async fn an_unchanged_run_writes_nothing(deployment: &Deployment, edits: u64) {
    let Deployment {
        aws, store, cw, ls, ..
    } = deployment;
    cw.control().reset_counts();
    let third_execution = deployment.execute("run-3").await;
    assert_eq!(
        third_execution["status"], "SUCCEEDED",
        "{third_execution:#}"
    );
    let third = pipeline::report(store, "run-3", false).await.unwrap();
    assert_eq!(
        cw.control().writes(),
        0,
        "a run over unchanged data writes nothing"
    );
    assert_eq!((third.counts.created, third.counts.modified), (0, 0));
    let output = Deployment::output(&third_execution);
    assert_eq!(output["enrich"]["output"]["edits"], 0, "{output:#}");
    assert_eq!(ls.control().count("POST graphql:editAsset"), edits);
    assert_eq!(ls.rate_refusals(), 0);
    assert_eq!(
        store_item(aws, "report/run-3").await.0,
        "SUCCEEDED_WITH_FAILURES"
    );
}

/// Lansweeper answers 502 for longer than the client retries: fetch-assets fails
/// `Transient`, the state machine's Retry invokes it again (after its interval), and the
/// execution succeeds.
async fn a_transient_failure_is_retried_by_the_state_machine(deployment: &Deployment) {
    let Deployment { engine, ls, .. } = deployment;
    // As many as the client's attempts (the production policy's six): one invocation's.
    ls.control().fail_next(6, 502, None, None);
    let execution = deployment.execute("retried-run").await;
    let history = aws_json(
        &engine.moto,
        "states",
        "AWSStepFunctions.GetExecutionHistory",
        &json!({"executionArn": execution["executionArn"], "maxResults": 1000}),
    )
    .await;
    let failures: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("taskFailedEventDetails"))
        .collect();
    assert_eq!(
        execution["status"], "SUCCEEDED",
        "{execution:#} failures: {failures:#?}"
    );
    let events = history["events"].as_array().unwrap();
    let transient = events
        .iter()
        .filter(|e| e["taskFailedEventDetails"]["error"] == "Transient")
        .count();
    assert_eq!(transient, 1, "one invocation failed Transient: {history:#}");
    let fetches = events
        .iter()
        .filter(|e| {
            e["type"] == "TaskScheduled"
                && e["taskScheduledEventDetails"]["parameters"]
                    .as_str()
                    .is_some_and(|p| p.contains("fetch-assets"))
        })
        .count();
    assert_eq!(fetches, 2, "the Retry invoked fetch-assets again");
}

/// Another run holds the lease: the execution ends as skipped (not failed), records the
/// holder and leaves its lease alone.
async fn a_run_finding_the_lease_held_is_skipped(deployment: &Deployment) {
    let Deployment {
        engine, aws, store, ..
    } = deployment;
    assert_eq!(
        shared::lease::acquire(store, "busy-run").await.unwrap(),
        None
    );
    let skipped_execution = deployment.execute("skipped-run").await;
    assert_eq!(
        skipped_execution["status"], "SUCCEEDED",
        "{skipped_execution:#}"
    );
    let recorded = store_item(aws, "report/skipped-run").await;
    assert_eq!(recorded.0, "SKIPPED");
    assert!(recorded.1.contains("busy-run"), "{}", recorded.1);
    assert_eq!(
        shared::lease::holder(store).await.unwrap().unwrap().run_id,
        "busy-run"
    );
    let skip_metrics = engine
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["runId"] == "skipped-run" && line.get("_aws").is_some())
        .expect("run-report published the skipped run's metrics");
    assert_eq!(skip_metrics["RunsSkipped"], 1, "{skip_metrics}");
    assert!(shared::lease::release(store, "busy-run").await.unwrap());
}

/// Lansweeper's token is revoked: the step that reads it fails for good, the execution
/// goes through its Catch, the failure is recorded and the lease released.
async fn a_revoked_token_fails_the_run_and_is_recorded(deployment: &Deployment) {
    let Deployment {
        engine,
        aws,
        store,
        cw,
        ls,
        ..
    } = deployment;
    let revoked = secret_of(cw, ls, Some("revoked-token"));
    aws_sdk_secretsmanager::Client::new(aws)
        .put_secret_value()
        .secret_id(&deployment.secret_arn)
        .secret_string(revoked.to_string())
        .send()
        .await
        .unwrap();
    // New containers: the secret is read once per container, as in Lambda.
    engine.configure(&deployment.env, 1.0, &json!({})).await;
    let failed = deployment.execute("failing-run").await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert_eq!(failed["error"], "SyncFailed", "{failed:#}");
    let recorded = store_item(aws, "report/failing-run").await;
    assert_eq!(recorded.0, "FAILED");
    assert!(
        recorded.1.contains("Lansweeper rejected the token"),
        "the caught error is recorded: {}",
        &recorded.1[..recorded.1.len().min(400)]
    );
    assert_eq!(
        shared::lease::holder(store).await.unwrap(),
        None,
        "a failed run gives its lease up too"
    );
    let failure_metrics = engine
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["runId"] == "failing-run" && line.get("_aws").is_some())
        .expect("run-report published the failed run's metrics");
    assert_eq!(failure_metrics["RunsFailed"], 1, "{failure_metrics}");
}

/// A failing step logs its error once, as JSON, with its run id and step; secrets never
/// reach the logs.
async fn a_failing_step_logs_once_and_no_secret_is_logged(deployment: &Deployment) {
    let Deployment { engine, .. } = deployment;
    let refused = engine
        .invoke(
            "bulk-create",
            &json!({"runId": "run-logged-once", "lane": 0, "lanes": 1, "next": 0}),
        )
        .await
        .expect_err("a run that planned nothing writes nothing");
    let message = serde_json::from_str::<Value>(&refused).unwrap()["errorMessage"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.starts_with("bulk-create: "), "{message}");
    let log = engine.log();
    // The message as it reads in plain text and inside a JSON string.
    let escaped = serde_json::to_string(&message).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    let telling: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&message) || line.contains(escaped))
        .collect();
    assert_eq!(telling.len(), 1, "logged once: {telling:#?}");
    let line: Value = serde_json::from_str(telling[0]).expect("a JSON log line");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["fields"]["message"], "step failed", "{line}");
    assert_eq!(line["fields"]["error"], message.as_str(), "{line}");
    assert_eq!(line["span"]["run_id"], "run-logged-once", "{line}");
    assert_eq!(line["span"]["step"], "bulk-create", "{line}");

    // Secrets never reach the logs.
    assert!(log.contains("fetch-assets"), "the functions ran: {log}");
    assert!(
        !log.contains(simulators::connectwise::PRIVATE_KEY)
            && !log.contains(simulators::lansweeper::TOKEN),
        "a secret in the logs"
    );
}

/// Every function ran inside its template limits, and containers were reused warm
/// between invocations as Lambda reuses them.
async fn every_function_ran_within_its_limits(deployment: &Deployment) {
    let Deployment { engine, .. } = deployment;
    let stats = within_limits(engine).await;
    let (mut invocations, mut cold) = (0, 0);
    for (function, numbers) in stats["functions"].as_object().unwrap() {
        assert!(
            numbers["invocations"].as_u64().unwrap() > 0,
            "{function} never ran"
        );
        invocations += numbers["invocations"].as_u64().unwrap();
        cold += numbers["coldStarts"].as_u64().unwrap();
    }
    assert!(cold < invocations, "{stats:#}");
}

/// bulk-create runs past its deadline (a 1 s timeout; ConnectWise saves each bulk write
/// and answers it 3 s late): the engine stops it as Lambda does (`Sandbox.Timedout`), the Map's Catch ends
/// that lane, the run goes on to its report, which names the unwritten assets failed;
/// the next run writes them, each configuration once.
#[tokio::test]
async fn a_function_past_its_deadline_is_stopped_and_the_next_run_writes_its_work_once() {
    let deployment = deploy(60).await;
    let Deployment {
        engine, store, cw, ..
    } = &deployment;
    engine
        .configure(
            &deployment.env,
            1.0,
            &json!({"bulk-create": {"timeoutSeconds": 1}}),
        )
        .await;
    cw.control().lose_answers_to(
        "/company/configurations/bulk",
        &[(LostAnswer::Late(Duration::from_secs(3)), 1)],
    );
    let slow = deployment.execute("slow-run").await;
    assert_eq!(slow["status"], "SUCCEEDED", "{slow:#}");
    let stats = engine.stats().await;
    let timed_out = stats["functions"]["bulk-create"]["timedOut"]
        .as_u64()
        .unwrap();
    assert!(timed_out > 0, "{stats:#}");
    let history = aws_json(
        &engine.moto,
        "states",
        "AWSStepFunctions.GetExecutionHistory",
        &json!({"executionArn": slow["executionArn"], "maxResults": 1000}),
    )
    .await;
    let timeouts = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["taskFailedEventDetails"]["error"] == "Sandbox.Timedout")
        .count();
    assert_eq!(
        timeouts as u64, timed_out,
        "each stop reached the state machine"
    );
    // The stopped lane failed alone: the run went on to its enrichment and its report.
    let output = Deployment::output(&slow);
    assert!(
        output["created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|lane| lane["failed"] == true && lane["error"]["Error"] == "Sandbox.Timedout"),
        "{output:#}"
    );
    assert_eq!(output["enrich"]["output"]["done"], true, "{output:#}");
    let report = pipeline::report(store, "slow-run", false).await.unwrap();
    assert!(
        !report.failed.is_empty(),
        "the lane's unwritten assets: {report:#?}"
    );
    assert_eq!(
        store_item(&deployment.aws, "report/slow-run").await.0,
        "SUCCEEDED_WITH_FAILURES"
    );
    assert_eq!(shared::lease::holder(store).await.unwrap(), None);
    let linked_after_slow = deployment.linked_once();

    // The template's limits again, ConnectWise answering at once: the next run writes
    // what the stopped lane left, and nothing twice.
    engine
        .configure(
            &deployment.env,
            1.0,
            &json!({"bulk-create": {"timeoutSeconds": 300}}),
        )
        .await;
    assert!(
        cw.control()
            .answers_lost_at("POST /company/configurations/bulk")
            > 0
    );
    cw.control().lose_answers(&[]);
    let next = deployment.execute("next-run").await;
    assert_eq!(next["status"], "SUCCEEDED", "{next:#}");
    let report = pipeline::report(store, "next-run", false).await.unwrap();
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert!(report.counts.created > 0, "{report:#?}");
    // world::state fails on an asset with two configurations.
    assert_eq!(
        deployment.linked_once(),
        linked_after_slow + report.counts.created as usize
    );
    let stats = engine.stats().await;
    assert_eq!(
        stats["functions"]["bulk-create"]["timedOut"]
            .as_u64()
            .unwrap(),
        timed_out
    );
}

/// The `status` and `body` of an item the state machine recorded.
async fn store_item(aws: &aws_config::SdkConfig, key: &str) -> (String, String) {
    let item = aws_sdk_dynamodb::Client::new(aws)
        .get_item()
        .table_name(TABLE)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("v".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("nothing recorded at {key}"));
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    // The state machine's own records carry a `status` attribute; run-report's summary
    // carries it in its body.
    let body = text("body");
    let status = match text("status") {
        status if !status.is_empty() => status,
        _ => serde_json::from_str::<Value>(&body).unwrap()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    (status, body)
}
