//! A device's last logged-on user as its configuration's ConnectWise contact: who the
//! user is (the e-mail addresses and the name Lansweeper's user paths give) and which
//! one contact of the company that is. Exactly one candidate or none taken: two
//! candidates are reported, never guessed between. Pure.

use std::collections::BTreeSet;

use serde_json::Value;

/// A ConnectWise contact, reduced to what identifies a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub company_id: i64,
    first_name: String,
    last_name: String,
    /// The e-mail communication items, lower-cased.
    emails: Vec<String>,
}

impl Contact {
    /// A `/company/contacts` record; none without an id or a company.
    pub fn from_record(record: &Value) -> Option<Self> {
        let text = |field: &str| {
            record
                .get(field)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_lowercase())
                .unwrap_or_default()
        };
        let emails = record
            .get("communicationItems")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(|item| {
                        item.get("communicationType")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case("Email"))
                    })
                    .filter_map(|item| item.get("value")?.as_str())
                    .map(|v| v.trim().to_lowercase())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            id: record.get("id")?.as_i64()?,
            company_id: record.get("company")?.get("id")?.as_i64()?,
            first_name: text("firstName"),
            last_name: text("lastName"),
            emails,
        })
    }
}

/// The user as Lansweeper names it (`assetBasicInfo.userName`, `.userDomain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// How the report names the user.
    pub shown: String,
    /// Whole addresses the user's e-mail may be: a user principal name, `user@domain`.
    emails: Vec<String>,
    /// A NetBIOS domain (`CONTOSO`) says only the first label of the mail domain:
    /// `jsmith` of `CONTOSO` is `jsmith@contoso.<anything>`.
    netbios: Option<(String, String)>,
    /// First and last names, when the account name is made of two (`john.smith`,
    /// `John Smith`, `john_smith`); a name like `jsmith` says neither.
    name: Option<(String, String)>,
}

impl User {
    /// None when Lansweeper knows no user.
    pub fn of(user_name: Option<&str>, user_domain: Option<&str>) -> Option<Self> {
        let raw = user_name.map(str::trim).filter(|u| !u.is_empty())?;
        // `CONTOSO\jsmith`: the domain given with the name when the domain path is empty.
        let (prefix, account) = match raw.rsplit_once('\\') {
            Some((domain, account)) => (Some(domain.trim()), account.trim()),
            None => (None, raw),
        };
        let domain = user_domain
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .or(prefix)
            .map(str::to_lowercase);
        let account = account.to_lowercase();
        let mut emails = Vec::new();
        let mut netbios = None;
        let local = if let Some((local, _)) = account.split_once('@') {
            // Already a user principal name: the domain path adds nothing to it.
            emails.push(account.clone());
            local.to_string()
        } else {
            match &domain {
                Some(d) if d.contains('.') => emails.push(format!("{account}@{d}")),
                Some(d) => netbios = Some((account.clone(), d.clone())),
                None => {}
            }
            account.clone()
        };
        let parts: Vec<&str> = local
            .split(['.', '_', ' '])
            .filter(|p| !p.is_empty())
            .collect();
        let name = match parts.as_slice() {
            [first, last] => Some(((*first).to_string(), (*last).to_string())),
            _ => None,
        };
        let shown = match (&domain, prefix, account.contains('@')) {
            (Some(d), None, false) => format!("{d}\\{account}"),
            _ => raw.to_string(),
        };
        Some(Self {
            shown,
            emails,
            netbios,
            name,
        })
    }

    fn has_email(&self, email: &str) -> bool {
        if self.emails.iter().any(|e| e == email) {
            return true;
        }
        let Some((local, netbios)) = &self.netbios else {
            return false;
        };
        email.split_once('@').is_some_and(|(l, domain)| {
            l == local && domain.split('.').next() == Some(netbios.as_str())
        })
    }
}

