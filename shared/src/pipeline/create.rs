//! `bulk-create`'s batch, created at most once per asset whatever fails and whatever is
//! retried.
//!
//! A POST whose answer is lost (a gateway 5xx, a reset connection, a timeout) may have
//! been saved, so it is never simply sent again. Before a batch is sent, an intent is
//! recorded in the store; a step that finds its batch's intent (a Step Functions retry,
//! a Lambda killed between sending and recording) first reads which of the batch's
//! assets ConnectWise already holds, by `ls_asset_id`, and adopts those as created.
//! After a lost answer, or items that failed on ConnectWise's side, the same read comes
//! before the one resend of what is still missing. A batch whose result is recorded is
//! done: entering the step again sends nothing.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;

use super::batch::{
    BatchInput, BatchOutput, Healing, finish_batch, per_item, reason, stale_reference,
};
use super::run_trail::{Names, created_entry};
use crate::calls::{ApiCalls, CallMeter};
use crate::clock;
use crate::connectwise::linked::configurations_linked_to;
use crate::connectwise::{ConnectWiseClient, bulk};
use crate::error::PipelineError;
use crate::layout::{self, BatchRecord, CreateIntent, CreateItem};
use crate::settings::SyncSettings;
use crate::store::{Claim, Store, StoreExt};

/// Sends of one item at most: the first, and one after reading it was not saved.
const MAX_SENDS: u32 = 2;

/// Creates one batch through the bulk endpoint, at most once per asset.
pub async fn bulk_create<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
) -> Result<BatchOutput, PipelineError> {
    if let Some(done) = recorded_result(store, input).await? {
        tracing::info!(batch = %input.batch, "batch already written; nothing sent");
        return Ok(done);
    }
    // Only one invocation sends a batch at a time (Step Functions may retry one that is
    // still running): the others wait for its result.
    let claimant = format!("{}-{:016x}", input.run_id, fastrand::u64(..));
    if let Some(done) = claim(store, input, &claimant).await? {
        tracing::info!(batch = %input.batch, "batch written by another invocation; nothing sent");
        return Ok(done);
    }
    let outcome = send(connectwise, store, settings, input, &claimant).await;
    // Given up by letting it lapse now (the functions may not delete from the table); if
    // another invocation took it over meanwhile, it is that one's.
    store
        .claim(
            &layout::batch_claim(&input.batch),
            &claimant,
            claimant.clone(),
            Duration::ZERO,
        )
        .await?;
    outcome
}

/// How long a claim on a batch lasts unless renewed: it is renewed before every send and
/// before the result is recorded, and lasts longer than bulk-create may run (300 s in
/// the template) and than one request with its retries (2 minutes of retries, then one
/// more attempt's minute), so only a claimant that died leaves it to lapse.
pub const CLAIM_TTL: Duration = Duration::from_secs(360);

/// How often a waiting invocation looks for the claimant's result.
const CLAIM_POLL: Duration = Duration::from_millis(500);

/// Takes the batch's claim for `claimant`; while another invocation holds it, waits for
/// that one's result (answered) or for its claim to lapse (then takes it).
async fn claim<S: Store>(
    store: &S,
    input: &BatchInput,
    claimant: &str,
) -> Result<Option<BatchOutput>, PipelineError> {
    let key = layout::batch_claim(&input.batch);
    loop {
        match store
            .claim(&key, claimant, claimant.to_string(), CLAIM_TTL)
            .await?
        {
            Claim::Taken => return Ok(None),
            Claim::HeldBy(_) => {
                if let Some(done) = recorded_result(store, input).await? {
                    return Ok(Some(done));
                }
                tokio::time::sleep(CLAIM_POLL).await;
            }
        }
    }
}

