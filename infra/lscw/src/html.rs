//! `lscw report RUN --html FILE`: a run on one self-contained page (no external asset):
//! its summary, its sections by site and company, the conflicts with their candidates
//! linked to ConnectWise, failures and unmapped assets with their reasons, retirements,
//! and a chart of the last runs.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use shared::environment::Lookup;
use shared::pipeline::{RunReport, RunStatus, RunSummary};
use shared::store::Store;
use shared::trail::{Trail, TrailEntry};

/// Writes `report`'s page to `path`, with the last runs from `store` and links into the
/// ConnectWise that `lookup` names (no request is made).
pub async fn write<S: Store>(
    store: &S,
    lookup: &Lookup,
    report: &RunReport,
    trails: &[Trail],
    path: &Path,
) -> anyhow::Result<()> {
    let recent = shared::pipeline::recent_runs(store).await?;
    let link = lookup
        .get("CW_BASE_URL")
        .zip(lookup.get("CW_COMPANY_ID"))
        .map(|(base, company)| {
            move |id: i64| shared::connectwise::configuration_url(&base, &company, id)
        });
    let link = link.as_ref().map(|l| l as &dyn Fn(i64) -> String);
    let text = with_trails(page(report, &recent, link), trails, link);
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Text made safe to put between tags or in an attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_text(status: RunStatus) -> (&'static str, &'static str) {
    match status {
        RunStatus::Succeeded => ("Succeeded", "ok"),
        RunStatus::SucceededWithFailures => ("Succeeded with failures", "warn"),
        RunStatus::Failed => ("Failed", "bad"),
        RunStatus::Skipped => ("Skipped (another run held the lease)", "warn"),
    }
}

/// Rows shown per table; the JSON report holds the rest.
const ROWS: usize = 500;

/// The page. `configuration_link` makes a configuration id a link into ConnectWise.
pub fn page(
    report: &RunReport,
    recent: &[RunSummary],
    configuration_link: Option<&dyn Fn(i64) -> String>,
) -> String {
    let (status, class) = status_text(report.status);
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Run {run}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d2430; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin-bottom: .2rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
.badge {{ display: inline-block; padding: .15rem .6rem; border-radius: 1rem; font-weight: 600; }}
.ok {{ background: #dcf5e3; color: #135e2b; }} .warn {{ background: #fff0c9; color: #6b4b00; }} .bad {{ background: #fde0e0; color: #7a1717; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .7rem; margin: 1rem 0; }}
.card {{ border: 1px solid #d6dbe3; border-radius: .5rem; padding: .5rem .9rem; min-width: 7rem; }}
.card b {{ display: block; font-size: 1.4rem; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0; }}
th, td {{ text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6e9ee; vertical-align: top; }}
th {{ background: #f3f5f8; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.muted {{ color: #5d6878; }} code {{ font-size: 12px; }}
</style></head><body>
<h1>Run <code>{run}</code> <span class="badge {class}">{status}</span></h1>
<p class="muted">{dry}ConnectWise requests: {cw} · Lansweeper requests: {ls}</p>
"#,
        run = escape(&report.run_id),
        dry = if report.dry_run {
            "Dry run: nothing was written. "
        } else {
            ""
        },
        cw = report.api_calls.connectwise,
        ls = report.api_calls.lansweeper,
    );
    summary(&mut html, report);
    sections_table(&mut html, report);
    conflicts_table(&mut html, report, configuration_link);
    failures_tables(&mut html, report);
    if !recent.is_empty() {
        html.push_str("<h2>Last runs</h2>");
        html.push_str(&chart(recent));
    }
    html.push_str("</body></html>\n");
    html
}

/// What the run came to at a glance: who held the lease, the counts, the guard.
fn summary(html: &mut String, report: &RunReport) {
    if let Some(holder) = &report.skipped_for {
        let _ = write!(
            html,
            "<p>Run <code>{}</code> held the lease; this run wrote nothing.</p>",
            escape(&holder.run_id)
        );
    }
    html.push_str(r#"<div class="cards">"#);
    for (label, value) in [
        ("assets", report.assets),
        ("created", report.counts.created),
        ("modified", report.counts.modified),
        ("unchanged", report.counts.unchanged),
        ("ignored", report.counts.ignored),
        ("conflicts", report.conflicts.len() as u64),
        ("failed", report.failed.len() as u64),
        ("unmapped", report.unmapped.len() as u64),
        ("retired", report.counts.retired),
        ("reactivated", report.counts.reactivated),
    ] {
        let _ = write!(html, r#"<div class="card"><b>{value}</b>{label}</div>"#);
    }
    html.push_str("</div>");

    if let Some(guard) = &report.guard {
        let _ = write!(
            html,
            r#"<h2>Retirements held</h2><p class="badge warn">{}</p><p>Would retire {} of {} linked configurations, among them: {}. <code>lscw retire --approve {}</code> lets them through.</p>"#,
            escape(&guard.reason),
            guard.would_retire,
            guard.linked,
            escape(&guard.first.join(", ")),
            escape(&report.run_id)
        );
    }
}

/// One row per site and company.
fn sections_table(html: &mut String, report: &RunReport) {
    if !report.sections.is_empty() {
        html.push_str("<h2>By site and company</h2><table><tr><th>site</th><th>company</th><th>assets</th><th>created</th><th>modified</th><th>unchanged</th><th>conflicts</th><th>failed</th><th>unmapped</th><th>retired</th></tr>");
        for s in &report.sections {
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                escape(&s.site),
                escape(s.company.as_deref().unwrap_or("—")),
                s.assets,
                s.counts.created,
                s.counts.modified,
                s.counts.unchanged,
                s.conflicts,
                s.failed,
                s.unmapped,
                s.counts.retired
            );
            if let Some(error) = &s.error {
                let _ = write!(
                    html,
                    r#"<tr><td colspan="10" class="bad">{}</td></tr>"#,
                    escape(error)
                );
            }
        }
        html.push_str("</table>");
    }
}

/// The conflicts, each candidate a link into ConnectWise when there is one.
fn conflicts_table(
    html: &mut String,
    report: &RunReport,
    configuration_link: Option<&dyn Fn(i64) -> String>,
) {
    if !report.conflicts.is_empty() {
        let _ = write!(
            html,
            "<h2>Conflicts ({})</h2><p class=\"muted\">Not written. Resolve in ConnectWise, merge the configurations that are one device (<code>lscw duplicates</code>), or pin one with <code>lscw link ASSET CONFIGURATION</code>.</p><table><tr><th>asset</th><th>why</th><th>candidates</th><th>resolved by</th></tr>",
            report.conflicts.len()
        );
        for c in report.conflicts.iter().take(ROWS) {
            let candidates: Vec<String> = c
                .candidates
                .iter()
                .map(|id| match configuration_link {
                    Some(link) => format!(r#"<a href="{}">{id}</a>"#, escape(&link(*id))),
                    None => id.to_string(),
                })
                .collect();
            let merge = c.merge.as_deref().map_or_else(
                || format!("<code>lscw link {} …</code>", escape(&c.asset_key)),
                |m| format!("<code>{}</code>", escape(m)),
            );
            let _ = write!(
                html,
                "<tr data-kind=\"conflict\" data-asset=\"{}\"><td>{}<br><code class=\"muted\">{}</code></td><td>{}</td><td>{}</td><td>{merge}</td></tr>",
                escape(&c.asset_key),
                escape(&c.name),
                escape(&c.asset_key),
                escape(&c.reason),
                candidates.join(", ")
            );
        }
        html.push_str("</table>");
    }
}

/// The failed, unmapped, refused retirements and contacts not set, a table each.
fn failures_tables(html: &mut String, report: &RunReport) {
    for (title, kind, entries) in [
        ("Failed", "failed", &report.failed),
        ("Unmapped", "unmapped", &report.unmapped),
        (
            "Retirements refused",
            "retire-failed",
            &report.retire_failed,
        ),
        ("Contacts left as they are", "contacts", &report.contacts),
    ] {
        if entries.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<h2>{title} ({})</h2><table><tr><th>asset</th><th>why</th></tr>",
            entries.len()
        );
        for entry in entries.iter().take(ROWS) {
            let _ = write!(
                html,
                "<tr data-kind=\"{kind}\" data-asset=\"{}\"><td><code>{}</code></td><td>{}</td></tr>",
                escape(&entry.asset_key),
                escape(&entry.asset_key),
                escape(&entry.reason)
            );
        }
        if entries.len() > ROWS {
            let _ = write!(
                html,
                "<tr><td colspan=\"2\" class=\"muted\">… {} more in the JSON report</td></tr>",
                entries.len() - ROWS
            );
        }
        html.push_str("</table>");
    }
}

/// Created, modified and failed of the last runs, as bars (inline SVG).
fn chart(recent: &[RunSummary]) -> String {
    let runs: Vec<&RunSummary> = recent.iter().rev().take(20).rev().collect();
    let most = runs
        .iter()
        .map(|r| {
            r.counts
                .created
                .max(r.counts.modified)
                .max(r.failed + r.conflicts)
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, bar) = (760, 180, 10);
    let step = width / runs.len().max(1);
    let mut svg = format!(
        r#"<svg role="img" aria-label="created, modified and failed per run" width="{width}" height="{}" viewBox="0 0 {width} {}">"#,
        height + 40,
        height + 40
    );
    for (i, run) in runs.iter().enumerate() {
        let x = i * step + 8;
        for (j, (value, colour, what)) in [
            (run.counts.created, "#2f80ed", "created"),
            (run.counts.modified, "#27ae60", "modified"),
            (
                run.failed + run.conflicts,
                "#eb5757",
                "failed or in conflict",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            #[allow(clippy::cast_possible_truncation, reason = "a bar's height in pixels")]
            let h = (value * height as u64 / most) as usize;
            let _ = write!(
                svg,
                r#"<rect x="{}" y="{}" width="{bar}" height="{h}" fill="{colour}"><title>{}: {value} {what}</title></rect>"#,
                x + j * (bar + 1),
                height - h,
                escape(&run.run_id)
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x}" y="{}" font-size="9" fill="#5d6878">{}</text>"##,
            height + 14,
            i + 1
        );
    }
    svg.push_str(r##"<text x="8" y="210" font-size="11" fill="#2f80ed">■ created</text><text x="90" y="210" font-size="11" fill="#27ae60">■ modified</text><text x="180" y="210" font-size="11" fill="#eb5757">■ failed or in conflict</text></svg>"##);
    svg
}

/// A run's report with its trails, as `lscw report --json` writes it: the report's
/// members as they are, the trails beside them.
#[derive(serde::Serialize)]
pub struct WithTrails<'a> {
    #[serde(flatten)]
    report: &'a RunReport,
    #[serde(skip_serializing_if = "<[Trail]>::is_empty")]
    trails: &'a [Trail],
}

impl<'a> WithTrails<'a> {
    pub fn of(report: &'a RunReport, trails: &'a [Trail]) -> Self {
        Self { report, trails }
    }
}

/// `page` with the run's trails before its end: each configuration (or asset) folded
/// with its fields before and after, linked into ConnectWise.
pub fn with_trails(
    mut page: String,
    trails: &[Trail],
    configuration_link: Option<&dyn Fn(i64) -> String>,
) -> String {
    let mut html = String::new();
    for trail in trails {
        let _ = write!(
            html,
            "<h2>Trail: {} {} written in {}</h2><p class=\"muted\">Each field before and after the run{}. <code>lscw revert {}</code> takes it back.</p>",
            trail.entries.len(),
            match trail.system {
                shared::trail::System::ConnectWise => "configurations",
                shared::trail::System::Lansweeper => "assets",
            },
            trail.system.label(),
            trail
                .reverts
                .as_ref()
                .map(|r| format!(", the revert of run <code>{}</code>", escape(r)))
                .unwrap_or_default(),
            escape(&trail.run_id),
        );
        for entry in trail.entries.iter().take(ROWS) {
            trail_entry(&mut html, entry, configuration_link);
        }
    }
    let end = page.rfind("</body>").unwrap_or(page.len());
    page.insert_str(end, &html);
    page
}

fn trail_entry(
    html: &mut String,
    entry: &TrailEntry,
    configuration_link: Option<&dyn Fn(i64) -> String>,
) {
    let id = match (entry.configuration_id, configuration_link) {
        (Some(id), Some(link)) => format!(r#" <a href="{}">{id}</a>"#, escape(&link(id))),
        (Some(id), None) => format!(" {id}"),
        // An enriched asset: its page in Lansweeper.
        (None, _) => entry
            .url
            .as_deref()
            .map(|url| format!(r#" <a href="{}">asset</a>"#, escape(url)))
            .unwrap_or_default(),
    };
    let _ = write!(
        html,
        "<details data-kind=\"trail\" data-asset=\"{}\"><summary>{} <b>{}</b>{id} <code class=\"muted\">{}</code> · {} fields</summary><table><tr><th>field</th><th>before</th><th>after</th></tr>",
        escape(&entry.asset_key),
        entry.action.label(),
        escape(&entry.name),
        escape(&entry.asset_key),
        entry.fields.len()
    );
    for change in &entry.fields {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&change.field),
            escape(&shared::trail::shown(change.before.as_deref())),
            escape(&shared::trail::shown(change.after.as_deref()))
        );
    }
    html.push_str("</table></details>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::layout::ConflictReport;
    use shared::pipeline::Counts;
    use shared::staging::Rejected;

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let report = RunReport {
            run_id: "run-1".into(),
            status: RunStatus::SucceededWithFailures,
            assets: 3,
            counts: Counts {
                created: 1,
                ..Counts::default()
            },
            conflicts: vec![ConflictReport {
                asset_key: "k1".into(),
                name: "<script>alert(1)</script>".into(),
                reason: "matches 2 configurations (4, 5) by serial number".into(),
                candidates: vec![4, 5],
                merge: Some("lscw merge 5 4".into()),
            }],
            failed: vec![Rejected {
                asset_key: "k2".into(),
                reason: "name \"x\" & <y>".into(),
            }],
            ..RunReport::default()
        };
        let recent = vec![RunSummary {
            run_id: "run-0".into(),
            counts: Counts {
                created: 10,
                modified: 4,
                ..Counts::default()
            },
            ..RunSummary::default()
        }];
        let link = |id: i64| format!("https://na.example/openrecord?recid={id}&x=1");
        let html = page(&report, &recent, Some(&link));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script>"), "names are escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("name &quot;x&quot; &amp; &lt;y&gt;"));
        assert!(html.contains(r#"<a href="https://na.example/openrecord?recid=4&amp;x=1">4</a>"#));
        assert!(html.contains("Succeeded with failures"));
        assert!(
            html.contains("<td><code>lscw merge 5 4</code></td>"),
            "the conflict names its merge"
        );
        assert!(html.contains("<svg"), "the chart of the last runs");
        for external in ["<link", "src=", "@import", "url("] {
            assert!(!html.contains(external), "no external asset: {external}");
        }
        assert_eq!(
            html.matches("<table").count(),
            html.matches("</table>").count()
        );
    }

    /// Breaking it looks like: a trail missing from the page, a configuration not linked
    /// into ConnectWise, a value shown unescaped, or the page's end misplaced.
    #[test]
    fn the_trail_folds_per_configuration_and_links_into_connectwise() {
        use shared::trail::{Action, FieldChange, System, Trail, TrailEntry};
        let trail = Trail {
            run_id: "run-1".into(),
            system: System::ConnectWise,
            reverts: None,
            recorded_at: 0,
            entries: vec![TrailEntry {
                asset_key: "k1".into(),
                name: "PC <1>".into(),
                configuration_id: Some(42),
                url: None,
                site: String::new(),
                action: Action::Modified,
                fields: vec![FieldChange {
                    field: "type.name".into(),
                    key: None,
                    before: Some("Windows".into()),
                    after: Some("Managed <Workstation>".into()),
                }],
            }],
        };
        let link = |id: i64| format!("https://na.example/openrecord?recid={id}");
        let html = with_trails(
            page(&RunReport::default(), &[], Some(&link)),
            &[trail],
            Some(&link),
        );
        assert_eq!(html.matches("<details").count(), 1);
        assert!(html.contains(r#"<a href="https://na.example/openrecord?recid=42">42</a>"#));
        assert!(html.contains("Managed &lt;Workstation&gt;"));
        assert!(html.contains("PC &lt;1&gt;"));
        assert!(
            html.trim_end().ends_with("</body></html>"),
            "the trail inside the body"
        );
        assert!(html.find("<details").unwrap() < html.find("</body>").unwrap());
    }
}
