//! A run's summary: recorded by the state machine's `RecordReport` (the `run-report`
//! function) at `report/{run_id}`, added to the list of recent runs, and published as
//! CloudWatch metrics (embedded metric format) for the dashboard and the alarms.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::report::{Counts, RunReport, RunStatus, SectionReport, report};
use super::run_trail::record_trail;
use crate::calls::ApiCalls;
use crate::clock::epoch_seconds;
use crate::enrichment::{self, EnrichReport};
use crate::error::PipelineError;
use crate::layout::{self, LeaseHolder};
use crate::lease;
use crate::settings::SyncSettings;
use crate::states::RecordReportInput;
use crate::store::{Store, StoreExt};

/// Summaries the list keeps.
pub const RECENT_RUNS: usize = 100;
/// The metrics' CloudWatch namespace.
pub const METRIC_NAMESPACE: &str = "LansweeperConnectWiseSync";

/// A run's outcome in a few numbers, recorded at `report/{run_id}` and kept long after
/// the run's own items expire: what `lscw runs` and an operator's alarms read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub status: RunStatus,
    pub dry_run: bool,
    pub assets: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub conflicts: u64,
    pub failed: u64,
    #[serde(default)]
    pub unmapped: u64,
    /// The retirement guard held this run's retirements (`lscw retire --approve`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guard_held: bool,
    /// The enrichment of the run, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<EnrichSummary>,
    /// Per site and company, when the run covered several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionReport>,
    pub api_calls: ApiCalls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<LeaseHolder>,
    /// When it was recorded (epoch seconds).
    pub recorded_at: u64,
    /// From taking the lease to the report, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    /// Why the run stopped, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    pub fn of(report: &RunReport) -> Self {
        Self {
            run_id: report.run_id.clone(),
            status: report.status,
            dry_run: report.dry_run,
            assets: report.assets,
            counts: report.counts,
            conflicts: report.conflicts.len() as u64,
            failed: report.failed.len() as u64,
            unmapped: report.unmapped.len() as u64,
            guard_held: report.guard.is_some(),
            enrichment: None,
            sections: if report.sections.len() > 1 {
                report.sections.clone()
            } else {
                Vec::new()
            },
            api_calls: report.api_calls,
            skipped_for: report.skipped_for.clone(),
            recorded_at: epoch_seconds(),
            duration_seconds: None,
            error: None,
        }
    }

    /// A run that ended without a report of its own: skipped for another's lease, or
    /// stopped by an error.
    fn ended_early(input: &RecordReportInput) -> Self {
        let status = if input.skipped_for.is_some() {
            RunStatus::Skipped
        } else {
            RunStatus::Failed
        };
        Self {
            run_id: input.run_id.to_string(),
            status,
            skipped_for: input.skipped_for.clone(),
            error: input.error.as_ref().map(failure_message),
            recorded_at: epoch_seconds(),
            ..Self::default()
        }
    }
}

/// The longest error message a summary keeps.
const ERROR_MAX: usize = 1_000;

/// What a caught error says: the function's `errorMessage` inside Step Functions'
/// `Cause` when there is one, else the cause or the error name as they are.
fn failure_message(error: &Value) -> String {
    let cause = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| (!cause.is_empty()).then(|| cause.to_string()))
        .or_else(|| {
            error
                .get("Error")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "the run failed".into());
    message.chars().take(ERROR_MAX).collect()
}

/// The enrichment's numbers, as a run's summary keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichSummary {
    pub assets: u64,
    pub written: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub full_read: bool,
    pub api_calls: ApiCalls,
}

impl EnrichSummary {
    pub fn of(report: &EnrichReport) -> Self {
        Self {
            assets: report.assets,
            written: report.written,
            unchanged: report.unchanged,
            failed: report.failed.len() as u64,
            full_read: report.full_read,
            api_calls: report.api_calls,
        }
    }
}

/// How long what a run leaves is kept: its summary, and its audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub report: Duration,
    pub audit: Duration,
}

