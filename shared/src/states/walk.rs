//! The state machine's definition walked as Step Functions runs it, every Lambda Task's
//! payload read into its state's input type and answered with its output type: a path,
//! a key or a type that drifted apart from its state fails here, before a deployment.
//!
//! The walk follows what the run's data flow needs of the Amazon States Language:
//! `Parameters` (with `.$` paths), `ResultSelector`, `ResultPath`, `OutputPath`,
//! `ItemsPath`, `Choice` rules on `IsPresent` and `BooleanEquals`, `Map`, `Pass`, `Wait`
//! and `Catch`. JSONPath is the reference paths Step Functions allows there (`$.a.b[0]`,
//! `$$.Execution.Name`).
//!
//! Built for the tests of other crates too (the `contract` feature): a run on one machine
//! is held to [`task_order`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{
    BulkWriteInput, BulkWriteOutput, EnrichInput, EnrichOutput, EnsureReferencesOutput,
    FetchAssetsInput, FetchAssetsOutput, MatchOutput, RecordReportInput,
};
use crate::layout::LeaseHolder;

const EXECUTION: &str = "run-1796560573-f875";

fn definition() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/statemachine/sync.asl.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The value at a reference path, `None` where nothing is.
fn at(data: &Value, path: &str) -> Option<Value> {
    if path == "$$.Execution.Name" {
        return Some(json!(EXECUTION));
    }
    let rest = path.strip_prefix('$').expect("a path starts with $");
    let mut here = data.clone();
    for step in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match step.split_once('[') {
            Some((name, index)) => (
                name,
                Some(index.trim_end_matches(']').parse::<usize>().unwrap()),
            ),
            None => (step, None),
        };
        here = here.get(name)?.clone();
        if let Some(index) = index {
            here = here.get(index)?.clone();
        }
    }
    Some(here)
}

