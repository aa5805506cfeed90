//! Which ConnectWise company each Lansweeper asset belongs to: a mapping of sites to
//! companies, with ordered rules inside a site and an optional default. Kept in the
//! store as one versioned item (`lscw mapping`); without one, `LS_SITE_ID` and
//! `CW_TARGET_COMPANY` make a one-site mapping. Resolution is pure.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::lansweeper::Asset;
use crate::layout;
use crate::references::name_key;
use crate::store::{Store, StoreExt};

mod suggest;

pub use suggest::{Suggestion, company_name_key, suggest};

/// Sites to companies. `version` counts the saved edits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub version: u64,
    pub sites: Vec<SiteMapping>,
}

/// One Lansweeper site: its rules, tried in order, then its default company.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteMapping {
    /// Lansweeper site id.
    pub site: String,
    /// Company (identifier or id) of the assets no rule maps; none: they are unmapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// Assets whose value satisfies `when` go to `company`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub when: Predicate,
    pub company: String,
}

/// What a rule looks at. Text comparisons ignore case and surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Predicate {
    /// A Lansweeper custom field (by name) equals the value.
    CustomField { name: String, equals: String },
    /// The asset's domain equals the value.
    Domain { equals: String },
    /// The asset's location equals the value.
    Location { equals: String },
    /// The asset's IP address lies in the range (CIDR: `10.1.0.0/16`).
    IpRange { cidr: String },
}

/// An asset's values the rules look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleValues {
    pub domain: Option<String>,
    pub location: Option<String>,
    pub ip_address: Option<String>,
    pub custom_fields: Vec<(String, String)>,
}

impl RuleValues {
    pub fn of(asset: &Asset) -> Self {
        Self {
            domain: asset.domain(),
            location: asset.location(),
            ip_address: asset.ip_address(),
            custom_fields: asset.custom_fields(),
        }
    }

    fn custom_field(&self, name: &str) -> Option<&str> {
        self.custom_fields
            .iter()
            .find(|(n, _)| same_text(n, name))
            .map(|(_, v)| v.as_str())
    }
}