impl Retention {
    /// Both kept for `ttl` (tests).
    pub fn both(ttl: Duration) -> Self {
        Self {
            report: ttl,
            audit: ttl,
        }
    }

    pub fn of(settings: &SyncSettings) -> Self {
        Self {
            report: settings.report_ttl,
            audit: settings.audit_ttl,
        }
    }
}

/// Puts the run's report together and records its summary, and the trail of what it
/// wrote (a run stopped by an error too: what it wrote before is in it).
pub async fn record_report<S: Store>(
    store: &S,
    input: &RecordReportInput,
    retention: &Retention,
) -> Result<RunSummary, PipelineError> {
    let ttl = retention.report;
    if input.skipped_for.is_none() {
        record_trail(store, &input.run_id, retention.audit).await?;
    }
    let mut summary = if input.skipped_for.is_some() || input.error.is_some() {
        RunSummary::ended_early(input)
    } else {
        // Boxed: the report's future is deep, and a handler awaits it inside the runtime's.
        let report = Box::pin(report(store, &input.run_id, false)).await?;
        RunSummary::of(&report)
    };
    // The state machine's enrichment runs under the sync's run id, before this step.
    summary.enrichment = enrichment::recorded(store, &input.run_id)
        .await?
        .as_ref()
        .map(EnrichSummary::of);
    // The run holds the sync's lease until its last write and the enrichment's after it:
    // the earlier start of the two is the run's.
    let mut started_at = None;
    for held_lease in [lease::SYNC, lease::ENRICHMENT] {
        if let Some(held) = held_lease.holder(store).await?
            && held.run_id == *input.run_id
        {
            started_at = Some(started_at.map_or(held.started_at, |s: u64| s.min(held.started_at)));
        }
    }
    if let Some(started_at) = started_at {
        summary.duration_seconds = Some(summary.recorded_at.saturating_sub(started_at));
    }
    store
        .put(&layout::run_summary(&input.run_id), &summary, ttl)
        .await?;
    let mut recent = recent_runs(store).await?;
    recent.retain(|other| other.run_id != summary.run_id);
    // An index an earlier version wrote may hold sections: dropped from every entry.
    for entry in &mut recent {
        entry.sections.clear();
    }
    // The index keeps each run's numbers, not its sections (they stay in the run's own
    // summary): its size is bounded by the runs it keeps, whatever the clients.
    recent.push(RunSummary {
        sections: Vec::new(),
        ..summary.clone()
    });
    let excess = recent.len().saturating_sub(RECENT_RUNS);
    recent.drain(..excess);
    store.put(layout::RECENT_RUNS, &recent, ttl).await?;
    tracing::info!(run_id = %input.run_id, status = ?summary.status, assets = summary.assets, created = summary.counts.created, modified = summary.counts.modified, failed = summary.failed, conflicts = summary.conflicts, "run recorded");
    Ok(summary)
}

/// The recent runs' summaries, oldest first, without their sections (the run's own
/// summary at [`layout::run_summary`] has them).
pub async fn recent_runs<S: Store>(store: &S) -> Result<Vec<RunSummary>, PipelineError> {
    Ok(store.get(layout::RECENT_RUNS).await?.unwrap_or_default())
}

