//! The manual's tables that mirror the code, rendered from it: `make structure` writes
//! them into `docs/`, and `make validate` fails when one is behind the code.

use std::time::Duration;

use crate::lansweeper::LansweeperOptions;
use crate::layout::{KEYS, KNOWN_TTL, LEASE_TTL, Lives};
use crate::pipeline::CLAIM_TTL;
use crate::quota::LEDGER_MARGIN;
use crate::settings::SyncSettings;
use crate::states::TASKS;
use crate::store::WRITE_LOCK_TTL;

/// A duration as the manual says it: `4 days`, `6 minutes`, `15 s`.
pub fn spoken(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (day, hour, minute) = (86_400, 3_600, 60);
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match seconds {
        s if s >= day && s % day == 0 => unit(s / day, "day"),
        s if s >= hour && s % hour == 0 => unit(s / hour, "hour"),
        s if s >= minute && s % minute == 0 => unit(s / minute, "minute"),
        s => format!("{s} s"),
    }
}

/// How long items of `lives` last by default, and what sets it.
pub fn lifetime(lives: Lives) -> (&'static str, String) {
    let settings = SyncSettings::default();
    let horizon = LansweeperOptions::default().hourly_window;
    match lives {
        Lives::Run => (
            "run TTL",
            format!(
                "{} (`SyncSettings::staging_ttl`): longer than the 3 days a run may last",
                spoken(settings.staging_ttl)
            ),
        ),
        Lives::Audit => (
            "audit TTL",
            format!(
                "{} (`AUDIT_RETENTION_DAYS`): outlives the run's records",
                spoken(settings.audit_ttl)
            ),
        ),
        Lives::Report => (
            "report TTL",
            format!(
                "{} (`SyncSettings::report_ttl`)",
                spoken(settings.report_ttl)
            ),
        ),
        Lives::ReferenceCache => (
            "reference TTL",
            format!(
                "{} (`SyncSettings::reference_ttl`)",
                spoken(settings.reference_ttl)
            ),
        ),
        Lives::Known => (
            "known TTL",
            format!(
                "{} (`layout::KNOWN_TTL`): longer than the enrichment's full-read period",
                spoken(KNOWN_TTL)
            ),
        ),
        Lives::Lease => (
            "lease TTL",
            format!("{} unless renewed (`layout::LEASE_TTL`)", spoken(LEASE_TTL)),
        ),
        Lives::Claim => (
            "claim TTL",
            format!(
                "{} (`pipeline::CLAIM_TTL`), renewed before every send; lapses at once when the result is recorded",
                spoken(CLAIM_TTL)
            ),
        ),
        Lives::QuotaLedger => (
            "ledger TTL",
            format!(
                "the quota's {} and {} (`quota::LEDGER_MARGIN`)",
                spoken(horizon),
                spoken(LEDGER_MARGIN)
            ),
        ),
        Lives::WriteLock => (
            "lock TTL",
            format!("{} (`store::WRITE_LOCK_TTL`)", spoken(WRITE_LOCK_TTL)),
        ),
        Lives::Kept => (
            "kept",
            "until an operator changes it (`layout::KEPT`)".to_string(),
        ),
    }
}

/// The store's keys (`layout::KEYS`), then how long each lifetime is.
pub fn store_table() -> String {
    let mut table = String::from("| key | holds | written by | lives |\n|---|---|---|---|\n");
    for row in KEYS {
        let keys: Vec<String> = row.keys.iter().map(|k| format!("`{k}`")).collect();
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            keys.join(", "),
            row.holds,
            row.written_by,
            lifetime(row.lives).0
        ));
    }
    table.push_str("\n| lifetime | how long |\n|---|---|\n");
    let mut seen = Vec::new();
    for row in KEYS {
        if !seen.contains(&row.lives) {
            seen.push(row.lives);
            let (name, long) = lifetime(row.lives);
            table.push_str(&format!("| {name} | {long} |\n"));
        }
    }
    table
}

/// The run's contract (`states::TASKS`): each Lambda Task, its function, what it reads
/// and what it answers.
pub fn tasks_table() -> String {
    let mut table = String::from("| state | function | reads | answers |\n|---|---|---|---|\n");
    for task in TASKS {
        table.push_str(&format!(
            "| `{}` | {} | `{}` | `{}` |\n",
            task.state, task.binary, task.input, task.output
        ));
    }
    table
}

/// Where `name`'s table sits in `page`: between `<!-- name: begin -->` and
/// `<!-- name: end -->`.
pub fn section(page: &str, name: &str) -> Option<(usize, usize)> {
    let begin = format!("<!-- {name}: begin -->\n");
    let start = page.find(&begin)? + begin.len();
    let stop = start + page[start..].find(&format!("<!-- {name}: end -->"))?;
    Some((start, stop))
}

/// Holds `name`'s table in the page at `path` (relative to the repository) to `table`;
/// with `UPDATE_DOCS` set, writes it there instead.
///
/// # Errors
/// The page cannot be read or written, has no such section, or holds another table.
pub fn hold(path: &str, name: &str, table: &str) -> Result<(), String> {
    let file = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(&file).map_err(|e| format!("{path}: {e}"))?;
    let (start, stop) =
        section(&page, name).ok_or_else(|| format!("{path} has no `{name}` section"))?;
    if page[start..stop] == *table {
        return Ok(());
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let written = format!("{}{table}{}", &page[..start], &page[stop..]);
        return std::fs::write(&file, written).map_err(|e| format!("{path}: {e}"));
    }
    Err(format!(
        "{path}'s `{name}` table is behind the code: `make structure` writes it anew"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_said_in_their_largest_whole_unit() {
        assert_eq!(spoken(Duration::from_secs(4 * 86_400)), "4 days");
        assert_eq!(spoken(Duration::from_secs(360)), "6 minutes");
        assert_eq!(spoken(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(spoken(Duration::from_secs(15)), "15 s");
        assert_eq!(spoken(Duration::from_secs(90)), "90 s");
    }

    /// Breaking it looks like: the manual saying a claim lasts 5 minutes where the code
    /// sets 6, or a key the store holds missing from its table.
    #[test]
    fn the_manual_s_tables_follow_the_code() {
        hold("docs/how-it-works.md", "store", &store_table()).unwrap();
        hold("docs/how-it-works.md", "tasks", &tasks_table()).unwrap();
    }

    #[test]
    fn a_stale_table_is_told_apart() {
        let page = "intro\n<!-- t: begin -->\nold\n<!-- t: end -->\nafter\n";
        let (start, stop) = section(page, "t").unwrap();
        assert_eq!(&page[start..stop], "old\n");
        assert_eq!(section(page, "other"), None);
    }
}
