//! `lscw revert RUN [--dry-run] [--approve]`, and a run's audit trail as `lscw report`
//! prints it.

use shared::environment::Environment;
use shared::operator::EnrichRevert;
use shared::operator::Revert;
use shared::pipeline::RunReport;
use shared::store::Store;
use shared::trail::{self, Action, System, Trail, TrailEntry};

use crate::store::AnyStore;

/// Reverts what `run_id` wrote (to ConnectWise, and the enrichment's edits to
/// Lansweeper when the run has them), or, in a dry run, says what it would write.
pub async fn run(env: &Environment<AnyStore>, run_id: &str, approve: bool) -> anyhow::Result<()> {
    let mut reverted = false;
    if trail::load(&env.store, run_id, System::ConnectWise)
        .await?
        .is_some()
    {
        let revert = shared::operator::revert_run(
            &env.connectwise,
            &env.store,
            &env.settings,
            run_id,
            approve,
        )
        .await?;
        print(&revert);
        reverted = true;
    }
    if let Some(revert) =
        shared::operator::revert_enrichment(&env.lansweeper, &env.store, &env.settings, run_id)
            .await?
    {
        print_enrichment(&revert);
        reverted = true;
    }
    anyhow::ensure!(
        reverted,
        "no trail of run {run_id}: it wrote nothing, or is older than the audit retention ({} days, AUDIT_RETENTION_DAYS)",
        env.settings.audit_ttl.as_secs() / 86_400
    );
    Ok(())
}

/// Lines shown of each list; the run's report holds them all.
const SHOWN: usize = 10;

/// Fields shown of each configuration going back.
const FIELDS_SHOWN: usize = 3;

fn print(revert: &Revert) {
    if let Some(by) = &revert.already_by {
        println!(
            "Run {} was reverted already (run {by}): nothing written",
            revert.run_id
        );
        return;
    }
    let heading = if revert.dry_run {
        format!("Revert of run {} (dry run: nothing written)", revert.run_id)
    } else {
        format!(
            "Revert of run {} (run {})",
            revert.run_id, revert.revert_run_id
        )
    };
    println!("{heading}");
    let (verb, retire_verb) = if revert.dry_run {
        ("would go", "would be retired")
    } else {
        ("went", "retired")
    };
    println!(
        "  {} configurations {verb} back to their values before the run, {} created by it {retire_verb}, {} with nothing left to take back",
        revert.restore.len(),
        revert.retire.len(),
        revert.unchanged
    );
    for item in revert.restore.iter().take(SHOWN / 2) {
        let mut fields: Vec<String> = item
            .unmatched_fields
            .iter()
            .take(FIELDS_SHOWN)
            .map(|d| {
                format!(
                    "{} {} → {}",
                    d.field,
                    trail::shown(d.current.as_deref()),
                    trail::shown(
                        Some(&d.desired)
                            .filter(|v| !v.is_empty())
                            .map(String::as_str)
                    )
                )
            })
            .collect();
        let more = item.unmatched_fields.len().saturating_sub(FIELDS_SHOWN);
        if more > 0 {
            fields.push(format!("{more} more fields"));
        }
        println!(
            "    back: {} (configuration {}): {}",
            item.name,
            item.configuration_id,
            fields.join("; ")
        );
    }
    for item in revert.retire.iter().take(SHOWN / 2) {
        println!(
            "    retired: {} (configuration {}), created by the run",
            item.name, item.configuration_id
        );
    }
    if !revert.changed_since.is_empty() {
        println!(
            "  {} configurations changed since the run (those fields left as they are):",
            revert.changed_since.len()
        );
        for changed in revert.changed_since.iter().take(SHOWN) {
            println!("    {}: {}", changed.name, changed.reason);
        }
    }
    if let Some(guard) = revert.guard.as_ref().filter(|_| revert.dry_run) {
        println!("  the retirement guard: {guard} (--approve retires them)");
    }
    if !revert.failed.is_empty() {
        println!("  {} failed:", revert.failed.len());
        for failed in revert.failed.iter().take(SHOWN) {
            println!("    {}: {}", failed.asset_key, failed.reason);
        }
    }
    if !revert.dry_run {
        println!("  lscw report {} shows it in full", revert.revert_run_id);
    }
}