impl RunSummary {
    /// One line of CloudWatch's embedded metric format: printed to a Lambda function's
    /// log, it becomes the run's metrics (what the dashboard draws and the alarms watch).
    pub fn metric_line(&self) -> String {
        let flag = |status: RunStatus| u64::from(self.status == status);
        let values: [(&str, &str, u64); 18] = [
            ("Assets", "Count", self.assets),
            ("Created", "Count", self.counts.created),
            ("Modified", "Count", self.counts.modified),
            ("Unchanged", "Count", self.counts.unchanged),
            ("Conflicts", "Count", self.conflicts),
            ("Failed", "Count", self.failed),
            ("Unmapped", "Count", self.unmapped),
            ("Retired", "Count", self.counts.retired),
            ("Reactivated", "Count", self.counts.reactivated),
            ("RetirementGuardHeld", "Count", u64::from(self.guard_held)),
            ("ConnectWiseRequests", "Count", self.api_calls.connectwise),
            ("LansweeperRequests", "Count", self.api_calls.lansweeper),
            ("RunsSucceeded", "Count", flag(RunStatus::Succeeded)),
            (
                "RunsWithFailures",
                "Count",
                flag(RunStatus::SucceededWithFailures),
            ),
            ("RunsSkipped", "Count", flag(RunStatus::Skipped)),
            ("RunsFailed", "Count", flag(RunStatus::Failed)),
            (
                "RunsCompleted",
                "Count",
                flag(RunStatus::Succeeded) + flag(RunStatus::SucceededWithFailures),
            ),
            (
                "DurationSeconds",
                "Seconds",
                self.duration_seconds.unwrap_or(0),
            ),
        ];
        let mut line = json!({
            "_aws": {
                "Timestamp": self.recorded_at * 1000,
                "CloudWatchMetrics": [{
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Service"]],
                    "Metrics": values
                        .iter()
                        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                        .collect::<Vec<Value>>(),
                }],
            },
            "Service": "lscw",
            "runId": self.run_id,
            "status": self.status,
        });
        for (name, _, value) in values {
            line[name] = json!(value);
        }
        line.to_string()
    }

    /// Every metric line of the run: [`RunSummary::metric_line`], then, when the run
    /// covered several sites, one line per site with the `Site` dimension.
    pub fn metric_lines(&self) -> Vec<String> {
        let mut lines = vec![self.metric_line()];
        let mut sites: Vec<&str> = self.sections.iter().map(|s| s.site.as_str()).collect();
        sites.dedup();
        for site in sites.into_iter().filter(|s| !s.is_empty()) {
            let of_site = self.sections.iter().filter(|s| s.site == site);
            let mut totals = [0u64; 7];
            for s in of_site {
                for (total, value) in totals.iter_mut().zip([
                    s.assets,
                    s.counts.created,
                    s.counts.modified,
                    s.counts.unchanged,
                    s.conflicts,
                    s.failed,
                    s.unmapped,
                ]) {
                    *total += value;
                }
            }
            let names = [
                "Assets",
                "Created",
                "Modified",
                "Unchanged",
                "Conflicts",
                "Failed",
                "Unmapped",
            ];
            let mut line = json!({
                "_aws": {
                    "Timestamp": self.recorded_at * 1000,
                    "CloudWatchMetrics": [{
                        "Namespace": METRIC_NAMESPACE,
                        "Dimensions": [["Service", "Site"]],
                        "Metrics": names.iter().map(|n| json!({"Name": n, "Unit": "Count"})).collect::<Vec<Value>>(),
                    }],
                },
                "Service": "lscw",
                "Site": site,
                "runId": self.run_id,
            });
            for (name, value) in names.iter().zip(totals) {
                line[*name] = json!(value);
            }
            lines.push(line.to_string());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_line_is_embedded_metric_format_with_the_summary_s_numbers() {
        let summary = RunSummary {
            run_id: "run-1".into(),
            status: RunStatus::SucceededWithFailures,
            assets: 10,
            counts: Counts {
                created: 4,
                modified: 3,
                unchanged: 1,
                ..Counts::default()
            },
            conflicts: 1,
            failed: 1,
            api_calls: ApiCalls {
                connectwise: 7,
                lansweeper: 2,
            },
            recorded_at: 1_700_000_000,
            duration_seconds: Some(42),
            ..RunSummary::default()
        };
        let line: Value = serde_json::from_str(&summary.metric_line()).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_u64);
        assert_eq!(directive["Namespace"], METRIC_NAMESPACE);
        // Every dimension and every metric the directive names is in the line.
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(line.get(dimension.as_str().unwrap()).is_some());
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_u64(), "{name}");
        }
        assert_eq!(line["Created"], 4);
        assert_eq!(line["Failed"], 1);
        assert_eq!(line["ConnectWiseRequests"], 7);
        assert_eq!(line["RunsWithFailures"], 1);
        assert_eq!(line["RunsSucceeded"], 0);
        assert_eq!(line["DurationSeconds"], 42);

