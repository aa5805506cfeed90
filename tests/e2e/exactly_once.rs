//! A configuration is created at most once per Lansweeper asset, whatever fails and
//! whatever is retried: answers lost after ConnectWise saved the write, a step run
//! twice, a group retried halfway, a process killed between sending and recording, two
//! runs at once, a listing cut short. Each test checks that no asset has two
//! configurations, that the report accounts for every asset, and that a clean rerun
//! ends in exactly the state a clean run gives.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use shared::connectwise::ConnectWiseError;
use shared::error::PipelineError;
use shared::pipeline::{self, BatchInput, GroupInput, WriteKind};
use shared::store::{Claim, MemoryStore, StoreError, Watched};
use simulators::control::LostAnswer;

use lscw_tests::dying::dies_before_recording;
use lscw_tests::world::{
    clean_state, create_groups, cw_client_timing_out, matched, settings, state, sync, sync_on,
    world,
};

/// The client's timeout in the tests of answers that come too late: far longer than any
/// answer of the simulator takes on a busy machine, so only the injected ones time out.
const LATE_TIMEOUT: Duration = Duration::from_secs(2);

/// An answer well after [`LATE_TIMEOUT`].
const LATE: LostAnswer = LostAnswer::Late(Duration::from_secs(5));

/// Where configurations are written: created (bulk POST) and modified (bulk PUT).
const CONFIGURATION_WRITES: &str = "/company/configurations/bulk";

/// How many answers each rule loses in `writes` writes, as the simulator schedules them:
/// the `n`th write loses its answer to the first rule whose `every` divides `n`.
fn scheduled(rules: &[(LostAnswer, u64)], writes: u64) -> Vec<u64> {
    let mut lost = vec![0; rules.len()];
    for write in 1..=writes {
        if let Some(rule) = rules
            .iter()
            .position(|(_, every)| write.is_multiple_of(*every))
        {
            lost[rule] += 1;
        }
    }
    lost
}

/// A sync whose writes to paths under `to` lose their answers by `rules`: the schedule
/// fired (each rule lost answers, exactly as many as it says for the writes made, the
/// answer of a configuration create among them), the run reconciled every lost answer
/// (nothing failed, no asset has two configurations: the state of a clean run), and
/// reruns change nothing.
///
/// Breaking it looks like: an asset with two configurations after a create whose answer
/// was lost was sent again, or a failed asset the run could have found was saved.
async fn lost_answers_create_nothing_twice(to: &str, rules: &[(LostAnswer, u64)]) {
    let mut world = world(240).await;
    if rules
        .iter()
        .any(|(how, _)| matches!(how, LostAnswer::Late(_)))
    {
        world.cw_client = cw_client_timing_out(&world.cw, LATE_TIMEOUT).await;
    }
    let control = world.cw.control();
    control.lose_answers_to(to, rules);
    let faulty = sync(&world).await;

    let writes = control.writes_seen();
    let sent: u64 = control
        .requests()
        .iter()
        .filter(|(key, _)| !key.starts_with("GET ") && key.contains(&format!(" {to}")))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, sent, "every write under {to} met the schedule");
    let lost = control.answers_lost();
    for ((how, every, lost), expected) in lost.iter().zip(scheduled(rules, writes)) {
        assert!(*lost > 0, "{how:?} lost no answer in {writes} writes");
        assert_eq!(
            *lost, expected,
            "{how:?}: every {every}th of {writes} writes"
        );
    }
    assert!(
        control.answers_lost_at("POST /company/configurations/bulk") > 0,
        "a configuration create lost its answer: {lost:?} in {writes} writes"
    );
    assert!(faulty.counts.created > 0, "{faulty:#?}");
    assert!(
        faulty.failed.is_empty(),
        "every lost answer reconciled in the run: {:#?}",
        faulty.failed
    );
    let clean = clean_state(240).await;
    assert_eq!(state(&world.cw), clean, "{rules:?}");

    control.lose_answers(&[]);
    let rerun = sync(&world).await;
    assert_eq!(
        (rerun.counts.created, rerun.counts.modified),
        (0, 0),
        "the faulty run left nothing to do: {rerun:#?}"
    );
    assert_eq!(state(&world.cw), clean, "{rules:?}");
}

