//! What match reads before it decides anything: the staged assets and the configurations
//! in scope, each held compact (only the texts matching, the writes, the retirements
//! and the report read), and which asset keys the sites listed.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::contact;
use crate::connectwise::{ConnectWiseClient, ListQuery, endpoint};
use crate::error::PipelineError;
use crate::layout::{self, FetchRecord};
use crate::matching::{self, Compact, Fields, MatchSpec, OUT_OF_SCOPE, Target};
use crate::overrides::{self, Overrides};
use crate::references::{self, EnsureOutcome};
use crate::settings::SyncSettings;
use crate::staging::Rejected;
use crate::store::{Store, StoreExt};

/// What match reads of a staged asset besides the spec's paths (its section, the
/// references a failure names).
const ASSET_FIELDS: &[&str] = &[
    "key",
    "name",
    "site",
    "company",
    "retired",
    "type",
    "state",
    "manufacturer",
    "location",
    "userName",
    "userDomain",
];

/// What match reads of a configuration besides the spec's targets (its keys, company,
/// and whether it is retired).
const CONFIGURATION_FIELDS: &[&str] = &[
    "id",
    "name",
    "serialNumber",
    "macAddress",
    "company.id",
    "activeFlag",
    "status.name",
];

/// Everything match reads before it decides anything.
pub(super) struct Inputs {
    pub ensured: EnsureOutcome,
    pub fetched: FetchRecord,
    pub assets: Vec<Compact>,
    /// The mapping's companies ConnectWise has, by name key.
    pub company_ids: HashMap<String, i64>,
    pub configurations: Vec<Compact>,
    pub custom_field_ids: HashMap<String, i64>,
    pub overrides: Overrides,
    /// The parts of the assets whose user is not exactly one contact.
    pub contacts: Vec<String>,
}

impl Inputs {
    pub async fn read<S: Store>(
        connectwise: &ConnectWiseClient,
        store: &S,
        settings: &SyncSettings,
        run_id: &str,
        spec: &MatchSpec,
        create_spec: &MatchSpec,
    ) -> Result<Self, PipelineError> {
        let (ensured, _) = layout::read_ensured(store, run_id).await?;
        let fetched = layout::read_fetch(store, run_id).await?;
        let assets = staged_assets(store, &fetched, spec, create_spec).await?;
        let company_ids = layout::read_companies(store, run_id).await?;
        let (assets, contact_reports) = contact::find(connectwise, assets, &company_ids).await?;
        let contacts = store
            .put_parts(
                &layout::contact_reports(run_id),
                &contact_reports,
                settings.staging_ttl,
            )
            .await?;
        let location_names = references::location_names(connectwise, spec).await?;
        let configurations = configurations(connectwise, settings, spec, &location_names).await?;
        Ok(Self {
            ensured,
            fetched,
            assets,
            company_ids,
            configurations,
            custom_field_ids: layout::read_custom_fields(store, run_id).await?,
            overrides: overrides::load(store).await?,
            contacts,
        })
    }
}

/// A text of a compact record, empty when absent.
pub(super) fn text(record: &Compact, field: &str) -> String {
    record.at(field).unwrap_or_default()
}

/// The company a configuration belongs to.
pub(super) fn company_of(configuration: &Compact) -> Option<i64> {
    configuration
        .at("company.id")
        .and_then(|id| id.parse::<i64>().ok())
}

/// The run's staged assets, compact, read one chunk at a time.
pub(super) async fn staged_assets<S: Store>(
    store: &S,
    fetched: &FetchRecord,
    spec: &MatchSpec,
    create_spec: &MatchSpec,
) -> Result<Vec<Compact>, PipelineError> {
    let targets = Compact::targets(
        ASSET_FIELDS
            .iter()
            .map(|f| Target::Field((*f).to_string()))
            .chain(
                spec.targets()
                    .into_iter()
                    .chain(create_spec.targets())
                    .map(|(path, _)| Target::Field(path.to_string())),
            ),
    );
    let chunks: Vec<String> = store.get_parts(&fetched.chunks).await?;
    let mut assets = Vec::new();
    for chunk in &chunks {
        let part: Vec<serde_json::Value> = store.require(chunk).await?;
        assets.extend(part.iter().map(|a| Compact::of(a, &targets, None)));
    }
    Ok(assets)
}