/// `Parameters` (or `ResultSelector`) applied to `data`: a key ending in `.$` takes the
/// value at its path, the rest as written.
fn template(parameters: &Value, data: &Value) -> Value {
    match parameters {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(key) => {
                        let path = value.as_str().unwrap();
                        let found = at(data, path)
                            .unwrap_or_else(|| panic!("{path} names nothing in {data}"));
                        out.insert(key.to_string(), found);
                    }
                    None => {
                        out.insert(key.clone(), template(value, data));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `result` put into `data` at `ResultPath` (absent: the result is the output; `null`:
/// the input goes on).
fn place(data: &Value, result_path: Option<&Value>, result: Value) -> Value {
    match result_path {
        None => result,
        Some(Value::Null) => data.clone(),
        Some(path) => {
            let path = path.as_str().unwrap().strip_prefix("$.").unwrap();
            let mut out = data.clone();
            let mut here = &mut out;
            let steps: Vec<&str> = path.split('.').collect();
            for step in &steps[..steps.len() - 1] {
                here = here
                    .as_object_mut()
                    .unwrap()
                    .entry(step.to_string())
                    .or_insert_with(|| json!({}));
            }
            here.as_object_mut()
                .unwrap()
                .insert(steps[steps.len() - 1].to_string(), result);
            out
        }
    }
}

fn choose(state: &Value, data: &Value) -> String {
    for rule in state["Choices"].as_array().unwrap() {
        let found = at(data, rule["Variable"].as_str().unwrap());
        let holds = if let Some(present) = rule.get("IsPresent") {
            found.is_some() == present.as_bool().unwrap()
        } else if let Some(wanted) = rule.get("BooleanEquals") {
            found.as_ref() == Some(wanted)
        } else {
            panic!("a Choice rule the walk does not read: {rule}")
        };
        if holds {
            return rule["Next"].as_str().unwrap().to_string();
        }
    }
    state["Default"].as_str().unwrap().to_string()
}

/// What each Lambda answers, by the function named in its Task (`${…Arn}`): the input
/// read into the state's type, the output written from the state's type.
struct Functions {
    invoked: BTreeMap<String, Vec<Value>>,
    /// Per Task state invoked: the types its payload was read into and its answer written
    /// from.
    typed: BTreeMap<String, (String, String)>,
    /// The Task state being invoked.
    state: String,
    /// The Task and Map states of the machine's top level, in the order they ran.
    ran: Vec<String>,
    /// The fetch finds the lease held; or the match fails.
    skipped: bool,
    fails_at: Option<&'static str>,
}

fn read<T: DeserializeOwned>(function: &str, payload: &Value) -> T {
    serde_json::from_value(payload.clone())
        .unwrap_or_else(|e| panic!("{function}'s payload {payload} is not its input: {e}"))
}

/// A type's own name, without its path.
fn short<T>() -> String {
    std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn answer<T: Serialize>(output: &T) -> Value {
    serde_json::to_value(output).unwrap()
}

impl Functions {
    fn types<I, O>(&mut self) {
        self.typed
            .insert(self.state.clone(), (short::<I>(), short::<O>()));
    }

    fn invoke(&mut self, function: &str, payload: &Value) -> Result<Value, Value> {
        self.invoked
            .entry(function.to_string())
            .or_default()
            .push(payload.clone());
        if self.fails_at == Some(function) {
            return Err(json!({"Error": "Permanent", "Cause": "{}"}));
        }
        let run_id = EXECUTION.to_string();
        Ok(match function {
            "FetchAssetsFunctionArn" => {
                self.types::<FetchAssetsInput, FetchAssetsOutput>();
                let input: FetchAssetsInput = read(function, payload);
                assert_eq!(input.run_id.as_deref(), Some(EXECUTION));
                answer(&FetchAssetsOutput {
                    run_id: run_id.into(),
                    skipped_for: self.skipped.then(|| LeaseHolder {
                        run_id: "run-other".into(),
                        started_at: 1,
                        expires_at: 2,
                    }),
                    ..FetchAssetsOutput::default()
                })
            }
            "EnsureReferencesFunctionArn" => {
                self.types::<FetchAssetsOutput, EnsureReferencesOutput>();
                let input: FetchAssetsOutput = read(function, payload);
                answer(&EnsureReferencesOutput {
                    run_id: input.run_id,
                    ..EnsureReferencesOutput::default()
                })
            }
            "MatchFunctionArn" => {
                self.types::<EnsureReferencesOutput, MatchOutput>();
                let input: EnsureReferencesOutput = read(function, payload);
                answer(&MatchOutput {
                    create_lanes: BulkWriteInput::lanes(&input.run_id, 2),
                    modify_lanes: BulkWriteInput::lanes(&input.run_id, 5),
                    run_id: input.run_id,
                    ..MatchOutput::default()
                })
            }
            "BulkCreateFunctionArn" | "BulkModifyFunctionArn" => {
                self.types::<BulkWriteInput, BulkWriteOutput>();
                let input: BulkWriteInput = read(function, payload);
                // Each lane takes two invocations: the first stops at its deadline.
                let next = input.next + input.lanes;
                answer(&BulkWriteOutput {
                    run_id: input.run_id,
                    lane: input.lane,
                    lanes: input.lanes,
                    done: next >= input.lane + 2 * input.lanes,
                    next,
                    ..BulkWriteOutput::default()
                })
            }
            "EnrichFunctionArn" => {
                self.types::<EnrichInput, EnrichOutput>();
                let input: EnrichInput = read(function, payload);
                // Three invocations: the quota makes the first wait, the second stops at
                // its deadline, the third ends.
                let next = input.next.unwrap_or(0) + 10;
                answer(&EnrichOutput {
                    run_id: input.run_id.unwrap(),
                    done: next >= 30,
                    next,
                    wait_seconds: if next == 10 { 42 } else { 0 },
                    ..EnrichOutput::default()
                })
            }
            "RunReportFunctionArn" => {
                self.types::<RecordReportInput, crate::pipeline::RunSummary>();
                let input: RecordReportInput = read(function, payload);
                assert_eq!(input.run_id, EXECUTION);
                answer(&crate::pipeline::RunSummary {
                    run_id: input.run_id.to_string(),
                    ..crate::pipeline::RunSummary::default()
                })
            }
            other => panic!("no function {other}"),
        })
    }
}

/// Runs `states` from `start` on `data`; answers the output and the state it ended in.
fn run(
    definition: &Value,
    start: &str,
    data: Value,
    functions: &mut Functions,
    top: bool,
) -> (Value, String) {
    let states = &definition["States"];
    let (mut name, mut data) = (start.to_string(), data);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 200, "the walk does not end");
        let state = &states[&name];
        let next = |state: &Value| state["Next"].as_str().map(str::to_string);
        let kind = state["Type"].as_str().unwrap();
        if top && matches!(kind, "Task" | "Map") && functions.ran.last() != Some(&name) {
            functions.ran.push(name.clone());
        }
        match kind {
            "Task" => {
                let resource = state["Resource"].as_str().unwrap();
                let outcome = if resource == "arn:aws:states:::lambda:invoke" {
                    let parameters = &state["Parameters"];
                    let payload = match parameters.get("Payload.$") {
                        Some(path) => at(&data, path.as_str().unwrap()).unwrap(),
                        None => template(&parameters["Payload"], &data),
                    };
                    let function = parameters["FunctionName"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("${")
                        .trim_end_matches('}');
                    functions.state.clone_from(&name);
                    functions
                        .invoke(function, &payload)
                        .map(|answer| json!({"Payload": answer, "StatusCode": 200}))
                } else {
                    // The leases' conditional deletes: their answer is never read.
                    Ok(json!({}))
                };
                match outcome {
                    Ok(result) => {
                        let result = match state.get("ResultSelector") {
                            Some(selector) => template(selector, &result),
                            None => result,
                        };
                        data = place(&data, state.get("ResultPath"), result);
                        if let Some(path) = state.get("OutputPath") {
                            data = at(&data, path.as_str().unwrap()).unwrap();
                        }
                    }
                    Err(error) => {
                        let catch = &state["Catch"][0];
                        data = place(&data, catch.get("ResultPath"), error);
                        name = catch["Next"].as_str().unwrap().to_string();
                        continue;
                    }
                }
            }
            "Pass" => {
                if let Some(parameters) = state.get("Parameters") {
                    let result = template(parameters, &data);
                    data = place(&data, state.get("ResultPath"), result);
                }
            }
            "Choice" => {
                name = choose(state, &data);
                continue;
            }
            "Wait" => {
                if let Some(path) = state.get("SecondsPath") {
                    let seconds = at(&data, path.as_str().unwrap()).unwrap();
                    assert!(seconds.as_u64().is_some(), "Wait reads a number: {seconds}");
                }
            }
            "Map" => {
                let items = at(&data, state["ItemsPath"].as_str().unwrap()).unwrap();
                let processor = state
                    .get("ItemProcessor")
                    .or_else(|| state.get("Iterator"))
                    .unwrap();
                let start = processor["StartAt"].as_str().unwrap();
                let results: Vec<Value> = items
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| run(processor, start, item.clone(), functions, false).0)
                    .collect();
                data = place(&data, state.get("ResultPath"), Value::Array(results));
            }
            "Succeed" | "Fail" => return (data, name),
            other => panic!("a state type the walk does not run: {other}"),
        }
        match next(state) {
            Some(following) => name = following,
            None if state["End"] == true => return (data, name),
            None => panic!("{name} has no Next and does not end"),
        }
    }
}

fn walk(skipped: bool, fails_at: Option<&'static str>) -> (String, Functions) {
    let definition = definition();
    let mut functions = Functions {
        invoked: BTreeMap::new(),
        typed: BTreeMap::new(),
        state: String::new(),
        ran: Vec::new(),
        skipped,
        fails_at,
    };
    let start = definition["StartAt"].as_str().unwrap().to_string();
    let (_, ended) = run(&definition, &start, json!({}), &mut functions, true);
    (ended, functions)
}

/// The Task and Map states a whole run passes through, in order (a state run several
/// times in a row named once): what a run on one machine is held to.
pub fn task_order() -> Vec<String> {
    let (ended, functions) = walk(false, None);
    assert_eq!(ended, "Done");
    functions.ran
}

/// Breaking it looks like: a state machine path that names a key the step no longer
/// answers (`$.fetch.output.runID`), a payload with a key its step refuses, a lane
/// handed on without where it goes next, or an enrichment that never waits or ends.
#[cfg(test)]
#[test]
fn every_state_hands_the_next_what_its_type_reads() {
    let (ended, functions) = walk(false, None);
    assert_eq!(ended, "Done");
    let invoked = functions.invoked;
    let count = |function: &str| invoked.get(function).map_or(0, Vec::len);
    assert_eq!(count("FetchAssetsFunctionArn"), 1);
    assert_eq!(count("EnsureReferencesFunctionArn"), 1);
    assert_eq!(count("MatchFunctionArn"), 1);
    // Two lanes of creations and four of modifications, two invocations each, the second
    // going on where the first stopped.
    assert_eq!(count("BulkCreateFunctionArn"), 4);
    assert_eq!(count("BulkModifyFunctionArn"), 8);
    let lane: Vec<u64> = invoked["BulkCreateFunctionArn"]
        .iter()
        .map(|p| p["next"].as_u64().unwrap())
        .collect();
    assert_eq!(lane, vec![0, 2, 1, 3]);
    assert_eq!(count("EnrichFunctionArn"), 3);
    assert_eq!(count("RunReportFunctionArn"), 1);
}

/// The skipped run and the failed run reach the report with what its type reads.
#[cfg(test)]
#[test]
fn a_skipped_and_a_failed_run_are_recorded_with_what_the_report_reads() {
    let (ended, Functions { invoked, .. }) = walk(true, None);
    assert_eq!(ended, "Skipped");
    let recorded: RecordReportInput = read("report", &invoked["RunReportFunctionArn"][0]);
    assert_eq!(recorded.skipped_for.unwrap().run_id, "run-other");
    assert!(!invoked.contains_key("EnsureReferencesFunctionArn"));

    for failing in [
        "FetchAssetsFunctionArn",
        "EnsureReferencesFunctionArn",
        "MatchFunctionArn",
        "EnrichFunctionArn",
    ] {
        let (ended, Functions { invoked, .. }) = walk(false, Some(failing));
        assert_eq!(ended, "Failed", "{failing}");
        let recorded: RecordReportInput = read("report", &invoked["RunReportFunctionArn"][0]);
        assert_eq!(recorded.error.unwrap()["Error"], "Permanent", "{failing}");
    }
    // A lane that fails ends alone; the run goes on to its report.
    let (ended, Functions { invoked, .. }) = walk(false, Some("BulkModifyFunctionArn"));
    assert_eq!(ended, "Done");
    assert_eq!(invoked["BulkModifyFunctionArn"].len(), 4, "each lane once");
    assert_eq!(invoked["EnrichFunctionArn"].len(), 3);
}

/// Breaking it looks like: the manual's table of the run's contract naming a type a Task
/// no longer reads or answers, or missing a Task the state machine runs.
#[cfg(test)]
#[test]
fn the_table_of_tasks_is_what_the_state_machine_runs() {
    let mut typed = BTreeMap::new();
    for (skipped, fails_at) in [
        (false, None),
        (true, None),
        (false, Some("FetchAssetsFunctionArn")),
    ] {
        typed.extend(walk(skipped, fails_at).1.typed);
    }
    let tasks: BTreeMap<String, (String, String)> = super::TASKS
        .iter()
        .map(|t| {
            (
                t.state.to_string(),
                (t.input.to_string(), t.output.to_string()),
            )
        })
        .collect();
    assert_eq!(typed, tasks);
    let definition = definition();
    let text = definition.to_string();
    for task in super::TASKS {
        assert!(
            text.contains(&format!("\"{}\"", task.state))
                && text.contains(&format!("${{{}}}", task.function_arn)),
            "{task:?}"
        );
    }
}