/// Every other write answered 502 after ConnectWise saved it: as
/// [`lost_answers_create_nothing_twice`] says.
#[tokio::test]
async fn a_502_after_the_save_creates_nothing_twice() {
    lost_answers_create_nothing_twice("/", &[(LostAnswer::BadGateway, 2)]).await;
}

/// Every other write's connection dropped after ConnectWise saved it: as
/// [`lost_answers_create_nothing_twice`] says.
#[tokio::test]
async fn a_connection_dropped_after_the_save_creates_nothing_twice() {
    lost_answers_create_nothing_twice("/", &[(LostAnswer::DropConnection, 2)]).await;
}

/// Every other configuration write answered after the client gave up: as
/// [`lost_answers_create_nothing_twice`] says.
#[tokio::test]
async fn an_answer_after_the_client_s_timeout_creates_nothing_twice() {
    // Every other configuration write: each late answer costs the client its timeout.
    lost_answers_create_nothing_twice(CONFIGURATION_WRITES, &[(LATE, 2)]).await;
}

/// All three ways of losing an answer, mixed: as [`lost_answers_create_nothing_twice`]
/// says.
#[tokio::test]
async fn every_kind_of_lost_answer_mixed_creates_nothing_twice() {
    // Half of all writes lose their answer, never more than three in a row: within the
    // retry budget of an idempotent PUT.
    lost_answers_create_nothing_twice(
        "/",
        &[
            (LostAnswer::BadGateway, 4),
            (LostAnswer::DropConnection, 5),
            (LATE, 7),
        ],
    )
    .await;
}

/// A bulk create whose answer is lost is read back and adopted, never sent again.
///
/// Breaking it looks like: a second POST of the batch (and its configurations twice), or
/// the batch counted failed though ConnectWise saved it.
#[tokio::test]
async fn a_lost_answer_is_never_resent_blindly() {
    let world = world(120).await;
    let matched = matched(&world, "run-lost").await;
    let batch = create_groups(&world, &matched).await[0][0].clone();
    // Every write's answer is lost: the batch is saved once, found, and adopted.
    world
        .cw
        .control()
        .lose_answers(&[(LostAnswer::BadGateway, 1)]);
    let input = BatchInput {
        run_id: "run-lost".into(),
        batch,
    };
    let output = pipeline::bulk_create(&world.cw_client, &world.store, &settings(), &input)
        .await
        .unwrap();
    assert_eq!(output.failed, 0);
    assert_eq!(output.written, matched.to_create.min(50));
    assert_eq!(
        world
            .cw
            .control()
            .count("POST /company/configurations/bulk"),
        1,
        "sent once; the lost answer was followed by a read, not a resend"
    );
    assert_eq!(
        world.cw.control().answers_lost(),
        [(LostAnswer::BadGateway, 1, 1)],
        "the one write lost its answer"
    );
    state(&world.cw);
}

#[tokio::test]
async fn a_step_invoked_twice_with_the_same_input_creates_once() {
    let world = world(160).await;
    let matched = matched(&world, "run-twice").await;
    let group = GroupInput {
        run_id: "run-twice".into(),
        batches: create_groups(&world, &matched).await[0].clone(),
    };
    let first = pipeline::write_group(
        &world.cw_client,
        &world.store,
        &settings(),
        &group,
        WriteKind::Create,
    )
    .await
    .unwrap();
    let posts = world.cw.control().count("POST ");
    let second = pipeline::write_group(
        &world.cw_client,
        &world.store,
        &settings(),
        &group,
        WriteKind::Create,
    )
    .await
    .unwrap();
    assert_eq!(
        world.cw.control().count("POST "),
        posts,
        "nothing sent again"
    );
    assert_eq!(
        (second.written, second.failed),
        (first.written, first.failed)
    );
    state(&world.cw);
}

