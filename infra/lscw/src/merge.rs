//! `lscw duplicates` and `lscw merge`: configurations that are one device, listed with
//! the one the sync would keep, and merged into it.

use shared::duplicates::Group;
use shared::environment::Environment;
use shared::operator::{MergeOptions, MergeReport, MergeRequest};

use crate::store::AnyStore;

/// Lists the groups of duplicates; answers them.
/// `shown` limits the groups printed (the demo's page); the rest are counted.
pub async fn duplicates(
    env: &Environment<AnyStore>,
    company: Option<&str>,
    shown: usize,
) -> anyhow::Result<Vec<Group>> {
    let groups = shared::operator::find_duplicates(
        &env.connectwise,
        &env.lansweeper,
        &env.store,
        &env.settings,
        company,
    )
    .await?;
    print_groups(&groups, shown);
    Ok(groups)
}

/// `lscw duplicates [--company C] [--json FILE]`.
pub async fn list(
    env: &Environment<AnyStore>,
    company: Option<&str>,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let groups = duplicates(env, company, usize::MAX).await?;
    if let Some(path) = json {
        crate::sync::write_json(path, &groups)?;
    }
    Ok(())
}

/// `lscw merge`: fails when a merge failed or the guard held them.
pub async fn run(
    env: &Environment<AnyStore>,
    ids: &[i64],
    all_suggested: bool,
    company: Option<&str>,
    options: MergeOptions,
) -> anyhow::Result<()> {
    let report = merge(env, ids, all_suggested, company, options, usize::MAX).await?;
    anyhow::ensure!(report.failed.is_empty(), "some merges failed (above)");
    anyhow::ensure!(report.held.is_none(), "the guard held the merges (above)");
    Ok(())
}

pub fn print_groups(groups: &[Group], shown: usize) {
    if groups.is_empty() {
        println!(
            "no duplicates: no two configurations in use share a serial, a MAC address or a link"
        );
        return;
    }
    let mergeable = groups.iter().filter(|g| g.keep.is_some()).count();
    println!(
        "{} groups of duplicates ({mergeable} with a configuration to keep):",
        groups.len()
    );
    for group in groups.iter().take(shown) {
        let asset = group.asset.as_ref().map_or_else(
            || "no Lansweeper asset matches".to_string(),
            |a| format!("asset {} ({}, site {})", a.key, a.name, a.site),
        );
        println!(
            "\n  company {} ({}): share {}; {asset}",
            group.company_name,
            group.company,
            group.shared.join(", ")
        );
        for member in &group.members {
            let role = if Some(member.id) == group.keep {
                "keep"
            } else if group.keep.is_some() {
                "drop"
            } else {
                "    "
            };
            let link = member
                .link
                .as_deref()
                .map(|k| format!(", linked to {k}"))
                .unwrap_or_default();
            println!(
                "    {role} {:>7}  {}  ({}{link})",
                member.id,
                member.name,
                tickets(member.tickets)
            );
        }
        println!("    why: {}", group.why);
        if let Some(command) = group.command() {
            println!("    {command}");
        }
    }
    if groups.len() > shown {
        println!("\n  … {} more groups", groups.len() - shown);
    }
}

/// `lscw merge KEEP DROP…`, or every suggested merge.
/// `shown` limits the merges printed; the rest are counted.
pub async fn merge(
    env: &Environment<AnyStore>,
    ids: &[i64],
    all_suggested: bool,
    company: Option<&str>,
    options: MergeOptions,
    shown: usize,
) -> anyhow::Result<MergeReport> {
    let requests: Vec<MergeRequest> = if all_suggested {
        anyhow::ensure!(
            ids.is_empty(),
            "--all-suggested merges what `lscw duplicates` suggests: name no configuration"
        );
        let groups = shared::operator::find_duplicates(
            &env.connectwise,
            &env.lansweeper,
            &env.store,
            &env.settings,
            company,
        )
        .await?;
        groups.iter().filter_map(MergeRequest::suggested).collect()
    } else {
        let [keep, drop @ ..] = ids else {
            anyhow::bail!("name the configuration to keep, then those to merge into it");
        };
        anyhow::ensure!(
            !drop.is_empty(),
            "name at least one configuration to merge into {keep}"
        );
        vec![MergeRequest {
            keep: *keep,
            drop: drop.to_vec(),
            asset_key: None,
            tickets: std::collections::BTreeMap::new(),
        }]
    };
    let report = shared::operator::merge(
        &env.connectwise,
        &env.lansweeper,
        &env.store,
        &env.settings,
        &requests,
        options,
    )
    .await?;
    print_report(&report, shown);
    Ok(report)
}

pub fn print_report(report: &MergeReport, shown: usize) {
    let verb = if report.dry_run {
        "would merge"
    } else {
        "merged"
    };
    if let Some(held) = &report.held {
        println!("held by the guard: {held}");
    }
    let done: Vec<_> = report.merged.iter().filter(|m| !m.already_merged).collect();
    println!("{verb} {} configurations", done.len());
    for merged in done.iter().take(shown) {
        let link = merged
            .link
            .as_deref()
            .map(|k| format!("; {} is asset {k}'s", merged.keep))
            .unwrap_or_default();
        println!(
            "  {} into {}: {} attached to {}{link}; {} retired as \"{}\"",
            merged.drop,
            merged.keep,
            tickets(merged.tickets.len() - merged.already_attached),
            merged.keep,
            merged.drop,
            merged.renamed
        );
    }
    if done.len() > shown {
        println!("  … {} more", done.len() - shown);
    }
    for merged in report.merged.iter().filter(|m| m.already_merged) {
        println!("  {} was merged into {} already", merged.drop, merged.keep);
    }
    for failure in &report.failed {
        println!(
            "  failed: {} into {}: {}",
            failure.drop, failure.keep, failure.reason
        );
    }
}

fn tickets(n: usize) -> String {
    if n == 1 {
        "1 ticket".into()
    } else {
        format!("{n} tickets")
    }
}