/// Renews the batch's claim before a send; an error, and nothing sent, when another
/// invocation took it over (this one was too slow to be taken for alive).
async fn renew_claim<S: Store>(
    store: &S,
    batch: &str,
    claimant: &str,
) -> Result<(), PipelineError> {
    match store
        .claim(
            &layout::batch_claim(batch),
            claimant,
            claimant.to_string(),
            CLAIM_TTL,
        )
        .await?
    {
        Claim::Taken => Ok(()),
        Claim::HeldBy(by) => Err(PipelineError::BatchTakenOver {
            batch: batch.to_string(),
            by,
        }),
    }
}

/// Sends the batch under its claim: reconciled first if a step entered it before.
async fn send<S: Store>(
    connectwise: &ConnectWiseClient,
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
    claimant: &str,
) -> Result<BatchOutput, PipelineError> {
    if let Some(done) = recorded_result(store, input).await? {
        // Written by the claimant before this one took over.
        return Ok(done);
    }
    let meter = CallMeter::connectwise(connectwise);
    let mut items: Vec<CreateItem> = store.require(&input.batch).await?;
    let mut outcomes: HashMap<usize, Result<(), String>> = HashMap::new();
    // The configurations created, by item: what the trail names (a revert retires them).
    let mut ids: HashMap<usize, i64> = HashMap::new();
    let mut pending: Vec<usize> = (0..items.len()).collect();
    if record_intent(store, settings, &input.batch).await? {
        // Entered before: the batch may be in ConnectWise already.
        adopt_saved(connectwise, &items, &mut pending, &mut outcomes, &mut ids).await?;
    }

    let mut sends = 0;
    let mut max_sends = MAX_SENDS;
    let mut healing = Healing::new(connectwise, settings, &input.run_id);
    while !pending.is_empty() {
        renew_claim(store, &input.batch, claimant).await?;
        sends += 1;
        let sent = pending.clone();
        let last_send = sends >= max_sends;
        let bodies: Vec<_> = pending.iter().map(|&i| items[i].body.clone()).collect();
        let mut stale = Vec::new();
        // Refused whole for its input: nothing of it was saved, each item carries the
        // refusal (a reference it names is healed as an item's would be).
        let (answer, whole_refusal) = per_item(
            bulk(connectwise, Method::POST, &bodies, false).await,
            bodies.len(),
        );
        let uncertain: Vec<usize> = match answer {
            Ok(results) => {
                let mut uncertain = Vec::new();
                for (&index, result) in pending.iter().zip(results) {
                    if result.success {
                        if let Some(id) = result.data.as_ref().and_then(|d| d.get("id")?.as_i64()) {
                            ids.insert(index, id);
                        }
                        outcomes.insert(index, Ok(()));
                    } else if result.status_code >= 500 && !last_send {
                        uncertain.push(index);
                    } else {
                        if let Some(reference) = stale_reference(&result, &items[index].body) {
                            stale.push((index, reference));
                        }
                        outcomes.insert(index, Err(reason(&result)));
                    }
                }
                uncertain
            }
            Err(error) if error.may_have_been_applied() => {
                tracing::warn!(batch = %input.batch, %error, "bulk create answer lost; reading what was saved");
                adopt_saved(connectwise, &items, &mut pending, &mut outcomes, &mut ids).await?;
                if last_send {
                    for &index in &pending {
                        outcomes.insert(
                            index,
                            Err(format!(
                                "not created: ConnectWise's answer was lost {sends} times ({error})"
                            )),
                        );
                    }
                    Vec::new()
                } else {
                    pending.clone()
                }
            }
            Err(other) => return Err(other.into()),
        };
        pending = uncertain;
        if !pending.is_empty() {
            adopt_saved(connectwise, &items, &mut pending, &mut outcomes, &mut ids).await?;
        }
        // Refused for a reference ConnectWise no longer has: resolved again and sent once
        // more with the new id, in this run (refused items were not saved: no duplicate).
        let again = healing.round(store, &stale, whole_refusal, &sent).await?;
        max_sends += u32::from(!again.is_empty());
        for index in again {
            healing.apply(&mut items[index].body);
            outcomes.remove(&index);
            if !pending.contains(&index) {
                pending.push(index);
            }
        }
    }
    renew_claim(store, &input.batch, claimant).await?;
    finish_created(store, settings, input, &meter, &items, outcomes, &ids).await
}