#[tokio::test]
async fn a_group_retried_after_dying_halfway_creates_each_batch_once() {
    let world = world(600).await;
    let matched = matched(&world, "run-half").await;
    let batches = create_groups(&world, &matched).await[0].clone();
    assert!(batches.len() >= 4, "{} batches", batches.len());
    let dying = dies_before_recording(&world.store, batches[batches.len() / 2].clone());
    let group = GroupInput {
        run_id: "run-half".into(),
        batches: batches.clone(),
    };
    let killed = pipeline::write_group(
        &world.cw_client,
        &dying,
        &settings(),
        &group,
        WriteKind::Create,
    )
    .await;
    assert!(killed.is_err(), "the invocation died");
    let sent = world
        .cw
        .control()
        .count("POST /company/configurations/bulk");
    assert_eq!(
        sent as usize,
        batches.len() / 2 + 1,
        "died right after sending"
    );

    // The Step Functions retry runs the whole group again.
    let retried = pipeline::write_group(
        &world.cw_client,
        &world.store,
        &settings(),
        &group,
        WriteKind::Create,
    )
    .await
    .unwrap();
    assert_eq!(retried.failed, 0);
    assert_eq!(
        world
            .cw
            .control()
            .count("POST /company/configurations/bulk") as usize,
        batches.len(),
        "every batch sent exactly once over both invocations"
    );
    let report = pipeline::report(&world.store, "run-half", false)
        .await
        .unwrap();
    assert_eq!(report.accounted(), report.assets, "{report:#?}");
    state(&world.cw);
    shared::lease::release(&world.store, "run-half")
        .await
        .unwrap();
    sync(&world).await;
    assert_eq!(state(&world.cw), clean_state(600).await);
}

#[tokio::test]
async fn a_batch_killed_between_send_and_record_is_adopted_when_invoked_again() {
    let world = world(120).await;
    let matched = matched(&world, "run-killed").await;
    let input = BatchInput {
        run_id: "run-killed".into(),
        batch: create_groups(&world, &matched).await[0][0].clone(),
    };
    let dying = dies_before_recording(&world.store, input.batch.clone());
    assert!(
        pipeline::bulk_create(&world.cw_client, &dying, &settings(), &input)
            .await
            .is_err()
    );
    let posts = world.cw.control().count("POST ");
    let again = pipeline::bulk_create(&world.cw_client, &world.store, &settings(), &input)
        .await
        .unwrap();
    assert_eq!(
        world.cw.control().count("POST "),
        posts,
        "adopted, not resent"
    );
    assert_eq!(again.written, matched.to_create.min(50));
    state(&world.cw);
}

/// A store where the first two claims of the lease wait for each other, so both runs reach
/// the claim together and the store decides between them; what each claim came to is
/// kept (owner, claim), in order.
/// Each claim of the lease: its owner, and what it came to.
type Claims = Arc<Mutex<Vec<(String, Claim)>>>;

fn contested_lease() -> (Watched<MemoryStore>, Claims) {
    let together = Arc::new(tokio::sync::Barrier::new(2));
    let entered = AtomicUsize::new(0);
    let claims = Arc::new(Mutex::new(Vec::new()));
    let kept = claims.clone();
    let store = Watched::new(MemoryStore::new())
        .before_claim(move |key, _| {
            let meets = key == shared::layout::LEASE && entered.fetch_add(1, Ordering::SeqCst) < 2;
            let together = together.clone();
            Box::pin(async move {
                if meets {
                    // A run that never reaches the claim fails the other, rather than
                    // hanging it.
                    tokio::time::timeout(Duration::from_secs(30), together.wait())
                        .await
                        .map_err(|_| {
                            StoreError::Backend("the other run never claimed the lease".into())
                        })?;
                }
                Ok(None)
            })
        })
        .after_claim(move |key, owner, claim| {
            if key == shared::layout::LEASE {
                kept.lock()
                    .unwrap()
                    .push((owner.to_string(), claim.clone()));
            }
        });
    (store, claims)
}

