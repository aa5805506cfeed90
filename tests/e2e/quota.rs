//! Lansweeper's quota, 150 requests a minute and 2,000 an hour per token, is shared
//! through the ledger in the store ([`shared::quota`]) by every client of the token: the
//! steps and invocations of a run, the next run, an operator's `lscw`. On the
//! simulator's clock, [`LS_SPEED`] times faster than Lansweeper's.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use lscw_tests::{LS_SPEED, ls_client_for, ls_sim_options, start_ls};
use shared::lansweeper::{LansweeperClient, LansweeperError, LansweeperOptions};
use shared::quota;
use shared::store::MemoryStore;
use simulators::lansweeper::{self as ls_sim, LansweeperSimulator};

/// Requests an invocation sends between loading the ledger and saving it.
const TURN: usize = 100;

/// A client as a process configured with `LS_QUOTA_SPEED` has it: Lansweeper's limits,
/// its windows as fast as the simulator's; a refusal is an error, never retried.
fn client(sim: &LansweeperSimulator) -> LansweeperClient {
    let mut options = LansweeperOptions::default().sped_up(LS_SPEED);
    options.retry.max_attempts = 1;
    ls_client_for(sim, ls_sim::TOKEN, options)
}

async fn simulator() -> LansweeperSimulator {
    start_ls(ls_sim::generate(&ls_sim::SiteSpec { seed: 7, assets: 1 }).unwrap()).await
}

/// What two clients of one token spent taking turns, and how long it took; or the first
/// error, and how many were answered before it.
struct Spent {
    elapsed: Duration,
    answered: usize,
    error: Option<LansweeperError>,
}

/// Two clients of one token taking turns (two processes, or a run's invocations), each
/// turn [`TURN`] requests at once, `total` in all; with a ledger, each turn loads it
/// first and saves what it spent after. Stops at the first error.
async fn spend(sim: &LansweeperSimulator, ledger: Option<&MemoryStore>, total: usize) -> Spent {
    let clients = [client(sim), client(sim)];
    let started = Instant::now();
    let mut answered = 0;
    for turn in 0..total.div_ceil(TURN) {
        let client = &clients[turn % 2];
        if let Some(store) = ledger {
            quota::load(store, client).await.unwrap();
        }
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..TURN.min(total - turn * TURN) {
            let client = client.clone();
            requests.spawn(async move { client.custom_fields().await });
        }
        while let Some(outcome) = requests.join_next().await {
            if let Err(error) = outcome.unwrap() {
                return Spent {
                    elapsed: started.elapsed(),
                    answered,
                    error: Some(error),
                };
            }
            answered += 1;
        }
        if let Some(store) = ledger {
            quota::save(store, client).await.unwrap();
        }
    }
    Spent {
        elapsed: started.elapsed(),
        answered,
        error: None,
    }
}

/// What the two clients spend: the hour's quota and then some, so the last of it must
/// wait for the hour.
const SPEND: usize = 2_200;

/// Two clients of one token, taking turns through the ledger, spend past the hour's
/// quota: the simulator refuses nothing (so no minute of theirs held more than 150
/// requests, no hour more than 2,000), each request is sent once, and the spend takes at
/// least the hour the quota makes it wait.
///
/// Breaking it looks like: a refusal, because one client did not count what the other
/// spent (the ledger not loaded or saved, or a burst of requests counted as fewer).
#[tokio::test]
async fn two_clients_sharing_the_ledger_spend_past_the_hour_s_quota_refused_nothing() {
    let sim = simulator().await;
    let hour = ls_sim_options().rate_window * 60;
    assert!(SPEND > ls_sim_options().hourly_limit);
    let store = MemoryStore::new();
    let spent = spend(&sim, Some(&store), SPEND).await;
    assert!(spent.error.is_none(), "{:?}", spent.error);
    assert_eq!(spent.answered, SPEND);
    assert_eq!(sim.rate_refusals(), 0, "the simulator refused nothing");
    assert_eq!(
        sim.control().total(),
        SPEND as u64,
        "each request sent once"
    );
    assert!(
        spent.elapsed >= hour,
        "more than an hour's quota waited for the hour: {:?}",
        spent.elapsed
    );
}