fn print_enrichment(revert: &EnrichRevert) {
    if let Some(by) = &revert.already_by {
        println!("Its enrichment was reverted already (run {by}): no Lansweeper value written");
        return;
    }
    let verb = if revert.dry_run { "would go" } else { "went" };
    let fields: usize = revert.restore.iter().map(|e| e.values.len()).sum();
    println!(
        "Revert of the enrichment of run {}{}",
        revert.run_id,
        if revert.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    println!(
        "  {fields} Lansweeper values of {} assets {verb} back to their values before the run, {} assets with nothing left to take back",
        revert.restore.len(),
        revert.unchanged
    );
    for edit in revert.restore.iter().take(SHOWN / 2) {
        let fields: Vec<String> = edit
            .before
            .iter()
            .zip(&edit.values)
            .take(FIELDS_SHOWN)
            .map(|((name, now), (_, back))| {
                format!(
                    "{name} {} → {}",
                    trail::shown(Some(now.as_str()).filter(|v| !v.is_empty())),
                    trail::shown(Some(back.as_str()).filter(|v| !v.is_empty()))
                )
            })
            .collect();
        let name = if edit.name.is_empty() {
            &edit.asset_key
        } else {
            &edit.name
        };
        println!("    back: {name}: {}", fields.join("; "));
    }
    if !revert.changed_since.is_empty() {
        println!(
            "  {} assets changed since the run (those fields left as they are):",
            revert.changed_since.len()
        );
        for changed in revert.changed_since.iter().take(SHOWN) {
            println!("    {}: {}", changed.asset_key, changed.reason);
        }
    }
    if !revert.failed.is_empty() {
        println!("  {} failed:", revert.failed.len());
        for failed in revert.failed.iter().take(SHOWN) {
            println!("    {}: {}", failed.asset_key, failed.reason);
        }
    }
}

/// The trails a run left (its writes to ConnectWise, its enrichment's to Lansweeper).
pub async fn trails<S: Store>(store: &S, run_id: &str) -> anyhow::Result<Vec<Trail>> {
    let mut found = Vec::new();
    for system in [System::ConnectWise, System::Lansweeper] {
        if let Some(trail) = trail::load(store, run_id, system).await? {
            found.push(trail);
        }
    }
    Ok(found)
}

/// A run's report put together from its trails alone, once its own records expired:
/// the configurations it created, modified, retired and reactivated, nothing it did not
/// write (the assets it left unchanged, its conflicts and failures are not in a trail).
pub fn report_from_trails(run_id: &str, trails: &[Trail]) -> RunReport {
    let mut report = RunReport {
        run_id: run_id.to_string(),
        ..RunReport::default()
    };
    let written = trails
        .iter()
        .filter(|trail| trail.system == System::ConnectWise)
        .flat_map(|trail| &trail.entries);
    for entry in written {
        let count = match entry.action {
            Action::Created => &mut report.counts.created,
            Action::Modified => &mut report.counts.modified,
            Action::Retired => &mut report.counts.retired,
            Action::Reactivated => &mut report.counts.reactivated,
        };
        *count += 1;
    }
    report
}

/// What [`report_from_trails`] knows, printed.
pub fn print_trail_counts(report: &RunReport) {
    let counts = &report.counts;
    println!("  created     {:>6}", counts.created);
    println!("  modified    {:>6}", counts.modified);
    println!("  retired     {:>6}", counts.retired);
    println!("  reactivated {:>6}", counts.reactivated);
}

/// A trail as `lscw report` prints it: per configuration, each field before → after.
pub fn print_trail(trail: &Trail) {
    let what = match trail.system {
        System::ConnectWise => "configurations",
        System::Lansweeper => "Lansweeper assets",
    };
    let reverts = trail
        .reverts
        .as_ref()
        .map(|r| format!(" (the revert of run {r})"))
        .unwrap_or_default();
    println!(
        "Trail{reverts}: {} {what} written in {}",
        trail.entries.len(),
        trail.system.label()
    );
    for entry in trail.entries.iter().take(SHOWN * 5) {
        println!("  {}", heading(entry));
        for change in &entry.fields {
            println!(
                "      {}: {} → {}",
                change.field,
                trail::shown(change.before.as_deref()),
                trail::shown(change.after.as_deref())
            );
        }
    }
    if trail.entries.len() > SHOWN * 5 {
        println!(
            "  … and {} more (--json or --html for all)",
            trail.entries.len() - SHOWN * 5
        );
    }
}

/// One entry's line: what was done to which configuration or asset.
pub fn heading(entry: &TrailEntry) -> String {
    let id = match entry.configuration_id {
        Some(id) => format!(" (configuration {id})"),
        // An enriched asset's page, as Lansweeper gave it with the asset: its address
        // names the site by its slug, which the trail does not keep, so none is made up.
        None if entry.url.is_some() => format!(" ({})", entry.url.as_deref().unwrap_or_default()),
        None => String::new(),
    };
    format!(
        "{} {}{id} [{}]",
        entry.action.label(),
        entry.name,
        entry.asset_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: Action) -> TrailEntry {
        TrailEntry {
            asset_key: "key".into(),
            name: "PC".into(),
            configuration_id: Some(1),
            url: None,
            site: String::new(),
            action,
            fields: Vec::new(),
        }
    }

    fn trail(system: System, actions: &[Action]) -> Trail {
        Trail {
            run_id: "run-old".into(),
            system,
            reverts: None,
            recorded_at: 0,
            entries: actions.iter().copied().map(entry).collect(),
        }
    }

    /// A run whose records expired is told from its trail: each ConnectWise write
    /// counted under its action, the Lansweeper edits (reported apart) not among them.
    ///
    /// Breaking it looks like: an expired run reported as having written nothing, or
    /// the enrichment's edits counted as configurations modified.
    #[test]
    fn an_expired_run_is_told_from_its_trail() {
        let trails = [
            trail(
                System::ConnectWise,
                &[
                    Action::Created,
                    Action::Created,
                    Action::Modified,
                    Action::Retired,
                    Action::Reactivated,
                ],
            ),
            trail(System::Lansweeper, &[Action::Modified, Action::Modified]),
        ];
        let report = report_from_trails("run-old", &trails);
        assert_eq!(report.run_id, "run-old");
        let counts = report.counts;
        assert_eq!(
            (
                counts.created,
                counts.modified,
                counts.retired,
                counts.reactivated
            ),
            (2, 1, 1, 1)
        );
        assert_eq!((report.assets, counts.unchanged), (0, 0));
    }
}
