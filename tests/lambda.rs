//! The sync through the real Lambda binaries: `cargo lambda watch` serves the six
//! functions, invoked in the state machine's order, against both simulators and moto's
//! DynamoDB and Secrets Manager on loopback; then the state machine definition runs in
//! moto's Step Functions with the functions' real outputs replayed.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::{Value, json};
use shared::pipeline::{self, RunReport};
use shared::store::DynamoStore;
use simulators::connectwise::CONFIGURATIONS;
use simulators::lansweeper::SiteSpec;

use lscw_tests::aws::{
    aws_env, aws_json, create_secret, create_table, enable_state_machine_execution, invoke,
    queue_lambda_results, run_execution, sdk_config, start_moto, start_watch,
};
use lscw_tests::{cw_sim_credentials, start_cw};

const TABLE: &str = "lscw-sync-test";

/// One run through the functions in state-machine order; answers the run report read
/// back from DynamoDB.
async fn run_functions(
    watch: &lscw_tests::aws::Service,
    store: &DynamoStore,
) -> (RunReport, Vec<Value>, Value) {
    let fetched = invoke(watch, "fetch-assets", &json!({}))
        .await
        .expect("fetch-assets");
    run_functions_after(watch, store, fetched).await
}

/// The rest of a run whose fetch answered `fetched`, up to its report; then the lease is
/// given up, as the state machine's ReleaseLease state does.
async fn run_functions_after(
    watch: &lscw_tests::aws::Service,
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
    let ensured = invoke(watch, "ensure-references", &fetched)
        .await
        .expect("ensure-references");
    outputs.push(ensured.clone());
    let matched = invoke(watch, "match", &ensured).await.expect("match");
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
                let output = invoke(watch, function, &input).await.expect(function);
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
    let summary = invoke(watch, "run-report", &json!({"runId": run_id}))
        .await
        .expect("run-report");
    assert_eq!(summary["status"], json!(report.status), "{summary}");
    assert_eq!(summary["created"], report.counts.created);
    assert_eq!(summary["failed"], report.failed.len());
    assert_eq!(summary["conflicts"], report.conflicts.len());
    // What run-report printed for CloudWatch: the run's numbers in embedded metric format.
    let log = watch.log();
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

/// Enrichment through its function under a run of its own, following the continuation
/// as the state machine does; the enrichment's lease is given up at the end.
async fn enrich_until_done(
    watch: &lscw_tests::aws::Service,
    store: &DynamoStore,
    run_id: &str,
    outputs: &mut Vec<Value>,
) -> Value {
    let mut input = json!({"runId": run_id});
    loop {
        let output = invoke(watch, "ticket-agreement-enrich", &input)
            .await
            .expect("ticket-agreement-enrich");
        outputs.push(output.clone());
        if output["done"] == true {
            assert!(
                shared::lease::ENRICHMENT
                    .release(store, run_id)
                    .await
                    .unwrap()
            );
            return output;
        }
        // The state machine's WaitForLansweeperQuota.
        if let Some(seconds) = output["waitSeconds"].as_u64() {
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
        }
        input = json!({"runId": output["runId"], "next": output["next"]});
    }
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one deployment's life under cargo lambda watch: its services start once, so its checks run in one test"
)]
async fn the_functions_sync_end_to_end_and_a_second_run_writes_nothing() {
    let moto = start_moto();
    let aws = sdk_config(&moto).await;
    create_table(&aws, TABLE).await;

    // An MSP's estate: three sites mapped to four clients' companies (the stored mapping).
    let (mut tenant, sites) = simulators::scenario::estate(&SiteSpec {
        seed: 5,
        assets: 300,
    })
    .unwrap();
    lscw_tests::add_foreign_custom_field(&mut tenant);
    let cw = start_cw(tenant).await;
    let ls = simulators::lansweeper::LansweeperSimulator::start_sites(
        sites,
        lscw_tests::ls_sim_options(),
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let estate_assets: usize = ls
        .site_ids()
        .iter()
        .map(|id| ls.with_site_id(id, |s| s.data.assets.len()).unwrap())
        .sum();
    let hostile = r#"x" or id>0 or name="y"#;
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

    let mut secret = cw_sim_credentials(&cw);
    secret["LS_TOKEN"] = json!(simulators::lansweeper::TOKEN);
    secret["LS_SITE_ID"] = json!(ls.site_id());
    secret["LS_API_URL"] = json!(ls.api_url());
    let secret_arn = create_secret(&aws, "lscw/credentials", &secret).await;

    let mut env = aws_env(&moto);
    env.push(("SECRET_ARN", secret_arn));
    env.push(("SYNC_TABLE", TABLE.into()));
    env.push(("CW_TARGET_COMPANY", "BlueLightCo".into()));
    // The functions' Lansweeper clock runs as fast as the simulator's.
    env.push(("LS_QUOTA_SPEED", lscw_tests::LS_SPEED.to_string()));
    env.push(("RUST_LOG", "info".into()));
    // As the template's LoggingConfig sets it in Lambda.
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    let watch = start_watch(&env);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), TABLE);
    shared::mapping::save(&store, lscw_tests::world::estate_mapping(), 0)
        .await
        .unwrap();

    // Two runs started together (the schedule firing while a run is still going): one
    // takes the lease and runs, the other ends at once as skipped and writes nothing.
    let (input_a, input_b) = (json!({"runId": "run-a"}), json!({"runId": "run-b"}));
    let (a, b) = tokio::join!(
        invoke(&watch, "fetch-assets", &input_a),
        invoke(&watch, "fetch-assets", &input_b)
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
    let skipped_report = pipeline::report(&store, skipped["runId"].as_str().unwrap(), false)
        .await
        .unwrap();
    assert_eq!(
        skipped_report.skipped_for.unwrap().run_id,
        winner["runId"].as_str().unwrap()
    );
    let renewed = invoke(&watch, "ensure-references", &winner).await;
    assert!(
        renewed.is_ok(),
        "the winner renews its own lease: {renewed:?}"
    );
    let renewed_by_loser = skipped.clone();
    let refused = invoke(&watch, "ensure-references", &renewed_by_loser)
        .await
        .unwrap_err();
    assert!(
        refused.contains("Permanent") && refused.contains("lost its lease"),
        "{refused}"
    );

    let (first, mut first_outputs, first_summary) =
        run_functions_after(&watch, &store, winner).await;
    let keys_linked = cw.with_tenant(|t| {
        let mut keys: Vec<String> = t
            .records("configurations")
            .filter_map(|c| {
                c["customFields"].as_array()?.iter().find_map(|f| {
                    (f["caption"] == "ls_asset_id")
                        .then(|| f["value"].as_str().map(str::to_lowercase))
                        .flatten()
                })
            })
            .collect();
        let all = keys.len();
        keys.sort();
        keys.dedup();
        (all, keys.len())
    });
    assert_eq!(
        keys_linked.0, keys_linked.1,
        "no asset has two configurations"
    );
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
    let configurations: Vec<Value> = cw.with_tenant(|t| {
        t.records("configurations")
            .map(|r| t.render(&CONFIGURATIONS, r, ""))
            .collect()
    });
    let linked = |key: &str| -> Vec<Value> {
        configurations
            .iter()
            .filter(|c| {
                c["customFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["caption"] == "ls_asset_id" && f["value"] == key)
            })
            .cloned()
            .collect()
    };
    let hostile_config = linked("hostile-asset");
    assert_eq!(hostile_config.len(), 1);
    assert_eq!(hostile_config[0]["name"], hostile);
    assert_eq!(hostile_config[0]["location"]["name"], hostile);
    assert_eq!(hostile_config[0]["company"]["identifier"], "BlueLightCo");
    for conflict in &first.conflicts {
        assert!(
            linked(&conflict.asset_key).is_empty(),
            "conflict {} was written",
            conflict.asset_key
        );
    }

    // A person edits a configuration by hand; Lansweeper changes the asset's address.
    let key = ls.with_site(|site| {
        site.data.assets[8]["assetBasicInfo"]["ipAddress"] = json!("10.77.77.77");
        site.data.assets[8]["key"].as_str().unwrap().to_string()
    });
    let edited = linked(&key)[0]["id"].as_i64().unwrap();
    cw.with_tenant(|tenant| {
        let mut body = tenant.get("configurations", edited).unwrap().clone();
        body["notes"] = json!("keep me");
        let mut fields = body["customFields"].as_array().unwrap().clone();
        fields.push(json!({"id": 9, "value": "Jane at Dell"}));
        body["customFields"] = Value::Array(fields);
        tenant.replace(&CONFIGURATIONS, edited, &body).unwrap();
    });

    cw.control().reset_counts();
    let (second, _, _) = run_functions(&watch, &store).await;
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

    cw.control().reset_counts();
    let (third, _, third_summary) = run_functions(&watch, &store).await;
    assert_eq!(
        third_summary["status"], "SUCCEEDED_WITH_FAILURES",
        "its conflicts remain"
    );
    assert_eq!(
        cw.control().writes(),
        0,
        "a run over unchanged data writes nothing"
    );
    assert_eq!((third.counts.created, third.counts.modified), (0, 0));

    // Enrichment through its function, looping on the continuation as the state machine does.
    let enriched = enrich_until_done(&watch, &store, "enrich-1", &mut first_outputs).await;
    // The state machine's last Lambda state records the report.
    first_outputs.push(first_summary.clone());
    assert!(enriched["edits"].as_u64().unwrap() > 100, "{enriched}");
    // Several assets' edits a request (aliased `editAsset`s).
    let edits = ls.control().count("POST graphql:editAsset");
    let planned = enriched["edits"].as_u64().unwrap();
    assert!(
        edits < planned && edits >= planned.div_ceil(20),
        "{edits} requests for {planned} edits"
    );
    let again = enrich_until_done(&watch, &store, "enrich-2", &mut Vec::new()).await;
    assert_eq!(again["edits"], 0, "a second enrichment writes nothing");
    assert_eq!(ls.control().count("POST graphql:editAsset"), edits);
    assert_eq!(ls.rate_refusals(), 0);

    // The state machine definition, executed by moto's Step Functions with the functions'
    // real outputs replayed: the Maps iterate over the real batch groups.
    enable_state_machine_execution(&moto).await;
    let mut definition = std::fs::read_to_string(
        lscw_tests::aws::workspace_root().join("infra/statemachine/sync.asl.json"),
    )
    .unwrap();
    for function in [
        "FetchAssets",
        "EnsureReferences",
        "Match",
        "BulkCreate",
        "BulkModify",
        "Enrich",
        "RunReport",
    ] {
        definition = definition.replace(
            &format!("${{{function}FunctionArn}}"),
            &format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
        );
    }
    definition = definition.replace("${SyncTableName}", TABLE);
    assert!(!definition.contains("${"), "every substitution is known");
    let machine = aws_json(
        &moto,
        "states",
        "AWSStepFunctions.CreateStateMachine",
        &json!({"name": "sync", "definition": definition, "roleArn": "arn:aws:iam::123456789012:role/sync"}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let replay: Vec<String> = first_outputs.iter().map(Value::to_string).collect();
    queue_lambda_results(&moto, &replay).await;
    // The run's lease, as its FetchAssets would have taken it: released by ReleaseLease.
    assert_eq!(
        shared::lease::acquire(&store, "replayed-run")
            .await
            .unwrap(),
        None
    );
    let execution = run_execution(&moto, &machine, "replayed-run").await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution:#}");
    assert_eq!(
        shared::lease::holder(&store).await.unwrap(),
        None,
        "the report state gave the lease up"
    );
    let output: Value = serde_json::from_str(execution["output"].as_str().unwrap()).unwrap();
    let matched = &first_outputs[2];
    assert_eq!(output["runId"], matched["runId"]);
    assert_eq!(
        output["created"].as_array().unwrap().len(),
        matched["createLanes"].as_array().unwrap().len()
    );
    assert_eq!(
        output["modified"].as_array().unwrap().len(),
        matched["modifyLanes"].as_array().unwrap().len()
    );
    assert_eq!(output["enrich"]["output"]["done"], true);
    assert_eq!(output["report"]["output"], first_summary);
    let recorded = store_item(
        &aws,
        &format!("report/{}", matched["runId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        recorded.0, "SUCCEEDED_WITH_FAILURES",
        "the first run had conflicts"
    );
    let recorded: Value = serde_json::from_str(&recorded.1).unwrap();
    assert_eq!(recorded["runId"], matched["runId"]);
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

    // A group that fails for good (its function fails past its retries) fails alone: the
    // Map tolerates it, and the run goes on to enrichment and its report.
    let mut tolerated: Vec<String> = first_outputs.iter().map(Value::to_string).collect();
    tolerated[3] = "x".repeat(6_500_000);
    queue_lambda_results(&moto, &tolerated).await;
    assert_eq!(
        shared::lease::acquire(&store, "tolerated-run")
            .await
            .unwrap(),
        None
    );
    let tolerated_execution = run_execution(&moto, &machine, "tolerated-run").await;
    assert_eq!(
        tolerated_execution["status"], "SUCCEEDED",
        "{tolerated_execution:#}"
    );
    let output: Value =
        serde_json::from_str(tolerated_execution["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["report"]["output"]["runId"], first_summary["runId"]);
    assert_eq!(output["enrich"]["output"]["done"], true);

    // Another run holds the lease: the execution ends as skipped (not failed), records
    // the holder and leaves its lease alone.
    assert_eq!(
        shared::lease::acquire(&store, "busy-run").await.unwrap(),
        None
    );
    let mut skipped_fetch = first_outputs[0].clone();
    skipped_fetch["runId"] = json!("skipped-run");
    skipped_fetch["staged"] = json!(0);
    skipped_fetch["skippedFor"] = json!({"runId": "busy-run", "startedAt": 1, "expiresAt": 2});
    // RecordSkipped invokes run-report with the holder: the real function records the
    // run and counts it (its answer is what moto hands the state machine).
    let recorded_skip = invoke(
        &watch,
        "run-report",
        &json!({"runId": "skipped-run", "skippedFor": skipped_fetch["skippedFor"]}),
    )
    .await
    .unwrap();
    let skip_metrics = watch
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["runId"] == "skipped-run" && line.get("_aws").is_some())
        .expect("run-report published the skipped run's metrics");
    assert_eq!(skip_metrics["RunsSkipped"], 1, "{skip_metrics}");
    queue_lambda_results(
        &moto,
        &[skipped_fetch.to_string(), recorded_skip.to_string()],
    )
    .await;
    let skipped_execution = run_execution(&moto, &machine, "skipped-run").await;
    assert_eq!(
        skipped_execution["status"], "SUCCEEDED",
        "{skipped_execution:#}"
    );
    let recorded = store_item(&aws, "report/skipped-run").await;
    assert_eq!(recorded.0, "SKIPPED");
    assert!(recorded.1.contains("busy-run"), "{}", recorded.1);
    assert_eq!(
        shared::lease::holder(&store).await.unwrap().unwrap().run_id,
        "busy-run"
    );
    assert!(shared::lease::release(&store, "busy-run").await.unwrap());

    // A function that fails drives the execution through its Catch: the failure is recorded.
    assert_eq!(
        shared::lease::acquire(&store, "failing-run").await.unwrap(),
        None
    );
    let oversized = "x".repeat(6_500_000);
    // RecordFailure invokes run-report with the error Step Functions caught.
    let caught = json!({"Error": "States.DataLimitExceeded", "Cause": "The state/task 'Match' returned a result with a size exceeding the maximum number of bytes service limit."});
    let recorded_failure = invoke(
        &watch,
        "run-report",
        &json!({"runId": "failing-run", "error": caught}),
    )
    .await
    .unwrap();
    queue_lambda_results(
        &moto,
        &[
            first_outputs[0].to_string(),
            first_outputs[1].to_string(),
            oversized,
            recorded_failure.to_string(),
        ],
    )
    .await;
    let failed = run_execution(&moto, &machine, "failing-run").await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let recorded = store_item(&aws, "report/failing-run").await;
    assert_eq!(recorded.0, "FAILED");
    assert_eq!(
        shared::lease::holder(&store).await.unwrap(),
        None,
        "a failed run gives its lease up too"
    );
    assert!(
        recorded.1.contains("exceeding the maximum number of bytes"),
        "the caught error is recorded: {}",
        &recorded.1[..recorded.1.len().min(300)]
    );
    let failure_metrics = watch
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["runId"] == "failing-run" && line.get("_aws").is_some())
        .expect("run-report published the failed run's metrics");
    assert_eq!(failure_metrics["RunsFailed"], 1, "{failure_metrics}");

    // A failing step logs its error once, as JSON, with its run id and step.
    let refused = invoke(
        &watch,
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
    let log = watch.log();
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
    assert!(
        log.contains("fetch-assets"),
        "the functions ran under watch: {log}"
    );
    assert!(
        !log.contains(simulators::connectwise::PRIVATE_KEY)
            && !log.contains(simulators::lansweeper::TOKEN),
        "a secret in the logs"
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