        // A run over several sites adds one line per site.
        let sections = ["a", "a", "b"]
            .iter()
            .map(|site| super::SectionReport {
                site: (*site).into(),
                assets: 2,
                counts: Counts {
                    created: 1,
                    unchanged: 1,
                    ..Counts::default()
                },
                ..super::SectionReport::default()
            })
            .collect();
        let lines = RunSummary {
            sections,
            ..summary
        }
        .metric_lines();
        assert_eq!(lines.len(), 3);
        let site_a: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(site_a["Site"], "a");
        assert_eq!(site_a["Created"], 2);
        assert_eq!(
            site_a["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1],
            "Site"
        );
    }

    /// An MSP of `clients` clients, one site and company each, whose run `run_id` the
    /// steps recorded (nothing written, nothing failed).
    async fn stored_run(store: &crate::store::MemoryStore, run_id: &str, clients: usize) {
        use crate::layout::{FetchRecord, MatchRecord, SectionRecord, SiteFetch};
        let ttl = Duration::from_secs(600);
        let site = |n: usize| format!("site-{n:03}-with-a-long-enough-id");
        let fetched = FetchRecord {
            assets: 3 * clients as u64,
            sites: (0..clients)
                .map(|n| SiteFetch {
                    site: site(n),
                    assets: 3,
                    ..SiteFetch::default()
                })
                .collect(),
            ..FetchRecord::default()
        };
        let matched = MatchRecord {
            sections: (0..clients)
                .map(|n| SectionRecord {
                    site: site(n),
                    company: format!("Client Company Number {n:03}"),
                    assets: 3,
                    unchanged: 3,
                    ..SectionRecord::default()
                })
                .collect(),
            ..MatchRecord::default()
        };
        let ensured = crate::references::EnsureOutcome::default();
        store
            .put(&layout::fetch_record(run_id), &fetched, ttl)
            .await
            .unwrap();
        store
            .put(&layout::match_record(run_id), &matched, ttl)
            .await
            .unwrap();
        layout::write_ensured(store, run_id, &ensured, ApiCalls::default(), ttl)
            .await
            .unwrap();
    }

    /// Breaking it looks like: the index of recent runs grows with the clients until it
    /// is over the store's limit, and every run's report fails from then on (run 38 of
    /// an MSP of 40 clients did).
    #[tokio::test]
    async fn run_history_stays_bounded_at_50_clients_over_120_runs() {
        let store = crate::store::MemoryStore::new();
        let clients = 50;
        for n in 0..120 {
            let run_id = format!("run-{n:04}");
            stored_run(&store, &run_id, clients).await;
            let input = RecordReportInput {
                run_id: run_id.as_str().into(),
                ..RecordReportInput::default()
            };
            let summary = record_report(&store, &input, &Retention::both(Duration::from_secs(600)))
                .await
                .unwrap();
            assert_eq!(
                summary.sections.len(),
                clients,
                "the metrics see every client"
            );
            let own = store.raw_len(&layout::run_summary(&run_id)).unwrap();
            assert!(own < crate::store::MAX_VALUE_BYTES / 4, "{own} bytes");
        }
        let recent = recent_runs(&store).await.unwrap();
        assert_eq!(recent.len(), RECENT_RUNS);
        assert_eq!(recent.last().unwrap().run_id, "run-0119");
        assert!(recent.iter().all(|r| r.sections.is_empty()));
        let index = store.raw_len(layout::RECENT_RUNS).unwrap();
        assert!(index < crate::store::MAX_VALUE_BYTES / 2, "{index} bytes");
        let last: RunSummary = store
            .require(&layout::run_summary("run-0119"))
            .await
            .unwrap();
        assert_eq!(
            last.sections.len(),
            clients,
            "the run's own summary keeps them"
        );
    }

