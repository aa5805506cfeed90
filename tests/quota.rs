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
