//! The lane plan: how a run's batches are grouped and which write lane writes which
//! group. match hands the writers counts; the writers read the groups from the store.

use crate::error::PipelineError;
use crate::layout::{self, MatchRecord, SectionRecord};
use crate::states::BulkWriteInput;
use crate::store::Store;

/// Batches a write lane writes between two looks at its deadline. 10 batches of 50 keep
/// a 100,000-asset run at 200 groups per Map, so even one group an invocation stays far
/// under Step Functions' 25,000-event history, and one group's work (10–30 ConnectWise
/// requests) well inside the margin a lane keeps before Lambda's deadline.
pub const GROUP_SIZE: usize = 10;

/// The run's create and modify batches in groups of [`GROUP_SIZE`], in the order the
/// write lanes take them; retirements are modifies, written by the same step.
pub fn groups_of(record: &MatchRecord) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let all = |pick: fn(&SectionRecord) -> &Vec<String>| -> Vec<String> {
        record
            .sections
            .iter()
            .flat_map(|s| pick(s).iter().cloned())
            .collect()
    };
    let groups =
        |batches: Vec<String>| batches.chunks(GROUP_SIZE).map(<[String]>::to_vec).collect();
    let mut modify_batches = all(|s| &s.modify_batches);
    modify_batches.extend(all(|s| &s.retire_batches));
    (groups(all(|s| &s.create_batches)), groups(modify_batches))
}

/// The groups of batches a run's match planned: (create, modify), as the write lanes
/// read them from the store.
pub async fn planned_groups<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<(Vec<Vec<String>>, Vec<Vec<String>>), PipelineError> {
    let record = layout::read_match(store, run_id).await?;
    Ok(groups_of(&record))
}

/// Write lanes a run's Map runs side by side (its `MaxConcurrency`): each lane writes
/// the groups `lane`, `lane + lanes`, … one invocation after the other, so the state
/// names at most this many lanes whatever the size of the estate.
pub const LANES: usize = 4;

impl BulkWriteInput {
    /// The lanes that write `groups` groups: as many as [`LANES`], fewer for fewer groups.
    pub fn lanes(run_id: &str, groups: usize) -> Vec<Self> {
        let lanes = groups.min(LANES);
        (0..lanes)
            .map(|lane| Self {
                run_id: run_id.into(),
                lane,
                lanes,
                next: lane,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sections: &[(usize, usize, usize)]) -> MatchRecord {
        let names = |kind: &str, section: usize, n: usize| -> Vec<String> {
            (0..n).map(|i| format!("{kind}/{section}/{i}")).collect()
        };
        MatchRecord {
            sections: sections
                .iter()
                .enumerate()
                .map(|(s, &(create, modify, retire))| SectionRecord {
                    create_batches: names("create", s, create),
                    modify_batches: names("modify", s, modify),
                    retire_batches: names("retire", s, retire),
                    ..SectionRecord::default()
                })
                .collect(),
            ..MatchRecord::default()
        }
    }

    #[test]
    fn groups_hold_every_batch_once_in_order_with_retirements_after_modifies() {
        let (create, modify) = groups_of(&record(&[(12, 3, 2), (9, 0, 1)]));
        assert_eq!(
            create.len(),
            3,
            "21 create batches in groups of {GROUP_SIZE}"
        );
        assert!(
            create
                .iter()
                .all(|g| !g.is_empty() && g.len() <= GROUP_SIZE)
        );
        let flat: Vec<String> = create.concat();
        assert_eq!(flat.len(), 21);
        assert_eq!(flat[0], "create/0/0");
        assert_eq!(
            flat[12], "create/1/0",
            "the second section follows the first"
        );
        let modifies: Vec<String> = modify.concat();
        assert_eq!(
            modifies,
            [
                "modify/0/0",
                "modify/0/1",
                "modify/0/2",
                "retire/0/0",
                "retire/0/1",
                "retire/1/0"
            ]
        );
    }

    #[test]
    fn no_batch_no_group_no_lane() {
        let (create, modify) = groups_of(&record(&[(0, 0, 0)]));
        assert!(create.is_empty() && modify.is_empty());
        assert!(BulkWriteInput::lanes("run-1", 0).is_empty());
    }

    #[test]
    fn lanes_cover_every_group_exactly_once() {
        for groups in [1, 3, LANES, LANES + 1, 57] {
            let lanes = BulkWriteInput::lanes("run-1", groups);
            assert_eq!(lanes.len(), groups.min(LANES));
            let mut written: Vec<usize> = lanes
                .iter()
                .flat_map(|l| (l.next..groups).step_by(l.lanes))
                .collect();
            written.sort_unstable();
            assert_eq!(written, (0..groups).collect::<Vec<_>>(), "{groups} groups");
            assert!(
                lanes
                    .iter()
                    .all(|l| l.lanes == lanes.len() && l.next == l.lane)
            );
        }
    }
}