fn same_text(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

impl Predicate {
    fn holds(&self, values: &RuleValues) -> bool {
        let equals =
            |value: Option<&str>, wanted: &str| value.is_some_and(|v| same_text(v, wanted));
        match self {
            Self::CustomField {
                name,
                equals: wanted,
            } => equals(values.custom_field(name), wanted),
            Self::Domain { equals: wanted } => equals(values.domain.as_deref(), wanted),
            Self::Location { equals: wanted } => equals(values.location.as_deref(), wanted),
            Self::IpRange { cidr } => {
                let Ok(range) = Cidr::parse(cidr) else {
                    return false;
                };
                values
                    .ip_address
                    .as_deref()
                    .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
                    .is_some_and(|ip| range.contains(ip))
            }
        }
    }

    /// What the condition looked at on this asset, for an unmapped asset's reason.
    fn looked_at(&self, values: &RuleValues) -> String {
        let shown = |v: Option<&str>| v.map_or_else(|| "(none)".to_string(), |v| format!("{v:?}"));
        match self {
            Self::CustomField { name, .. } => {
                format!(
                    "custom field {name:?} = {}",
                    shown(values.custom_field(name))
                )
            }
            Self::Domain { .. } => format!("domain = {}", shown(values.domain.as_deref())),
            Self::Location { .. } => format!("location = {}", shown(values.location.as_deref())),
            Self::IpRange { .. } => format!("IP = {}", shown(values.ip_address.as_deref())),
        }
    }

    fn check(&self) -> Result<(), String> {
        let filled = |what: &str, value: &str| {
            if value.trim().is_empty() {
                Err(format!("{what} is empty: the rule could never match"))
            } else {
                Ok(())
            }
        };
        match self {
            Self::CustomField { name, equals } => {
                filled("the custom field's name", name)?;
                filled("the value", equals)
            }
            Self::Domain { equals } | Self::Location { equals } => filled("the value", equals),
            Self::IpRange { cidr } => Cidr::parse(cidr).map(|_| ()),
        }
    }
}

/// An IP range in CIDR form.
struct Cidr {
    network: IpAddr,
    prefix: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a CIDR range (e.g. 10.1.0.0/16)"))?;
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}`: `{address}` is not an IP address"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u32 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("`{text}`: the prefix must be 0 to {bits}"))?;
        Ok(Self { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Where an asset goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Company(String),
    /// No rule maps it and the site has no default; why, with the values looked at.
    Unmapped(String),
}

impl SiteMapping {
    /// The company of an asset with these values.
    pub fn destination(&self, values: &RuleValues) -> Destination {
        if let Some(rule) = self.rules.iter().find(|r| r.when.holds(values)) {
            return Destination::Company(rule.company.clone());
        }
        if let Some(company) = &self.company {
            return Destination::Company(company.clone());
        }
        let mut reason = format!("no rule of site {} maps it", self.site);
        let mut looked: Vec<String> = self
            .rules
            .iter()
            .map(|r| r.when.looked_at(values))
            .collect();
        looked.dedup();
        if !looked.is_empty() {
            let _ = write!(reason, " ({})", looked.join(", "));
        }
        reason.push_str(" and the site has no default company");
        Destination::Unmapped(reason)
    }

    /// Every company this site sends assets to, default first.
    pub fn companies(&self) -> impl Iterator<Item = &str> {
        self.company
            .iter()
            .map(String::as_str)
            .chain(self.rules.iter().map(|r| r.company.as_str()))
    }
}

impl Mapping {
    /// `LS_SITE_ID` + `CW_TARGET_COMPANY`: today's single-site settings as a mapping.
    pub fn single(site: &str, company: &str) -> Self {
        Self {
            version: 0,
            sites: vec![SiteMapping {
                site: site.to_string(),
                company: Some(company.to_string()),
                rules: Vec::new(),
            }],
        }
    }

    pub fn site(&self, site: &str) -> Option<&SiteMapping> {
        self.sites.iter().find(|s| s.site == site)
    }

    /// Every company the mapping names, once each (as compared by ConnectWise), in order.
    pub fn companies(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.sites
            .iter()
            .flat_map(SiteMapping::companies)
            .filter(|c| seen.insert(name_key(c)))
            .map(str::to_string)
            .collect()
    }

    /// Refuses what could never work: no site, a site twice, an empty company, a rule
    /// that can never match (an empty value, a malformed range, or one after the same
    /// condition already decided).
    ///
    /// # Errors
    /// Every problem found, one per line.
    pub fn check(&self) -> Result<(), PipelineError> {
        let mut problems = Vec::new();
        if self.sites.is_empty() {
            problems.push("the mapping has no site".to_string());
        }
        for (n, site) in self.sites.iter().enumerate() {
            if site.site.trim().is_empty() {
                problems.push(format!("site #{}: the site id is empty", n + 1));
            }
            if self.sites[..n].iter().any(|s| s.site == site.site) {
                problems.push(format!("site {}: mapped twice", site.site));
            }
            if site.company.as_deref().is_some_and(|c| c.trim().is_empty()) {
                problems.push(format!("site {}: the default company is empty", site.site));
            }
            if site.company.is_none() && site.rules.is_empty() {
                problems.push(format!(
                    "site {}: no default company and no rule: every asset would be unmapped",
                    site.site
                ));
            }
            for (r, rule) in site.rules.iter().enumerate() {
                let at = format!("site {}, rule {}", site.site, r + 1);
                if let Err(problem) = rule.when.check() {
                    problems.push(format!("{at}: {problem}"));
                }
                if rule.company.trim().is_empty() {
                    problems.push(format!("{at}: the company is empty"));
                }
                if site.rules[..r]
                    .iter()
                    .any(|earlier| earlier.when == rule.when)
                {
                    problems.push(format!(
                        "{at}: an earlier rule has the same condition, so this one can never match"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PipelineError::Config(format!(
                "the mapping is not valid:\n  {}",
                problems.join("\n  ")
            )))
        }
    }
}

impl Mapping {
    /// Refuses sites the token cannot see and companies ConnectWise does not have.
    /// `companies` holds each company's id and identifier.
    ///
    /// # Errors
    /// Every unknown site and company, one per line.
    pub fn check_known(
        &self,
        sites: &[String],
        companies: &[(i64, String)],
    ) -> Result<(), PipelineError> {
        let mut problems = Vec::new();
        for site in &self.sites {
            if !sites.contains(&site.site) {
                problems.push(format!(
                    "site {}: the token cannot see this site (`lscw sites` lists those it can)",
                    site.site
                ));
            }
        }
        for company in self.companies() {
            let by_identifier = companies
                .iter()
                .find(|(_, identifier)| name_key(identifier) == name_key(&company));
            let by_id = company
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|id| companies.iter().find(|(known, _)| *known == id));
            match (by_identifier, by_id) {
                (None, None) => problems.push(format!(
                    "company {company}: ConnectWise has no company with this identifier or id"
                )),
                (Some((a, _)), Some((b, other))) if a != b => problems.push(format!(
                    "company {company}: the identifier of company {a} and the id of company `{other}`; the sync takes the identifier — name `{other}` by its identifier if it is the one meant"
                )),
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PipelineError::Config(format!(
                "the mapping names what does not exist:\n  {}",
                problems.join("\n  ")
            )))
        }
    }
}

/// The mapping in force: the stored one, or else the single-site settings.
///
/// # Errors
/// Neither is set, or the stored one cannot be read.
pub async fn in_force<S: Store>(
    store: &S,
    site: Option<&str>,
    company: Option<&str>,
) -> Result<Mapping, PipelineError> {
    if let Some(stored) = stored(store).await? {
        return Ok(stored);
    }
    match (site.filter(|s| !s.is_empty()), company.filter(|c| !c.is_empty())) {
        (Some(site), Some(company)) => Ok(Mapping::single(site, company)),
        _ => Err(PipelineError::Config(
            "no mapping of sites to companies: set one with `lscw mapping set` or `lscw mapping import`, or set LS_SITE_ID and CW_TARGET_COMPANY for a single site".into(),
        )),
    }
}

/// The stored mapping, if any.
///
/// # Errors
/// The store cannot be read or holds something else.
pub async fn stored<S: Store>(store: &S) -> Result<Option<Mapping>, PipelineError> {
    Ok(store.get(layout::MAPPING).await?)
}

/// Saves `mapping` as the next version after `based_on` (the version it was edited
/// from), unless another edit was saved since.
///
/// # Errors
/// The mapping is not valid, or another edit came first.
pub async fn save<S: Store>(
    store: &S,
    mut mapping: Mapping,
    based_on: u64,
) -> Result<Mapping, PipelineError> {
    mapping.check()?;
    // The version read and the next written with no other save between them.
    let save = async {
        let current = stored(store).await?.map_or(0, |m| m.version);
        if current != based_on {
            return Err(PipelineError::Config(format!(
                "the mapping changed while it was edited (version {current}, the edit started from {based_on}); read it again"
            )));
        }
        mapping.version = current + 1;
        store.put(layout::MAPPING, &mapping, layout::KEPT).await?;
        Ok(mapping)
    };
    crate::store::exclusive(store, layout::MAPPING, save).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(domain: &str, ip: &str, customer: &str) -> RuleValues {
        RuleValues {
            domain: Some(domain.into()),
            location: Some("Rotterdam".into()),
            ip_address: Some(ip.into()),
            custom_fields: vec![("Customer".into(), customer.into())],
        }
    }

    fn site() -> SiteMapping {
        serde_json::from_value(json!({
            "site": "s1",
            "rules": [
                {"when": {"customField": {"name": "customer", "equals": "Fabrikam"}}, "company": "Fabrikam"},
                {"when": {"ipRange": {"cidr": "10.2.0.0/16"}}, "company": "Northwind"},
                {"when": {"domain": {"equals": "CONTOSO.local"}}, "company": "Contoso"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn rules_apply_in_order_and_unmapped_says_what_was_looked_at() {
        let site = site();
        assert_eq!(
            site.destination(&values("contoso.local", "10.2.3.4", " fabrikam ")),
            Destination::Company("Fabrikam".into())
        );
        assert_eq!(
            site.destination(&values("contoso.local", "10.2.3.4", "x")),
            Destination::Company("Northwind".into())
        );
        assert_eq!(
            site.destination(&values("Contoso.Local", "10.3.0.1", "")),
            Destination::Company("Contoso".into())
        );
        let Destination::Unmapped(reason) = site.destination(&values("other", "bad ip", "")) else {
            panic!("mapped")
        };
        assert!(
            reason.contains("custom field \"customer\" = \"\""),
            "{reason}"
        );
        assert!(reason.contains("IP = \"bad ip\""), "{reason}");
        assert!(reason.contains("domain = \"other\""), "{reason}");
        let with_default = SiteMapping {
            company: Some("Default".into()),
            ..site
        };
        assert_eq!(
            with_default.destination(&RuleValues::default()),
            Destination::Company("Default".into())
        );
    }

    #[test]
    fn cidr_ranges() {
        let range = Cidr::parse("192.168.8.0/22").unwrap();
        assert!(range.contains("192.168.11.255".parse().unwrap()));
        assert!(!range.contains("192.168.12.0".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            !Cidr::parse("fd00::/8")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
    }

    #[test]
    fn invalid_mappings_are_refused_with_every_reason() {
        let mapping: Mapping = serde_json::from_value(json!({"sites": [
            {"site": "a", "company": " "},
            {"site": "a", "company": "X"},
            {"site": "b"},
            {"site": "c", "rules": [
                {"when": {"ipRange": {"cidr": "10.0.0.0/40"}}, "company": "X"},
                {"when": {"domain": {"equals": ""}}, "company": "X"},
                {"when": {"location": {"equals": "L"}}, "company": "X"},
                {"when": {"location": {"equals": "L"}}, "company": "Y"}
            ]}
        ]}))
        .unwrap();
        let error = mapping.check().unwrap_err().to_string();
        for expected in [
            "site a: the default company is empty",
            "site a: mapped twice",
            "site b: no default company and no rule",
            "site c, rule 1: `10.0.0.0/40`: the prefix must be 0 to 32",
            "site c, rule 2: the value is empty",
            "site c, rule 4: an earlier rule has the same condition",
        ] {
            assert!(error.contains(expected), "{expected} not in {error}");
        }
        assert!(Mapping::default().check().is_err());
        assert!(Mapping::single("s", "C").check().is_ok());
        let unknown =
            serde_json::from_value::<Mapping>(json!({"sites": [{"site": "a", "companny": "X"}]}));
        assert!(unknown.is_err(), "a misspelt key is refused");
    }

    #[test]
    fn unknown_sites_and_companies_are_named() {
        let mapping: Mapping = serde_json::from_value(json!({"sites": [
            {"site": "a", "company": "contoso"},
            {"site": "ghost", "company": "77", "rules": [
                {"when": {"domain": {"equals": "x"}}, "company": "Nobody"}
            ]}
        ]}))
        .unwrap();
        let companies = vec![(1, "Contoso".to_string()), (2, "Other".to_string())];
        let error = mapping
            .check_known(&["a".into()], &companies)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("site ghost: the token cannot see"),
            "{error}"
        );
        assert!(error.contains("company 77:"), "{error}");
        assert!(error.contains("company Nobody:"), "{error}");
        assert!(
            !error.contains("contoso"),
            "identifiers compare as ConnectWise does: {error}"
        );
        assert!(
            Mapping::single("a", "2")
                .check_known(&["a".into()], &companies)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_stored_mapping_wins_and_edits_are_versioned() {
        let store = crate::store::MemoryStore::default();
        assert_eq!(
            in_force(&store, Some("s"), Some("C")).await.unwrap(),
            Mapping::single("s", "C")
        );
        assert!(in_force(&store, None, Some("C")).await.is_err());
        let saved = save(&store, Mapping::single("t", "D"), 0).await.unwrap();
        assert_eq!(saved.version, 1);
        assert_eq!(in_force(&store, Some("s"), Some("C")).await.unwrap(), saved);
        let stale = save(&store, Mapping::single("u", "E"), 0)
            .await
            .unwrap_err();
        assert!(
            stale.to_string().contains("changed while it was edited"),
            "{stale}"
        );
        assert_eq!(
            save(&store, Mapping::single("u", "E"), 1)
                .await
                .unwrap()
                .version,
            2
        );
        assert!(save(&store, Mapping::default(), 2).await.is_err());
    }

    /// Breaking it looks like: two operators editing the mapping at once, both told it
    /// was saved, and one's edit silently gone.
    #[tokio::test]
    async fn of_two_edits_saved_at_once_from_one_version_one_is_refused() {
        let store = crate::store::MemoryStore::interleaved();
        let (first, second) = tokio::join!(
            save(&store, Mapping::single("site-a", "CompanyA"), 0),
            save(&store, Mapping::single("site-b", "CompanyB"), 0),
        );
        assert!(
            first.is_ok() != second.is_ok(),
            "exactly one saved: {first:?} {second:?}"
        );
        let refused = first.err().or(second.err()).unwrap();
        assert!(
            refused.to_string().contains("changed while it was edited"),
            "{refused}"
        );
        let stored = stored(&store).await.unwrap().unwrap();
        assert_eq!(stored.version, 1);
    }
}