/// Every configuration in scope, read once (forward-only, only the compared fields): of
/// each, only what matching, the retirements and the report read, a long custom field
/// value as its fingerprint (a tenant's other fields and the software lists would
/// otherwise dominate the memory). With a scope (`CW_MATCH_CONDITIONS`), the linked
/// configurations outside it too, marked [`OUT_OF_SCOPE`]: a link is found wherever it
/// is (an asset whose configuration the scope leaves out is never given a second one).
pub(super) async fn configurations(
    connectwise: &ConnectWiseClient,
    settings: &SyncSettings,
    spec: &MatchSpec,
    location_names: &HashMap<i64, String>,
) -> Result<Vec<Compact>, PipelineError> {
    let fields = format!("{},company/id,activeFlag", spec.configuration_fields());
    let query = ListQuery {
        conditions: settings.match_conditions.clone(),
        fields: Some(fields.clone()),
        ..ListQuery::default()
    };
    let targets = Compact::targets(
        CONFIGURATION_FIELDS
            .iter()
            .map(|f| Target::Field((*f).to_string()))
            .chain(spec.targets().into_iter().map(|(_, target)| target))
            .chain([
                Target::Custom(spec.link_caption.clone()),
                Target::Field(OUT_OF_SCOPE.to_string()),
            ]),
    );
    let compact = |mut configuration: Value| {
        references::name_location(&mut configuration, location_names);
        Compact::of(&configuration, &targets, Some(spec.case_sensitive_match))
    };
    let mut configurations = connectwise
        .list_complete_as(endpoint::CONFIGURATIONS, &query, &compact)
        .await?;
    if settings.match_conditions.is_some() {
        let in_scope: HashSet<i64> = configurations
            .iter()
            .map(matching::configuration_id)
            .collect();
        let linked = ListQuery {
            custom_field_conditions: Some(format!(
                "caption=\"{}\" AND value != null",
                spec.link_caption
            )),
            fields: Some(fields),
            ..ListQuery::default()
        };
        let outside = connectwise
            .list_complete_as(endpoint::CONFIGURATIONS, &linked, |mut c| {
                let id = c.get("id").and_then(Value::as_i64);
                if id.is_some_and(|id| in_scope.contains(&id)) {
                    return None;
                }
                c[OUT_OF_SCOPE] = Value::Bool(true);
                Some(compact(c))
            })
            .await?;
        configurations.extend(outside.into_iter().flatten());
    }
    Ok(configurations)
}

/// Which companies hold each linked configuration, by lower-cased asset key: an asset
/// linked in another company than its mapping's is a conflict, never a second
/// configuration.
pub(super) fn links(
    configurations: &[Compact],
    link: &Target,
) -> HashMap<String, Vec<(i64, Option<i64>)>> {
    let mut linked_in: HashMap<String, Vec<(i64, Option<i64>)>> = HashMap::new();
    for configuration in configurations {
        if let Some(key) = configuration.text(link) {
            linked_in.entry(key.to_lowercase()).or_default().push((
                matching::configuration_id(configuration),
                company_of(configuration),
            ));
        }
    }
    linked_in
}

/// The configurations of the mapped companies, by company id; the others are out of
/// the run's reach.
pub(super) fn by_company(
    configurations: Vec<Compact>,
    company_ids: &HashMap<String, i64>,
) -> HashMap<i64, Vec<Compact>> {
    let mut by_company: HashMap<i64, Vec<Compact>> = HashMap::new();
    for configuration in configurations {
        if let Some(company) = company_of(&configuration)
            && company_ids.values().any(|&id| id == company)
        {
            by_company.entry(company).or_default().push(configuration);
        }
    }
    by_company
}

/// Every key the sites listed (unmapped and rejected ones too), lower-cased: a
/// configuration linked to any of them is not retired.
pub(super) async fn listed_keys<S: Store>(
    store: &S,
    fetched: &FetchRecord,
    assets: &[Compact],
) -> Result<HashSet<String>, PipelineError> {
    let mut listed: HashSet<String> = assets
        .iter()
        .map(|a| text(a, "key").to_lowercase())
        .collect();
    for site in &fetched.sites {
        for part in [&site.unmapped, &site.rejected] {
            let entries: Vec<Rejected> = store.get_parts(part).await?;
            listed.extend(entries.into_iter().map(|e| e.asset_key.to_lowercase()));
        }
    }
    Ok(listed)
}