/// Two runs started at once, on two threads, both at the lease's claim together:
/// exactly one takes the lease and writes, the other is told who holds it and writes
/// nothing, and every asset has one configuration. Again and again, whichever wins.
///
/// Breaking it looks like: both runs writing (an asset with two configurations, more
/// writes than one run makes), or neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_together_write_once() {
    const ASSETS: usize = 120;
    let clean = world(ASSETS).await;
    sync(&clean).await;
    let (clean_state, clean_writes) = (state(&clean.cw), clean.cw.control().writes());
    let mut wins = [0; 2];
    for iteration in 0..20 {
        let world = Arc::new(world(ASSETS).await);
        let (store, claims) = contested_lease();
        let store = Arc::new(store);
        let start = || {
            let (world, store) = (world.clone(), store.clone());
            tokio::spawn(async move { sync_on(&world, &*store).await })
        };
        let (a, b) = (start(), start());
        let runs = [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()];
        let winner = usize::from(runs[0].skipped_for.is_some());
        wins[winner] += 1;
        let (ran, skipped) = (&runs[winner], &runs[1 - winner]);
        assert!(ran.skipped_for.is_none(), "iteration {iteration}: {ran:#?}");
        assert_eq!(
            skipped.skipped_for.as_ref().map(|h| h.run_id.as_str()),
            Some(ran.run_id.as_str()),
            "iteration {iteration}: the other run is told who holds the lease"
        );
        assert_eq!(
            (
                skipped.counts.created,
                skipped.counts.modified,
                skipped.assets
            ),
            (0, 0, 0),
            "iteration {iteration}"
        );
        assert_eq!(ran.accounted(), ran.assets, "iteration {iteration}");
        // The first two claims were the contest: the winner's taken, the other's refused
        // naming the winner.
        let mut contest: Vec<(String, Option<String>)> = claims.lock().unwrap()[..2]
            .iter()
            .map(|(owner, claim)| {
                let holder = match claim {
                    Claim::Taken => None,
                    Claim::HeldBy(value) => Some(
                        serde_json::from_str::<shared::layout::LeaseHolder>(value)
                            .unwrap()
                            .run_id,
                    ),
                };
                (owner.clone(), holder)
            })
            .collect();
        contest.sort_by_key(|(_, holder)| holder.is_some());
        assert_eq!(
            contest,
            [
                (ran.run_id.clone(), None),
                (skipped.run_id.clone(), Some(ran.run_id.clone())),
            ],
            "iteration {iteration}: both claimed the lease, the store gave it to one"
        );
        assert_eq!(
            world.cw.control().writes(),
            clean_writes,
            "iteration {iteration}: one run's writes"
        );
        assert_eq!(state(&world.cw), clean_state, "iteration {iteration}");
        assert_eq!(
            shared::lease::holder(&*store).await.unwrap(),
            None,
            "iteration {iteration}: the run gave its lease up"
        );
    }
    eprintln!("wins of the first and second run started: {wins:?}");
}

#[tokio::test]
async fn a_listing_cut_short_stops_the_run_before_any_write() {
    let world = world(2_100).await;
    sync(&world).await;
    // New assets to create and a changed one to modify, then a listing that loses its
    // `Link` after the first page of 1,000.
    world.ls.with_site(|site| {
        for n in 0..3 {
            let mut asset = site.data.assets[n].clone();
            asset["key"] = json!(format!("new-asset-{n}"));
            asset["assetBasicInfo"]["name"] = json!(format!("new-asset-{n}"));
            asset["assetCustom"]["serialNumber"] = json!(format!("NEW-SERIAL-{n}"));
            asset["assetBasicInfo"]["mac"] = Value::Null;
            site.add_asset(asset).unwrap();
        }
        site.data.assets[10]["assetBasicInfo"]["ipAddress"] = json!("10.99.99.99");
    });
    world.cw.control().reset_counts();
    world.cw.control().cut_listings(true);
    let error = sync_on(&world, &world.store).await.unwrap_err();
    assert!(
        matches!(
            error,
            PipelineError::ConnectWise(ConnectWiseError::IncompleteListing { .. })
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("company/configurations"),
        "{error}"
    );
    assert_eq!(
        world.cw.control().writes(),
        0,
        "{:#?}",
        world.cw.control().requests()
    );

    world.cw.control().cut_listings(false);
    let whole = sync(&world).await;
    assert_eq!(
        (whole.counts.created, whole.counts.modified),
        (3, 1),
        "{whole:#?}"
    );
    state(&world.cw);
}