    /// Breaking it looks like: a skipped or failed run publishes no metric and is
    /// missing from `lscw runs`, so a revoked credential that fails every run goes quiet.
    #[tokio::test]
    async fn skipped_and_failed_runs_are_recorded_counted_and_listed() {
        let store = crate::store::MemoryStore::new();
        let ttl = Duration::from_secs(600);
        let holder = LeaseHolder {
            run_id: "run-busy".into(),
            started_at: 1,
            expires_at: 2,
        };
        let skipped = RecordReportInput {
            run_id: "run-skipped".into(),
            skipped_for: Some(holder.clone()),
            error: None,
        };
        let summary = record_report(&store, &skipped, &Retention::both(ttl))
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Skipped);
        assert_eq!(summary.skipped_for, Some(holder));
        let line: Value = serde_json::from_str(&summary.metric_line()).unwrap();
        assert_eq!(
            (line["RunsSkipped"].as_u64(), line["RunsFailed"].as_u64()),
            (Some(1), Some(0))
        );

        let cause = json!({"errorType": "Permanent", "errorMessage": "ensure-references: ConnectWise rejected the credentials"});
        let failed = RecordReportInput {
            run_id: "run-failed".into(),
            skipped_for: None,
            error: Some(json!({"Error": "Permanent", "Cause": cause.to_string()})),
        };
        let summary = record_report(&store, &failed, &Retention::both(ttl))
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Failed);
        assert_eq!(
            summary.error.as_deref(),
            Some("ensure-references: ConnectWise rejected the credentials")
        );
        let line: Value = serde_json::from_str(&summary.metric_line()).unwrap();
        assert_eq!(line["RunsFailed"], 1);
        assert_eq!(line["RunsCompleted"], 0, "a failed run did not complete");
        let recorded: RunSummary = store
            .require(&layout::run_summary("run-failed"))
            .await
            .unwrap();
        assert_eq!(recorded, summary);
        let listed: Vec<RunStatus> = recent_runs(&store)
            .await
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(listed, [RunStatus::Skipped, RunStatus::Failed]);
        let plain = failure_message(&json!({"Error": "States.Timeout"}));
        assert_eq!(plain, "States.Timeout");
    }

    /// Breaking it looks like: a deployment whose index an earlier version filled with
    /// sections stays over the limit, and every later run's report fails.
    #[tokio::test]
    async fn an_index_written_with_sections_is_shrunk_by_the_next_run() {
        let store = crate::store::MemoryStore::new();
        let ttl = Duration::from_secs(600);
        let clients = 50;
        stored_run(&store, "run-old", clients).await;
        let input = RecordReportInput {
            run_id: "run-old".into(),
            ..RecordReportInput::default()
        };
        let with_sections = record_report(&store, &input, &Retention::both(ttl))
            .await
            .unwrap();
        // As an earlier version kept them: 20 runs with their 50 sections each.
        let old: Vec<RunSummary> = (0..20)
            .map(|n| RunSummary {
                run_id: format!("run-old-{n}"),
                ..with_sections.clone()
            })
            .collect();
        store
            .put_raw(
                layout::RECENT_RUNS,
                serde_json::to_string(&old).unwrap(),
                ttl,
            )
            .await
            .unwrap();
        let before = store.raw_len(layout::RECENT_RUNS).unwrap();
        stored_run(&store, "run-new", clients).await;
        let input = RecordReportInput {
            run_id: "run-new".into(),
            ..RecordReportInput::default()
        };
        record_report(&store, &input, &Retention::both(ttl))
            .await
            .unwrap();
        let after = store.raw_len(layout::RECENT_RUNS).unwrap();
        assert!(after * 10 < before, "{before} bytes, then {after}");
        assert!(
            recent_runs(&store)
                .await
                .unwrap()
                .iter()
                .all(|r| r.sections.is_empty())
        );
    }
}
