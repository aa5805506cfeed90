//! The active contacts of companies, read in as few requests as the URL allows: one
//! `company/id in (…)` listing for every company at once, split only where the list
//! would make the URL too long.

use super::client::ConnectWiseClient;
use super::condition::Field;
use super::error::ConnectWiseError;
use super::query::{ListQuery, MAX_CONDITION_CHARS, endpoint};
use crate::contacts::Contact;

/// Only what identifies a user: names and communication items.
const FIELDS: &str = "id,firstName,lastName,company/id,communicationItems";

/// The active contacts of `companies`. No `childConditions` narrow the read: a contact
/// found by name needs no e-mail, so every active contact of the company is a candidate.
///
/// # Errors
/// A request ConnectWise refused or that could not be made.
pub async fn of_companies(
    connectwise: &ConnectWiseClient,
    companies: &[i64],
) -> Result<Vec<Contact>, ConnectWiseError> {
    if companies.is_empty() {
        return Ok(Vec::new());
    }
    let active = Field::new("inactiveFlag")?.eq(false);
    let mut contacts = Vec::new();
    for chunk in
        Field::new("company/id")?.is_in_chunks(companies.iter().copied(), MAX_CONDITION_CHARS)
    {
        let query = ListQuery {
            conditions: Some(chunk.and(&active).as_str().to_string()),
            fields: Some(FIELDS.into()),
            ..ListQuery::default()
        };
        let records = connectwise.list(endpoint::CONTACTS, &query).await?;
        contacts.extend(records.iter().filter_map(Contact::from_record));
    }
    Ok(contacts)
}
