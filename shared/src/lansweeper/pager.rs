//! Paging assets out of Lansweeper: cursor pages of up to 500, with the field paths
//! split over several requests when there are more than 30 and the parts merged by key.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::MAX_PATHS_PER_REQUEST;
use super::asset::{Asset, merge};
use super::client::LansweeperClient;
use super::documents::{FIRST_PAGE, NEXT_PAGE};
use super::error::LansweeperError;

/// Groups of at most 30 paths; with more than one group each carries `key` to merge on.
fn split_paths(paths: &[&str]) -> Result<Vec<Vec<String>>, LansweeperError> {
    let mut unique: Vec<&str> = Vec::new();
    for path in paths.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    if unique.is_empty() {
        return Err(LansweeperError::InvalidInput {
            field: "fields".into(),
            message: "name at least one field path".into(),
        });
    }
    if unique.len() <= MAX_PATHS_PER_REQUEST {
        return Ok(vec![
            unique
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        ]);
    }
    let others: Vec<&str> = unique.into_iter().filter(|p| *p != "key").collect();
    Ok(others
        .chunks(MAX_PATHS_PER_REQUEST - 1)
        .map(|chunk| {
            std::iter::once("key")
                .chain(chunk.iter().copied())
                .map(str::to_string)
                .collect()
        })
        .collect())
}

/// What a paged read saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetPageStats {
    /// `total` as Lansweeper reported it with the first page.
    pub total: Option<u64>,
    pub items: u64,
    pub requests: u64,
}

/// Pages of complete assets, one round of requests (one per path group) at a time.
pub struct AssetPager<'a> {
    client: &'a LansweeperClient,
    site_id: String,
    filters: Option<Value>,
    chunks: Vec<Vec<String>>,
    cursors: Vec<Option<String>>,
    finished: Vec<bool>,
    /// Items waiting for the other groups' parts: key → (item, parts seen).
    pending: HashMap<String, (Value, usize)>,
    order: Vec<String>,
    pub stats: AssetPageStats,
    drained: bool,
}

impl AssetPager<'_> {
    /// Where the next page starts, when the paths fit one request (the only case a read
    /// can be taken up again from): hand it to [`AssetPager::resume_at`].
    pub fn cursor(&self) -> Option<&str> {
        match self.cursors.as_slice() {
            [cursor] => cursor.as_deref(),
            _ => None,
        }
    }

    /// Goes on from where another pager's [`AssetPager::cursor`] stood.
    #[must_use]
    pub fn resume_at(mut self, cursor: &str) -> Self {
        if let [only] = self.cursors.as_mut_slice() {
            *only = Some(cursor.to_string());
        }
        self
    }

    /// The next page of complete assets; `None` when the site is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Asset>>, LansweeperError> {
        while self.finished.iter().any(|done| !done) {
            let complete = self.round().await?;
            if !complete.is_empty() {
                self.stats.items += complete.len() as u64;
                return Ok(Some(complete));
            }
        }
        if self.drained {
            return Ok(None);
        }
        self.drained = true;
        // Assets that changed between the groups' requests arrive incomplete; still hand
        // them on rather than lose them.
        let leftovers: Vec<Asset> = std::mem::take(&mut self.order)
            .into_iter()
            .filter_map(|key| self.pending.remove(&key).map(|(item, _)| Asset(item)))
            .collect();
        if leftovers.is_empty() {
            return Ok(None);
        }
        tracing::warn!(
            count = leftovers.len(),
            "assets changed while being read; some paths may be missing"
        );
        self.stats.items += leftovers.len() as u64;
        Ok(Some(leftovers))
    }

    /// One request per unfinished path group; answers the assets now complete.
    async fn round(&mut self) -> Result<Vec<Asset>, LansweeperError> {
        let groups = self.chunks.len();
        let mut complete = Vec::new();
        for index in 0..groups {
            if self.finished[index] {
                continue;
            }
            let (query, pagination) = match &self.cursors[index] {
                None => (
                    FIRST_PAGE,
                    json!({"limit": self.client.page_size(), "page": "FIRST"}),
                ),
                Some(cursor) => (
                    NEXT_PAGE,
                    json!({"limit": self.client.page_size(), "page": "NEXT", "cursor": cursor}),
                ),
            };
            let mut variables = json!({"siteId": self.site_id, "pagination": pagination, "fields": self.chunks[index]});
            if let Some(filters) = &self.filters {
                variables["filters"] = filters.clone();
            }
            let data = self.client.graphql(query, variables).await?;
            self.stats.requests += 1;
            let resources = &data["site"]["assetResources"];
            if index == 0 && self.cursors[index].is_none() {
                self.stats.total = resources["total"].as_u64();
            }
            let items = resources["items"].as_array().cloned().unwrap_or_default();
            let next = resources["pagination"]["next"].as_str().map(str::to_string);
            if items.is_empty() || next.is_none() {
                self.finished[index] = true;
            }
            self.cursors[index] = next;
            for item in items {
                if groups == 1 {
                    complete.push(Asset(item));
                    continue;
                }
                let Some(key) = item.get("key").and_then(Value::as_str).map(str::to_string) else {
                    return Err(LansweeperError::Decode(
                        "an asset came without its key".into(),
                    ));
                };
                if let Some((merged, seen)) = self.pending.get_mut(&key) {
                    merge(merged, item);
                    *seen += 1;
                } else {
                    self.order.push(key.clone());
                    self.pending.insert(key, (item, 1));
                }
            }
        }
        if groups > 1 {
            let mut waiting = Vec::new();
            for key in std::mem::take(&mut self.order) {
                match self.pending.remove(&key) {
                    Some((item, seen)) if seen == groups => complete.push(Asset(item)),
                    Some(entry) => {
                        self.pending.insert(key.clone(), entry);
                        waiting.push(key);
                    }
                    None => {}
                }
            }
            self.order = waiting;
        }
        Ok(complete)
    }
}