/// Which contact a user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    One(i64),
    None,
    /// Several contacts fit equally well: the ids, ascending.
    Several(Vec<i64>),
}

impl Resolution {
    /// What the report says of a user who is not exactly one contact.
    pub fn reason(&self, user: &User) -> Option<String> {
        match self {
            Resolution::One(_) => None,
            Resolution::None => Some(format!("contact: none (user {})", user.shown)),
            Resolution::Several(ids) => {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                Some(format!(
                    "contact: {} candidates ({}) (user {})",
                    ids.len(),
                    ids.join(", "),
                    user.shown
                ))
            }
        }
    }
}

/// The contact among `contacts` (one company's) the user is: by e-mail first, then by
/// first and last names. Several at the e-mail level never fall through to the names:
/// that would be a guess.
pub fn resolve(user: &User, contacts: &[Contact]) -> Resolution {
    let by_email: BTreeSet<i64> = contacts
        .iter()
        .filter(|c| c.emails.iter().any(|e| user.has_email(e)))
        .map(|c| c.id)
        .collect();
    let candidates = if by_email.is_empty() {
        user.name
            .as_ref()
            .map(|(first, last)| {
                contacts
                    .iter()
                    .filter(|c| c.first_name == *first && c.last_name == *last)
                    .map(|c| c.id)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        by_email
    };
    let ids: Vec<i64> = candidates.into_iter().collect();
    match ids.as_slice() {
        [] => Resolution::None,
        [one] => Resolution::One(*one),
        _ => Resolution::Several(ids),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contact(id: i64, first: &str, last: &str, email: Option<&str>) -> Contact {
        let items: Vec<Value> = email
            .map(|e| json!({"communicationType": "Email", "value": e}))
            .into_iter()
            .chain([json!({"communicationType": "Phone", "value": "555"})])
            .collect();
        Contact::from_record(&json!({"id": id, "company": {"id": 1}, "firstName": first,
            "lastName": last, "communicationItems": items}))
        .unwrap()
    }

    fn contacts() -> Vec<Contact> {
        vec![
            contact(1, "John", "Smith", Some("John.Smith@Contoso.com")),
            contact(2, "Jane", "Doe", Some("jdoe@contoso.com")),
            contact(3, "Jane", "Doe", None),
            contact(4, "Ann", "Lee", None),
        ]
    }

    #[test]
    fn the_user_s_forms_find_the_contact_by_e_mail() {
        let found = |name: &str, domain: Option<&str>| {
            resolve(&User::of(Some(name), domain).unwrap(), &contacts())
        };
        assert_eq!(found("john.smith", Some("contoso.com")), Resolution::One(1));
        assert_eq!(found("JOHN.SMITH@contoso.com", None), Resolution::One(1));
        assert_eq!(found("jdoe", Some("CONTOSO")), Resolution::One(2));
        assert_eq!(found("CONTOSO\\jdoe", None), Resolution::One(2));
        // The e-mail decides before the names: two Jane Does, one of them by e-mail.
        assert_eq!(found("jdoe@contoso.com", None), Resolution::One(2));
    }

    #[test]
    fn names_decide_only_alone_and_two_are_never_guessed_between() {
        let found =
            |name: &str| resolve(&User::of(Some(name), Some("x.org")).unwrap(), &contacts());
        assert_eq!(found("ann.lee"), Resolution::One(4));
        assert_eq!(found("Ann Lee"), Resolution::One(4));
        assert_eq!(found("jane.doe"), Resolution::Several(vec![2, 3]));
        assert_eq!(found("alee"), Resolution::None);
        let user = User::of(Some("jane.doe"), Some("x.org")).unwrap();
        assert_eq!(
            Resolution::Several(vec![2, 3]).reason(&user).unwrap(),
            "contact: 2 candidates (2, 3) (user x.org\\jane.doe)"
        );
        assert!(User::of(Some("  "), Some("x.org")).is_none());
    }
}
