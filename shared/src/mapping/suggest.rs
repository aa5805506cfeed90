//! Proposed site → company pairs, by how alike their names are once case, punctuation
//! and legal suffixes are set aside. Pure; nothing is applied from here.

use std::collections::HashSet;

use serde::Serialize;

/// Words that say what kind of company it is, not which.
const LEGAL_SUFFIXES: &[&str] = &[
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "plc",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "ag",
    "kg",
    "bv",
    "nv",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "ab",
    "as",
    "oy",
    "pty",
    "pte",
    "kk",
    "group",
    "holding",
    "holdings",
];

/// Suggestions below this score are not made.
pub const MIN_SCORE: f64 = 0.6;

/// A proposed pair and how alike the names are (1.0: the same once normalised).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub site: String,
    pub site_name: String,
    pub company: String,
    pub company_name: String,
    pub score: f64,
    /// The next best company, when it scores close enough to be a doubt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<String>,
}

/// A name reduced to what identifies it: "Contoso Ltd." and "CONTOSO" give "contoso".
pub fn company_name_key(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words: Vec<&str> = lowered.split_whitespace().collect();
    // "B.V." becomes "b v": joined single letters are one word again.
    let mut joined: Vec<String> = Vec::new();
    let mut letters = String::new();
    for word in words {
        if word.chars().count() == 1 {
            letters.push_str(word);
        } else {
            if !letters.is_empty() {
                joined.push(std::mem::take(&mut letters));
            }
            joined.push(word.to_string());
        }
    }
    if !letters.is_empty() {
        joined.push(letters);
    }
    while joined.len() > 1
        && joined
            .last()
            .is_some_and(|w| LEGAL_SUFFIXES.contains(&w.as_str()))
    {
        joined.pop();
    }
    joined.join(" ")
}

/// Dice coefficient of the character pairs of two keys: 1.0 for equal keys.
fn likeness(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let pairs = |s: &str| -> HashSet<(char, char)> {
        let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        chars.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (x, y) = (pairs(a), pairs(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss, reason = "name lengths are small")]
    let score = 2.0 * x.intersection(&y).count() as f64 / (x.len() + y.len()) as f64;
    score
}

/// For each site (id, name), the company (identifier, name) most alike by name or
/// identifier, when alike enough.
pub fn suggest(sites: &[(String, String)], companies: &[(String, String)]) -> Vec<Suggestion> {
    let keyed: Vec<(&String, &String, String, String)> = companies
        .iter()
        .map(|(identifier, name)| {
            (
                identifier,
                name,
                company_name_key(name),
                company_name_key(identifier),
            )
        })
        .collect();
    sites
        .iter()
        .filter_map(|(site, site_name)| {
            let key = company_name_key(site_name);
            let mut scored: Vec<(f64, &String, &String)> = keyed
                .iter()
                .map(|(identifier, name, by_name, by_identifier)| {
                    let score = likeness(&key, by_name).max(likeness(&key, by_identifier));
                    (score, *identifier, *name)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let (score, identifier, name) = *scored.first()?;
            (score >= MIN_SCORE).then(|| Suggestion {
                site: site.clone(),
                site_name: site_name.clone(),
                company: identifier.clone(),
                company_name: name.clone(),
                score: (score * 100.0).round() / 100.0,
                runner_up: scored
                    .get(1)
                    .filter(|(other, ..)| *other >= MIN_SCORE && score - other < 0.15)
                    .map(|(_, identifier, _)| (*identifier).clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
            .collect()
    }

    #[test]
    fn names_compare_without_case_punctuation_and_legal_suffixes() {
        assert_eq!(company_name_key("Contoso Ltd."), "contoso");
        assert_eq!(company_name_key("CONTOSO"), "contoso");
        assert_eq!(company_name_key("Fabrikam B.V."), "fabrikam");
        assert_eq!(
            company_name_key("Northwind Traders, Inc"),
            "northwind traders"
        );
        assert_eq!(company_name_key("Ltd"), "ltd", "a name is never emptied");
    }

    #[test]
    fn each_site_gets_its_closest_company() {
        let sites = pairs(&[
            ("s1", "Contoso Ltd."),
            ("s2", "Fabrikam B.V."),
            ("s3", "Totally Unrelated"),
        ]);
        let companies = pairs(&[
            ("CONTOSO", "CONTOSO"),
            ("Fabrikam", "Fabrikam Inc"),
            ("FabrikamX", "Fabrikan Holdings"),
        ]);
        let found = suggest(&sites, &companies);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].site.as_str(), found[0].company.as_str()),
            ("s1", "CONTOSO")
        );
        assert!((found[0].score - 1.0).abs() < f64::EPSILON);
        assert_eq!(found[1].company, "Fabrikam");
        assert_eq!(
            found[1].runner_up.as_deref(),
            Some("FabrikamX"),
            "a near miss is shown"
        );
    }
}
