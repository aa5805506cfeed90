//! `lscw mapping`: which Lansweeper site (and which assets within it) goes to which
//! ConnectWise company. Kept in the store as one versioned item; every change is checked
//! against the sites the token sees and the companies ConnectWise has before it is saved.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;
use shared::connectwise::{ListQuery, endpoint};
use shared::environment::Environment;
use shared::mapping::{self, Mapping, Predicate, Rule, SiteMapping};

use crate::store::AnyStore;

#[derive(Subcommand)]
pub enum MappingAction {
    /// The mapping in force (the stored one, or LS_SITE_ID + CW_TARGET_COMPANY).
    List,
    /// Proposes site → company pairs by name; applies nothing.
    Suggest,
    /// Maps a site: its default company and its rules (replacing the site's entry).
    Set {
        /// The Lansweeper site id.
        site: String,
        /// Company (identifier or id) of the site's assets no rule maps.
        #[arg(long)]
        company: Option<String>,
        /// A rule, tried in the order given: `WHEN->COMPANY`, WHEN one of
        /// `custom:FIELD=VALUE`, `domain=VALUE`, `location=VALUE`, `ip=CIDR`.
        #[arg(long = "rule")]
        rules: Vec<String>,
    },
    /// Removes a site from the mapping.
    Remove { site: String },
    /// Writes the mapping as JSON (to FILE, or the standard output).
    Export { file: Option<PathBuf> },
    /// Replaces the mapping with a JSON file's (as `export` writes it).
    Import { file: PathBuf },
}

