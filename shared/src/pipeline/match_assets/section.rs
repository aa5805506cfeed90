//! What match decides for one section (one site's assets that go to one company), held
//! as it is made and stored in batches as it grows.

use std::collections::HashMap;

use crate::error::PipelineError;
use crate::layout::{ConflictReport, ModifyItem};
use crate::pipeline::batch::{Planned, put_planned};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::Store;

/// Planned items held at most before they are stored: a run's plan is stored as it is
/// made, never held whole, whatever the size of the estate.
const HELD_ITEMS: usize = 2_000;

/// What matching decided for one section, before it is stored.
#[derive(Default)]
pub(super) struct SectionPlan {
    pub assets: u64,
    pub unchanged: u64,
    pub ignored: u64,
    pub creates: Pending,
    pub modifies: Pending,
    pub conflicts: Vec<ConflictReport>,
    pub failed: Vec<Rejected>,
    pub retires: Vec<ModifyItem>,
    pub reactivated: u64,
}

impl SectionPlan {
    /// The plan of the `n`th section: its batches are named for it.
    fn numbered(n: usize) -> Self {
        Self {
            creates: Pending::of_kind(format!("create/{n:03}")),
            modifies: Pending::of_kind(format!("modify/{n:03}")),
            ..Self::default()
        }
    }
}

/// The run's sections, in the order their assets came (the mapping's): `(site,
/// company)` and its plan.
#[derive(Default)]
pub(super) struct Sections {
    pub names: Vec<(String, String)>,
    pub plans: Vec<SectionPlan>,
    index: HashMap<(String, String), usize>,
}

impl Sections {
    /// The index of the section of `site` and `company`, made when first seen.
    pub fn of(&mut self, site: String, company: String) -> usize {
        let key = (site, company);
        if let Some(&index) = self.index.get(&key) {
            return index;
        }
        let index = self.names.len();
        self.names.push(key.clone());
        self.plans.push(SectionPlan::numbered(index));
        self.index.insert(key, index);
        index
    }

    /// A section of retirements only, for a company no asset went to this run.
    pub fn add_retirements(&mut self, company: String, retires: Vec<ModifyItem>) {
        self.names.push((String::new(), company));
        self.plans.push(SectionPlan {
            retires,
            ..SectionPlan::default()
        });
    }
}

/// The items of one kind of one section, stored in batches as they are planned.
#[derive(Default)]
pub(super) struct Pending {
    kind: String,
    items: Vec<Planned>,
    /// Items planned, stored or not.
    pub planned: usize,
    /// How many times items were stored: each time's batches are numbered apart.
    stored: usize,
    pub batches: Vec<String>,
}

impl Pending {
    fn of_kind(kind: String) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    pub async fn add<S: Store>(
        &mut self,
        item: Planned,
        store: &S,
        settings: &SyncSettings,
        run_id: &str,
        failed: &mut Vec<Rejected>,
    ) -> Result<(), PipelineError> {
        self.items.push(item);
        self.planned += 1;
        if self.items.len() >= HELD_ITEMS {
            self.store(store, settings, run_id, failed).await?;
        }
        Ok(())
    }

    /// Stores the items held; one too large for a batch fails alone, into `failed`.
    pub async fn store<S: Store>(
        &mut self,
        store: &S,
        settings: &SyncSettings,
        run_id: &str,
        failed: &mut Vec<Rejected>,
    ) -> Result<(), PipelineError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let kind = format!("{}/{:02}", self.kind, self.stored);
        let items = std::mem::take(&mut self.items);
        self.batches
            .extend(put_planned(store, settings, run_id, &kind, items, failed).await?);
        self.stored += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_made_once_and_keeps_its_first_seen_order() {
        let mut sections = Sections::default();
        assert_eq!(sections.of("a".into(), "x".into()), 0);
        assert_eq!(sections.of("b".into(), "x".into()), 1);
        assert_eq!(sections.of("a".into(), "x".into()), 0);
        sections.add_retirements("y".into(), Vec::new());
        assert_eq!(sections.of("a".into(), "y".into()), 3);
        assert_eq!(sections.names.len(), sections.plans.len());
        assert_eq!(sections.plans[1].creates.kind, "create/001");
        assert_eq!(sections.plans[3].modifies.kind, "modify/003");
        assert_eq!(sections.names[2], (String::new(), "y".to_string()));
    }
}
