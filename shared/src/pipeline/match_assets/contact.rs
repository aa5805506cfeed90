//! The contact each asset's last user is, found before matching compares: the contacts
//! of every company a user's asset goes to, read once for the run in one listing, and
//! each asset given the id of its one contact (at [`CONTACT_PATH`]), so the create and
//! the field comparison write it as any other field. An asset whose user is no contact,
//! or several, is reported and gets none: its configuration's contact stays as it is.

use std::collections::{BTreeSet, HashMap};

use crate::connectwise::{ConnectWiseClient, contacts as cw_contacts};
use crate::contacts::{self, Contact, Resolution, User};
use crate::error::PipelineError;
use crate::matching::{CONTACT_PATH, Compact, Fields, Target};
use crate::references;
use crate::staging::Rejected;

/// An asset with a user, and the company it goes to.
struct Wanted {
    index: usize,
    company_id: i64,
    user: User,
}

/// `assets` with the contact of each user found, and the assets whose user is not
/// exactly one contact. No request when no asset has a user.
pub(super) async fn find(
    connectwise: &ConnectWiseClient,
    mut assets: Vec<Compact>,
    company_ids: &HashMap<String, i64>,
) -> Result<(Vec<Compact>, Vec<Rejected>), PipelineError> {
    let wanted: Vec<Wanted> = assets
        .iter()
        .enumerate()
        .filter(|(_, asset)| asset.at("retired").as_deref() != Some("true"))
        .filter_map(|(index, asset)| {
            let user = User::of(
                asset.at("userName").as_deref(),
                asset.at("userDomain").as_deref(),
            )?;
            let company_id = *company_ids.get(&references::name_key(
                &asset.at("company").unwrap_or_default(),
            ))?;
            Some(Wanted {
                index,
                company_id,
                user,
            })
        })
        .collect();
    if wanted.is_empty() {
        return Ok((assets, Vec::new()));
    }
    let companies: BTreeSet<i64> = wanted.iter().map(|w| w.company_id).collect();
    let companies: Vec<i64> = companies.into_iter().collect();
    let mut by_company: HashMap<i64, Vec<Contact>> = HashMap::new();
    for contact in cw_contacts::of_companies(connectwise, &companies).await? {
        by_company
            .entry(contact.company_id)
            .or_default()
            .push(contact);
    }
    let target = Target::Field(CONTACT_PATH.to_string());
    let mut reports = Vec::new();
    for Wanted {
        index,
        company_id,
        user,
    } in wanted
    {
        let company = by_company.get(&company_id).map_or(&[][..], Vec::as_slice);
        let resolution = contacts::resolve(&user, company);
        if let Resolution::One(id) = resolution {
            assets[index] = assets[index].with_text(&target, &id.to_string());
        } else if let Some(reason) = resolution.reason(&user) {
            reports.push(Rejected {
                asset_key: assets[index].at("key").unwrap_or_default(),
                reason,
            });
        }
    }
    Ok((assets, reports))
}