#[allow(
    clippy::too_many_lines,
    reason = "one arm per `lscw mapping` subcommand"
)]
pub async fn run(env: &Environment<AnyStore>, action: MappingAction) -> anyhow::Result<()> {
    let store = &env.store;
    let stored = mapping::stored(store).await?;
    let version = stored.as_ref().map_or(0, |m| m.version);
    match action {
        MappingAction::List => {
            let in_force = mapping::in_force(
                store,
                Some(env.lansweeper.site_id()),
                Some(&env.settings.target_company),
            )
            .await?;
            if stored.is_none() {
                println!("no stored mapping: LS_SITE_ID and CW_TARGET_COMPANY map one site");
            } else {
                println!("mapping version {}", in_force.version);
            }
            print!("{}", describe(&in_force));
            Ok(())
        }
        MappingAction::Suggest => {
            let sites: Vec<(String, String)> = env
                .lansweeper
                .sites()
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect();
            let companies = companies(env).await?;
            let named: Vec<(String, String)> = companies
                .iter()
                .map(|(_, identifier, name)| (identifier.clone(), name.clone()))
                .collect();
            let suggestions = mapping::suggest(&sites, &named);
            for (site, name) in &sites {
                match suggestions.iter().find(|s| &s.site == site) {
                    Some(s) => {
                        let doubt = s
                            .runner_up
                            .as_ref()
                            .map(|r| format!("  (close: {r})"))
                            .unwrap_or_default();
                        println!(
                            "{site}\t{name:?} → {} {:?}\tscore {:.2}{doubt}",
                            s.company, s.company_name, s.score
                        );
                    }
                    None => println!("{site}\t{name:?} → no company alike enough"),
                }
            }
            println!(
                "nothing is applied: `lscw mapping set SITE --company IDENTIFIER` for each pair you accept"
            );
            Ok(())
        }
        MappingAction::Set {
            site,
            company,
            rules,
        } => {
            let entry = SiteMapping {
                site: site.clone(),
                company,
                rules: rules
                    .iter()
                    .map(|r| parse_rule(r))
                    .collect::<anyhow::Result<_>>()?,
            };
            let mut edited = stored.unwrap_or_default();
            match edited.sites.iter_mut().find(|s| s.site == site) {
                Some(existing) => *existing = entry,
                None => edited.sites.push(entry),
            }
            save(env, edited, version).await
        }
        MappingAction::Remove { site } => {
            let mut edited = stored.context("no mapping is stored")?;
            let before = edited.sites.len();
            edited.sites.retain(|s| s.site != site);
            anyhow::ensure!(
                edited.sites.len() < before,
                "site {site} is not in the mapping"
            );
            save(env, edited, version).await
        }
        MappingAction::Export { file } => {
            let mapping = stored.context("no mapping is stored")?;
            let text = serde_json::to_string_pretty(&mapping)? + "\n";
            match file {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        MappingAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let imported: Mapping = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a mapping", file.display()))?;
            save(env, imported, version).await
        }
    }
}

/// Checks the edit against both APIs, then saves it as the next version.
async fn save(env: &Environment<AnyStore>, edited: Mapping, version: u64) -> anyhow::Result<()> {
    edited.check()?;
    let sites: Vec<String> = env
        .lansweeper
        .sites()
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let companies: Vec<(i64, String)> = companies(env)
        .await?
        .into_iter()
        .map(|(id, identifier, _)| (id, identifier))
        .collect();
    edited.check_known(&sites, &companies)?;
    let saved = mapping::save(&env.store, edited, version).await?;
    println!("mapping version {} saved", saved.version);
    print!("{}", describe(&saved));
    Ok(())
}

/// ConnectWise's companies: (id, identifier, name).
async fn companies(env: &Environment<AnyStore>) -> anyhow::Result<Vec<(i64, String, String)>> {
    let found = env
        .connectwise
        .list_complete(
            endpoint::COMPANIES,
            &ListQuery::default().with_fields(&["id", "identifier", "name"]),
        )
        .await?;
    Ok(found
        .iter()
        .filter_map(|c| {
            let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            Some((
                c.get("id")?.as_i64()?,
                text("identifier")?,
                text("name").unwrap_or_default(),
            ))
        })
        .collect())
}

/// `custom:Customer=Fabrikam->Fabrikam`, `domain=corp.local->Contoso`, `ip=10.1.0.0/16->X`.
fn parse_rule(text: &str) -> anyhow::Result<Rule> {
    let (when, company) = text
        .rsplit_once("->")
        .with_context(|| format!("rule `{text}`: write it as WHEN->COMPANY"))?;
    let (kind, value) = when
        .split_once('=')
        .with_context(|| format!("rule `{text}`: WHEN is KIND=VALUE"))?;
    let value = value.trim().to_string();
    let when = match kind.trim() {
        "domain" => Predicate::Domain { equals: value },
        "location" => Predicate::Location { equals: value },
        "ip" => Predicate::IpRange { cidr: value },
        other => match other.strip_prefix("custom:") {
            Some(name) => Predicate::CustomField {
                name: name.trim().to_string(),
                equals: value,
            },
            None => anyhow::bail!(
                "rule `{text}`: `{other}` is not custom:FIELD, domain, location or ip"
            ),
        },
    };
    Ok(Rule {
        when,
        company: company.trim().to_string(),
    })
}

/// One line per site and rule.
fn describe(mapping: &Mapping) -> String {
    let mut out = String::new();
    for site in &mapping.sites {
        for (n, rule) in site.rules.iter().enumerate() {
            let when = match &rule.when {
                Predicate::CustomField { name, equals } => {
                    format!("custom field {name} = {equals}")
                }
                Predicate::Domain { equals } => format!("domain = {equals}"),
                Predicate::Location { equals } => format!("location = {equals}"),
                Predicate::IpRange { cidr } => format!("IP in {cidr}"),
            };
            out.push_str(&format!(
                "{}\trule {}: {when} → {}\n",
                site.site,
                n + 1,
                rule.company
            ));
        }
        match &site.company {
            Some(company) => out.push_str(&format!("{}\t→ {company}\n", site.site)),
            None => out.push_str(&format!("{}\tother assets: unmapped\n", site.site)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_from_the_command_line() {
        assert_eq!(
            parse_rule("custom:Customer=Fabrikam->Fabrikam").unwrap(),
            Rule {
                when: Predicate::CustomField {
                    name: "Customer".into(),
                    equals: "Fabrikam".into()
                },
                company: "Fabrikam".into()
            }
        );
        assert_eq!(
            parse_rule("ip=10.1.0.0/16 -> Contoso").unwrap().when,
            Predicate::IpRange {
                cidr: "10.1.0.0/16".into()
            }
        );
        let error = parse_rule("colour=red->X").unwrap_err().to_string();
        assert!(error.contains("`colour` is not"), "{error}");
        assert!(parse_rule("domain=x").is_err());
    }
}