/// The same spend without the ledger, each client pacing only itself: the simulator
/// refuses it, as the test above would be refused if the ledger stopped working.
///
/// Breaking it looks like: the spend accepted whole (the simulator not holding the token
/// to its quota, or the spend too small to need sharing: the test above proving nothing).
#[tokio::test]
async fn without_the_ledger_the_same_spend_is_refused() {
    let sim = simulator().await;
    let spent = spend(&sim, None, SPEND).await;
    assert!(
        matches!(
            spent.error,
            Some(LansweeperError::Transport(
                shared::http::TransportError::RateLimited { .. }
            ))
        ),
        "{:?}",
        spent.error.map(|e| e.to_string())
    );
    assert!(spent.answered < SPEND);
    assert!(sim.rate_refusals() > 0);
}

/// What each of two clients sends at once, beside the other: [`SIDE_BY_SIDE`] requests,
/// as fast as its pacing lets it. Answers the first error, and how many were answered.
async fn side_by_side(sync: LansweeperClient, enrichment: LansweeperClient) -> Spent {
    async fn send_all(client: LansweeperClient) -> (usize, Option<LansweeperError>) {
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..SIDE_BY_SIDE {
            let client = client.clone();
            requests.spawn(async move { client.custom_fields().await });
        }
        let mut answered = 0;
        while let Some(outcome) = requests.join_next().await {
            match outcome.unwrap() {
                Ok(_) => answered += 1,
                Err(error) => return (answered, Some(error)),
            }
        }
        (answered, None)
    }
    let started = Instant::now();
    let ((a, first), (b, second)) = tokio::join!(send_all(sync), send_all(enrichment));
    Spent {
        elapsed: started.elapsed(),
        answered: a + b,
        error: first.or(second),
    }
}

/// Requests each of the two sends: two minutes of the whole window's limit.
const SIDE_BY_SIDE: usize = 300;

/// The sync's fetch and the enrichment run beside each other for hours at 100,000
/// assets: each within its share of the minute, together they stay within the
/// minute, and the simulator refuses nothing.
///
/// Breaking it looks like: a refusal, the penalty minute that any request during it
/// restarts, and both fetch and enrichment failing once their retries are spent (as
/// the 100,000-asset soak did with each pacing itself to the whole minute).
#[tokio::test]
async fn the_sync_s_fetch_beside_the_enrichment_each_in_its_share_refuse_nothing() {
    let sim = simulator().await;
    let spent = side_by_side(
        client(&sim).with_window_share(quota::SYNC_SHARE),
        client(&sim).with_window_share(quota::ENRICHMENT_SHARE),
    )
    .await;
    assert!(spent.error.is_none(), "{:?}", spent.error);
    assert_eq!(spent.answered, 2 * SIDE_BY_SIDE);
    assert_eq!(sim.rate_refusals(), 0, "the simulator refused nothing");
    // Each at its pace: the sync's 300 at two thirds of the window's limit take more
    // than two windows.
    assert!(
        spent.elapsed >= ls_sim_options().rate_window * 2,
        "{:?}",
        spent.elapsed
    );
}

/// Each pacing itself to the whole minute, the same two are refused: the test above
/// would be, if the shares stopped being applied or added up to more than the minute.
#[tokio::test]
async fn each_pacing_itself_to_the_whole_minute_the_two_are_refused() {
    let sim = simulator().await;
    let spent = side_by_side(client(&sim), client(&sim)).await;
    assert!(
        matches!(
            spent.error,
            Some(LansweeperError::Transport(
                shared::http::TransportError::RateLimited { .. }
            ))
        ),
        "{:?}",
        spent.error.map(|e| e.to_string())
    );
    assert!(sim.rate_refusals() > 0);
}

/// The shares of the minute add up to at most the whole of it.
#[test]
fn the_shares_of_the_minute_add_up_to_at_most_the_whole() {
    let (sync, enrichment) = (quota::SYNC_SHARE, quota::ENRICHMENT_SHARE);
    assert!(sync.0 * enrichment.1 + enrichment.0 * sync.1 <= sync.1 * enrichment.1);
}