/// Reading the site's assets, on the client: the pager is the one paging loop.
impl LansweeperClient {
    /// Every asset of the site with the given field paths, page by page (500 a request),
    /// handing each page to `on_page` as soon as it is complete. More than 30 paths are
    /// split over several requests per page and put back together by `key`.
    pub async fn for_each_asset_page(
        &self,
        paths: &[&str],
        filters: Option<&Value>,
        mut on_page: impl FnMut(Vec<Asset>) -> Result<(), LansweeperError>,
    ) -> Result<AssetPageStats, LansweeperError> {
        let mut pager = self.asset_pager(paths, filters)?;
        while let Some(page) = pager.next_page().await? {
            on_page(page)?;
        }
        Ok(pager.stats)
    }

    /// The site's assets as a pager, for callers that do async work between pages.
    pub fn asset_pager(
        &self,
        paths: &[&str],
        filters: Option<&Value>,
    ) -> Result<AssetPager<'_>, LansweeperError> {
        AssetPager::new(self, paths, filters)
    }

    /// Every asset of the site, held in memory.
    pub async fn assets(
        &self,
        paths: &[&str],
        filters: Option<&Value>,
    ) -> Result<Vec<Asset>, LansweeperError> {
        let mut all = Vec::new();
        self.for_each_asset_page(paths, filters, |page| {
            all.extend(page);
            Ok(())
        })
        .await?;
        Ok(all)
    }
}

impl<'a> AssetPager<'a> {
    pub(super) fn new(
        client: &'a LansweeperClient,
        paths: &[&str],
        filters: Option<&Value>,
    ) -> Result<Self, LansweeperError> {
        let site_id = client.required_site()?.to_string();
        let chunks = split_paths(paths)?;
        Ok(Self {
            client,
            site_id,
            filters: filters.cloned(),
            cursors: vec![None; chunks.len()],
            finished: vec![false; chunks.len()],
            chunks,
            pending: HashMap::new(),
            order: Vec::new(),
            stats: AssetPageStats::default(),
            drained: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_groups_of_thirty_that_all_carry_the_key() {
        let many: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = std::iter::once("key")
            .chain(many.iter().map(String::as_str))
            .collect();
        let groups = split_paths(&refs).unwrap();
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [30, 30, 8]);
        assert!(groups.iter().all(|g| g[0] == "key"));
        let flat: Vec<&String> = groups.iter().flat_map(|g| g.iter().skip(1)).collect();
        assert_eq!(flat.len(), 65);
        assert_eq!(
            split_paths(&["key", "url", "key"]).unwrap(),
            vec![vec!["key".to_string(), "url".into()]]
        );
        assert!(split_paths(&[]).is_err());
    }
}