/// Records the batch's outcome and trail: each creation with the id ConnectWise
/// answered (or adopted), the references and custom fields of its body by name.
async fn finish_created<S: Store>(
    store: &S,
    settings: &SyncSettings,
    input: &BatchInput,
    meter: &CallMeter<'_>,
    items: &[CreateItem],
    outcomes: HashMap<usize, Result<(), String>>,
    ids: &HashMap<usize, i64>,
) -> Result<BatchOutput, PipelineError> {
    let names = Names::of_run(store, &input.run_id).await?;
    let by_key: HashMap<&str, (usize, &CreateItem)> = items
        .iter()
        .enumerate()
        .map(|(index, item)| (item.asset_key.as_str(), (index, item)))
        .collect();
    let trail_of = |key: &str| {
        let (index, item) = by_key.get(key)?;
        Some(created_entry(item, ids.get(index).copied(), &names))
    };
    let outcomes = by_asset(items, outcomes);
    finish_batch(store, settings, input, meter, outcomes, trail_of).await
}

/// Each item's outcome by its asset, in the batch's order.
fn by_asset(
    items: &[CreateItem],
    mut outcomes: HashMap<usize, Result<(), String>>,
) -> Vec<(String, Result<(), String>)> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let outcome = outcomes
                .remove(&index)
                .unwrap_or_else(|| Err("not created: no outcome recorded".into()));
            (item.asset_key.clone(), outcome)
        })
        .collect()
}

/// The outcome of a batch whose result is recorded: it is done, nothing is sent again.
async fn recorded_result<S: Store>(
    store: &S,
    input: &BatchInput,
) -> Result<Option<BatchOutput>, PipelineError> {
    let done: Option<BatchRecord> = store.get(&layout::batch_result(&input.batch)).await?;
    Ok(done.map(|done| BatchOutput {
        run_id: input.run_id.clone(),
        batch: input.batch.clone(),
        written: done.written.len() as u64,
        failed: done.failed.len() as u64,
        api_calls: ApiCalls::default(),
    }))
}

/// Records that the batch is about to be sent; answers whether a step entered it before
/// (and so may have sent it).
async fn record_intent<S: Store>(
    store: &S,
    settings: &SyncSettings,
    batch: &str,
) -> Result<bool, PipelineError> {
    let before: Option<CreateIntent> = store.get(&layout::batch_intent(batch)).await?;
    let intent = CreateIntent {
        entries: before.as_ref().map_or(0, |i| i.entries) + 1,
        since: clock::epoch_seconds(),
    };
    store
        .put(&layout::batch_intent(batch), &intent, settings.staging_ttl)
        .await?;
    Ok(before.is_some())
}

/// Reads which of the pending items' assets ConnectWise already holds a configuration
/// for, takes them out of `pending` and counts them created.
async fn adopt_saved(
    connectwise: &ConnectWiseClient,
    items: &[CreateItem],
    pending: &mut Vec<usize>,
    outcomes: &mut HashMap<usize, Result<(), String>>,
    created: &mut HashMap<usize, i64>,
) -> Result<(), PipelineError> {
    let keys: Vec<String> = pending
        .iter()
        .map(|&i| items[i].asset_key.clone())
        .collect();
    let saved = configurations_linked_to(connectwise, &keys).await?;
    pending.retain(|&index| {
        let key = &items[index].asset_key;
        match saved.get(&key.to_lowercase()) {
            Some(ids) => {
                tracing::info!(asset_key = %key, configurations = ?ids, "already saved; adopted, not sent again");
                // Several claim it: the revert finds them by the link and says so.
                if let [id] = ids.as_slice() {
                    created.insert(index, *id);
                }
                outcomes.insert(index, Ok(()));
                false
            }
            None => true,
        }
    });
    Ok(())
}
