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

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use shared::connectwise::ConnectWiseError;
use shared::error::PipelineError;
use shared::pipeline::{self, BatchInput, GroupInput, WriteKind};
use shared::store::{Claim, MemoryStore, Store, StoreError};
use simulators::control::LostAnswer;

use lscw_tests::world::{
    clean_state, create_groups, matched, settings, state, sync, sync_on, world,
};

/// An answer well after the client's timeout ([`lscw_tests::world::TIMEOUT`]).
const LATE: LostAnswer = LostAnswer::Late(Duration::from_millis(900));

async fn lost_answers_create_nothing_twice(rules: &[(LostAnswer, u64)]) {
    let world = world(240).await;
    world.cw.control().lose_answers(rules);
    let faulty = sync(&world).await;
    assert!(faulty.counts.created > 0, "{faulty:#?}");
    state(&world.cw);

    world.cw.control().lose_answers(&[]);
    let rerun = sync(&world).await;
    assert_eq!(rerun.failed.len(), 0, "{:#?}", rerun.failed);
    assert_eq!(state(&world.cw), clean_state(240).await, "{rules:?}");
    let again = sync(&world).await;
    assert_eq!(
        (again.counts.created, again.counts.modified),
        (0, 0),
        "settled"
    );
}

#[tokio::test]
async fn a_502_after_the_save_creates_nothing_twice() {
    lost_answers_create_nothing_twice(&[(LostAnswer::BadGateway, 2)]).await;
}

#[tokio::test]
async fn a_connection_dropped_after_the_save_creates_nothing_twice() {
    lost_answers_create_nothing_twice(&[(LostAnswer::DropConnection, 2)]).await;
}

#[tokio::test]
async fn an_answer_after_the_client_s_timeout_creates_nothing_twice() {
    lost_answers_create_nothing_twice(&[(LATE, 3)]).await;
}

#[tokio::test]
async fn every_kind_of_lost_answer_mixed_creates_nothing_twice() {
    // Half of all writes lose their answer, never more than three in a row: within the
    // retry budget of an idempotent PUT.
    lost_answers_create_nothing_twice(&[
        (LostAnswer::BadGateway, 4),
        (LostAnswer::DropConnection, 5),
        (LATE, 7),
    ])
    .await;
}

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

/// A store over another that fails once to record a batch's result: the process died
/// between sending the batch and recording what came of it.
struct DiesBeforeRecording<'a> {
    inner: &'a MemoryStore,
    batch: Mutex<Option<String>>,
}

impl Store for DiesBeforeRecording<'_> {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        let dies = {
            let mut batch = self.batch.lock().unwrap();
            let dies = batch
                .as_deref()
                .is_some_and(|b| key == format!("{b}/result"));
            if dies {
                *batch = None;
            }
            dies
        };
        if dies {
            return Err(StoreError::Backend("the process was killed".into()));
        }
        self.inner.put_raw(key, value, ttl).await
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_raw(key).await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(key, owner, value, ttl).await
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.inner.release(key, owner).await
    }
}

#[tokio::test]
async fn a_group_retried_after_dying_halfway_creates_each_batch_once() {
    let world = world(600).await;
    let matched = matched(&world, "run-half").await;
    let batches = create_groups(&world, &matched).await[0].clone();
    assert!(batches.len() >= 4, "{} batches", batches.len());
    let dying = DiesBeforeRecording {
        inner: &world.store,
        batch: Mutex::new(Some(batches[batches.len() / 2].clone())),
    };
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
    let dying = DiesBeforeRecording {
        inner: &world.store,
        batch: Mutex::new(Some(input.batch.clone())),
    };
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

#[tokio::test]
async fn two_runs_started_together_write_once() {
    let world = world(200).await;
    let (a, b) = tokio::join!(sync_on(&world, &world.store), sync_on(&world, &world.store));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ran, skipped) = if a.skipped_for.is_some() {
        (b, a)
    } else {
        (a, b)
    };
    assert!(ran.skipped_for.is_none());
    assert_eq!(skipped.skipped_for.unwrap().run_id, ran.run_id);
    assert_eq!(
        (
            skipped.counts.created,
            skipped.counts.modified,
            skipped.assets
        ),
        (0, 0, 0)
    );
    assert_eq!(ran.accounted(), ran.assets);
    assert_eq!(state(&world.cw), clean_state(200).await);
    assert_eq!(
        shared::lease::holder(&world.store).await.unwrap(),
        None,
        "the run gave its lease up"
    );
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
