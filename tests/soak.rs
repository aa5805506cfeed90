//! The deployed form over weeks, compressed: the template's state machine fired every
//! "hour" through the engine (`infra/local/sfn_engine.py`) over the real function
//! binaries, against 50 clients' sites and companies that keep changing, with faults
//! throughout. One clock factor compresses the simulators' hours (Lansweeper's quota
//! clock), the schedule, the Wait states, the Retry intervals and the functions'
//! timeouts together.
//!
//! A short version runs with the other tests; `make soak` runs the long one:
//! `LSCW_SOAK_HOURS` (hours fired), `LSCW_SOAK_ASSETS` (assets across the clients),
//! `LSCW_SOAK_CLOCK` (the clock factor: a compressed hour lasts 3600/factor seconds),
//! `LSCW_SOAK_LS_MUTATIONS` (the aliased edits Lansweeper takes in one request; 1 in
//! the short version, the product's worst case).
//! The factor also divides the functions' timeouts, while their work and their own
//! retry back-off run in real time: it is bounded by how long the slowest invocation
//! really takes against the shortest timeout (300 s).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::store::DynamoStore;
use simulators::connectwise::{CONFIGURATIONS, ConnectWiseSimulator, RESOURCES, TICKETS};
use simulators::control::LostAnswer;
use simulators::lansweeper::{LansweeperOptions, LansweeperSimulator, Site, SiteSpec};

use lscw_tests::aws::{
    Engine, Setup, aws_env, create_secret, create_table, describe_execution, execution_history,
    sdk_config, start_engine, start_execution,
};
use lscw_tests::{cw_sim_credentials, start_cw};

const TABLE: &str = "lscw-soak";
/// The store's item limit (300 KiB), which its parts stay under.
const ITEM_LIMIT: usize = shared::store::MAX_VALUE_BYTES;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {text}")),
        Err(_) => default,
    }
}

/// A small deterministic generator (the soak's changes are the same every time).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap()
    }
}

fn site_id(client: usize) -> String {
    format!("client-{client:02}")
}

fn company_of(client: usize) -> String {
    format!("Client{client:02}")
}

/// The clients' mapping: each of the first `clients` sites to its own company.
fn mapping(clients: usize) -> shared::mapping::Mapping {
    let sites: Vec<Value> = (0..clients)
        .map(|c| json!({"site": site_id(c), "company": company_of(c)}))
        .collect();
    serde_json::from_value(json!({ "sites": sites })).unwrap()
}

/// One execution fired by the schedule.
struct Fired {
    name: String,
    arn: String,
    hour: u64,
    ended: Option<(Instant, String)>,
    /// A failed execution's error and cause, as Step Functions describes them.
    cause: Option<String>,
    /// Its history once it ended: events, and the largest state payload (bytes).
    history: Option<(usize, usize)>,
}

/// The world the soak runs in.
struct Soak {
    engine: Engine,
    aws: aws_config::SdkConfig,
    cw: ConnectWiseSimulator,
    ls: LansweeperSimulator,
    machine: String,
    hour: Duration,
    clients: usize,
    dice: Dice,
    next_asset: usize,
}

impl Soak {
    async fn start(assets: usize, clients: usize, clock: f64, mutations: usize) -> Soak {
        let engine = start_engine(TABLE);
        let aws = sdk_config(&engine.moto).await;
        create_table(&aws, TABLE).await;
        // ConnectWise: reference data and one company per client (one more for the
        // client added mid-way), no configuration yet; Lansweeper: a site per client.
        let mut tenant = simulators::connectwise::empty_tenant().unwrap();
        let companies = RESOURCES
            .iter()
            .find(|r| r.collection == "companies")
            .unwrap();
        for client in 0..=clients {
            tenant
                .create(
                    companies,
                    &json!({"identifier": company_of(client), "name": format!("Client {client:02} Ltd.")}),
                )
                .unwrap();
        }
        // With no configuration yet, the custom fields' ids are given (as the template's
        // CustomFieldIds parameter gives them).
        let field_ids: Vec<String> = tenant
            .to_data()
            .configuration_custom_fields
            .iter()
            .map(|f| format!("{}={}", f.caption, f.id))
            .collect();
        let cw = start_cw(tenant).await;
        let per_site = (assets / clients).max(2);
        let sites: Vec<Site> = (0..=clients)
            .map(|client| {
                let mut site = simulators::lansweeper::generate(&SiteSpec {
                    seed: 7_000 + client as u64,
                    assets: per_site,
                })
                .unwrap();
                site.data.id = site_id(client);
                site.data.name = format!("Client {client:02}");
                // Keys unique across the estate.
                for asset in &mut site.data.assets {
                    let key = format!("{}-{}", site_id(client), asset["key"].as_str().unwrap());
                    asset["key"] = json!(key);
                }
                Site::new(site.data).unwrap()
            })
            .collect();
        let ls = LansweeperSimulator::start_sites(
            sites,
            LansweeperOptions {
                mutations_per_request: Some(mutations),
                ..LansweeperOptions::sped_up(clock)
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let mut secret = cw_sim_credentials(&cw);
        secret["LS_TOKEN"] = json!(simulators::lansweeper::TOKEN);
        secret["LS_SITE_ID"] = json!(site_id(0));
        secret["LS_API_URL"] = json!(ls.api_url());
        let secret_arn = create_secret(&aws, "lscw/credentials", &secret).await;
        let mut env = aws_env(&engine.moto);
        env.push(("LS_QUOTA_SPEED", clock.to_string()));
        env.push(("RUST_LOG", "warn".into()));
        env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
        let env = Setup {
            parameters: vec![
                ("ConnectWiseSite", String::new()),
                ("TargetCompany", company_of(0)),
                ("CustomFieldIds", field_ids.join(",")),
            ],
            resources: vec![("SyncTable", TABLE.into()), ("Credentials", secret_arn)],
            env,
        };
        engine.configure(&env, clock, &json!({})).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), TABLE);
        shared::mapping::save(&store, mapping(clients), 0)
            .await
            .unwrap();
        let machine = engine.create_state_machine("sync").await;
        Soak {
            engine,
            aws,
            cw,
            ls,
            machine,
            hour: Duration::from_secs_f64(3600.0 / clock),
            clients,
            dice: Dice(0x5eed_2026),
            next_asset: 0,
        }
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.aws), TABLE)
    }

    /// An hour of the estate's life: tickets opened and closed, assets added, changed
    /// and removed in a few clients' sites.
    fn live_an_hour(&mut self, hour: u64) -> Vec<i64> {
        let configurations: Vec<(i64, i64)> = self.cw.with_tenant(|t| {
            t.records("configurations")
                .filter_map(|c| Some((c["id"].as_i64()?, c["company"]["id"].as_i64()?)))
                .collect()
        });
        let opened: Vec<(i64, i64)> = (0..3)
            .filter(|_| !configurations.is_empty())
            .map(|_| configurations[self.dice.below(configurations.len())])
            .collect();
        let closing = self.dice.below(1_000_000);
        self.cw.with_tenant(|t| {
            for (n, (configuration, company)) in opened.iter().enumerate() {
                let ticket = t
                    .create(
                        &TICKETS,
                        &json!({"summary": format!("Soak hour {hour} #{n}"),
                            "recordType": "ServiceTicket",
                            "status": {"id": 16, "name": "New (not responded)"},
                            "company": {"id": company}, "closedFlag": false}),
                    )
                    .unwrap();
                t.attach(&TICKETS, ticket["id"].as_i64().unwrap(), *configuration)
                    .unwrap();
            }
            // Close two open tickets.
            let open: Vec<i64> = t
                .records("tickets")
                .filter(|r| r["closedFlag"] == false)
                .filter_map(|r| r["id"].as_i64())
                .collect();
            for k in 0..2.min(open.len()) {
                let id = open[(closing + k) % open.len()];
                let mut record = t.get("tickets", id).unwrap().clone();
                record["closedFlag"] = json!(true);
                record["status"] = json!({"id": 20, "name": "Closed"});
                t.replace(&TICKETS, id, &record).unwrap();
            }
        });
        for _ in 0..2 {
            let client = self.dice.below(self.clients);
            let (change, pick) = (self.dice.below(3), self.dice.below(1 << 20));
            self.next_asset += 1;
            let fresh = self.next_asset;
            self.ls.with_site_id(&site_id(client), |site| {
                let count = site.data.assets.len();
                if count < 2 {
                    return;
                }
                match change {
                    // A new device, shaped like the site's others.
                    0 => {
                        let mut asset = site.data.assets[pick % count].clone();
                        asset["key"] = json!(format!("{}-new-{fresh}", site_id(client)));
                        asset["assetBasicInfo"]["name"] = json!(format!("NEW-{fresh}"));
                        asset["assetCustom"]["serialNumber"] = json!(format!("SOAK-{fresh}"));
                        asset["assetBasicInfo"]["mac"] = Value::Null;
                        site.add_asset(asset).unwrap();
                    }
                    1 => {
                        site.data.assets[pick % count]["assetBasicInfo"]["ipAddress"] =
                            json!(format!("10.{}.{}.{}", hour % 250, fresh % 250, pick % 250));
                    }
                    _ => {
                        let mut data = site.data.clone();
                        data.assets.remove(pick % count);
                        *site = Site::new(data).unwrap();
                    }
                }
            });
        }
        opened
            .iter()
            .map(|(configuration, _)| *configuration)
            .collect()
    }

    /// Faults for the hour: 429s and 5xx on both APIs (lost answers run throughout).
    fn faults_for_an_hour(&self) {
        let cw = self.cw.control();
        cw.fail_next(2, 429, Some(1), None);
        cw.fail_next(1, 503, None, None);
        let ls = self.ls.control();
        ls.fail_next(1, 429, Some(1), None);
        ls.fail_next(1, 502, None, None);
    }

    /// The largest item of the table now: (bytes, key).
    async fn largest_item(&self) -> (usize, String) {
        let client = aws_sdk_dynamodb::Client::new(&self.aws);
        let mut largest = (0, String::new());
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(TABLE)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let size: usize = item
                    .iter()
                    .map(|(name, value)| {
                        name.len()
                            + match value {
                                aws_sdk_dynamodb::types::AttributeValue::S(s) => s.len(),
                                aws_sdk_dynamodb::types::AttributeValue::N(n) => n.len(),
                                aws_sdk_dynamodb::types::AttributeValue::B(b) => b.as_ref().len(),
                                other => format!("{other:?}").len(),
                            }
                    })
                    .sum();
                if size > largest.0 {
                    let key = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    largest = (size, key);
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return largest,
            }
        }
    }

    /// Follows every running execution once; answers how many still run.
    async fn follow(&self, fired: &mut [Fired]) -> usize {
        let mut running = 0;
        for execution in fired.iter_mut().filter(|f| f.ended.is_none()) {
            let description = describe_execution(&self.engine.moto, &execution.arn).await;
            let status = description["status"].as_str().unwrap_or_default();
            if status == "RUNNING" {
                running += 1;
            } else {
                execution.ended = Some((Instant::now(), status.to_string()));
                execution.history =
                    Some(execution_history(&self.engine.moto, &execution.arn).await);
                if status != "SUCCEEDED" {
                    // What a failed execution says, printed with the verdict: a soak at
                    // scale takes an hour to run again.
                    execution.cause = Some(format!(
                        "{}: {}",
                        description["error"].as_str().unwrap_or("no error"),
                        description["cause"].as_str().unwrap_or("no cause")
                    ));
                }
            }
        }
        running
    }

    /// Fires one execution and follows it to its end.
    async fn run_to_end(&self, name: &str, fired: &mut Vec<Fired>, hour: u64) -> String {
        let arn = start_execution(&self.engine.moto, &self.machine, name).await;
        fired.push(Fired {
            name: name.into(),
            arn,
            hour,
            ended: None,
            history: None,
            cause: None,
        });
        let deadline = Instant::now() + Duration::from_secs(1_800);
        while self.follow(fired).await > 0 {
            assert!(Instant::now() < deadline, "{name} still running");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        fired.last().unwrap().ended.as_ref().unwrap().1.clone()
    }

    /// Whether a ticket change on `configuration` shows on its Lansweeper asset: its
    /// `cw_total_tickets` there equals the tickets ConnectWise has on it now. `None`: it
    /// never will (the configuration carries no link, or the asset is gone).
    fn shows(&self, configuration: i64) -> Option<bool> {
        let (link, tickets) = self.cw.with_tenant(|t| {
            let shown = t.render(&CONFIGURATIONS, t.get("configurations", configuration)?, "");
            let link = lscw_tests::world::link_of(&shown)?;
            let tickets = t
                .records("tickets")
                .filter_map(|r| r["id"].as_i64())
                .filter(|id| t.attached(&TICKETS, *id).contains(&configuration))
                .count();
            Some((link, tickets))
        })?;
        self.ls.site_ids().iter().find_map(|site| {
            self.ls
                .with_site_id(site, |site| {
                    let field = site
                        .data
                        .custom_fields
                        .iter()
                        .find(|f| f.name == "cw_total_tickets")?
                        .key
                        .clone();
                    let asset = site.data.assets.iter().find(|a| {
                        a["key"]
                            .as_str()
                            .is_some_and(|k| k.eq_ignore_ascii_case(&link))
                    })?;
                    let value = asset["assetCustom"]["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|f| f["fieldKey"] == field.as_str())
                        .and_then(|f| f["value"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    Some(value == tickets.to_string())
                })
                .flatten()
        })
    }

    /// The changes now shown on the other side leave `pending` with their lag (hours).
    fn seen(&self, pending: &mut Vec<(Instant, i64)>, lags: &mut Vec<f64>) {
        pending.retain(|(made, configuration)| match self.shows(*configuration) {
            Some(true) => {
                lags.push(made.elapsed().as_secs_f64() / self.hour.as_secs_f64());
                false
            }
            Some(false) => true,
            None => false,
        });
    }

    /// Asset key → company ids of its linked configurations.
    fn configurations_by_link(&self) -> HashMap<String, Vec<i64>> {
        self.cw.with_tenant(|t| {
            let mut found: HashMap<String, Vec<i64>> = HashMap::new();
            for record in t.records("configurations") {
                let shown = t.render(&CONFIGURATIONS, record, "");
                if let Some(link) = lscw_tests::world::link_of(&shown) {
                    found
                        .entry(link)
                        .or_default()
                        .push(shown["company"]["id"].as_i64().unwrap_or_default());
                }
            }
            found
        })
    }
}

/// The recorded summary of a run (`report/{run}`), if it recorded one.
async fn summary(store: &DynamoStore, run: &str) -> Option<Value> {
    use shared::store::StoreExt;
    store
        .get::<Value>(&format!("report/{run}"))
        .await
        .ok()
        .flatten()
}

fn ms(value: &Value) -> u64 {
    value.as_u64().unwrap_or_default()
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one soak: the schedule, the estate's life, the faults and the verdict share its state"
)]
async fn weeks_of_hourly_runs_converge_without_duplicates_inside_every_limit() {
    // The short version, as `make test` runs it (a few minutes in a debug build).
    let hours: u64 = setting("LSCW_SOAK_HOURS", 3);
    let assets: usize = setting("LSCW_SOAK_ASSETS", 300);
    let clock: f64 = setting("LSCW_SOAK_CLOCK", 60.0);
    // How many aliased edits Lansweeper takes in one request (unpublished): the short
    // run takes the worst, one, so every `make test` measures the enrichment at that
    // end; `make soak` the simulator's cautious default.
    let mutations: usize = setting("LSCW_SOAK_LS_MUTATIONS", 1);
    let clients = 50;
    let mut soak = Soak::start(assets, clients, clock, mutations).await;
    let store = soak.store();
    let began = Instant::now();
    println!(
        "soak: {hours} hours of {:.1} s, {assets} assets in {clients} clients, clock factor {clock}, {mutations} edit(s) a Lansweeper request at most",
        soak.hour.as_secs_f64()
    );

    // Lost answers throughout: writes ConnectWise saves and answers with a 502 page or a
    // dropped connection.
    soak.cw.control().lose_answers_to(
        "/company/configurations",
        &[
            (LostAnswer::BadGateway, 41),
            (LostAnswer::DropConnection, 67),
        ],
    );
    let added_at = hours / 2;
    let unreadable = (hours / 4, hours / 4 + 24);
    let mut fired: Vec<Fired> = Vec::new();
    let mut largest: Vec<(u64, usize, String)> = Vec::new();
    // Ticket changes not yet shown on their asset (when made, the configuration), and
    // each shown one's lag, in hours: looked at after every execution is followed.
    let mut pending: Vec<(Instant, i64)> = Vec::new();
    let mut change_lags: Vec<f64> = Vec::new();
    for hour in 0..hours {
        // Up to the hour, the executions are followed and the changes looked for ten
        // times an hour, so a lag is measured to a tenth of an hour, not to the hour.
        let due = began + soak.hour.mul_f64(hour as f64);
        while let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait.min(soak.hour / 10)).await;
            soak.follow(&mut fired).await;
            soak.seen(&mut pending, &mut change_lags);
        }
        if hour > 0 {
            let made = Instant::now();
            pending.extend(soak.live_an_hour(hour).into_iter().map(|c| (made, c)));
        }
        soak.faults_for_an_hour();
        if hour == added_at {
            // A new client: its company exists; the mapping now sends its site there.
            let current = shared::mapping::stored(&store).await.unwrap().unwrap();
            shared::mapping::save(&store, mapping(clients + 1), current.version)
                .await
                .unwrap();
            soak.clients = clients + 1;
        }
        if hour == unreadable.0 {
            soak.ls.with_site_id(&site_id(7), |site| {
                site.data.id = "client-07-unreadable".into();
            });
        }
        if hour == unreadable.1 {
            soak.ls.with_site_id("client-07-unreadable", |site| {
                site.data.id = site_id(7);
            });
        }
        let name = format!("hour-{hour:04}");
        let arn = start_execution(&soak.engine.moto, &soak.machine, &name).await;
        fired.push(Fired {
            name,
            arn,
            hour,
            ended: None,
            history: None,
            cause: None,
        });
        soak.follow(&mut fired).await;
        soak.seen(&mut pending, &mut change_lags);
        if hour % 12 == 0 {
            let (size, key) = soak.largest_item().await;
            largest.push((hour, size, key));
        }
    }
    // The site is readable again whatever the number of hours.
    soak.ls.with_site_id("client-07-unreadable", |site| {
        site.data.id = site_id(7);
    });

    // The faults stop; what was fired ends; two runs more: the first catches up, the
    // second finds everything converged and writes nothing.
    let lost: u64 = soak
        .cw
        .control()
        .answers_lost()
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    soak.cw.control().lose_answers(&[]);
    let settle = Instant::now() + Duration::from_secs(3_600);
    while soak.follow(&mut fired).await > 0 {
        soak.seen(&mut pending, &mut change_lags);
        assert!(
            Instant::now() < settle,
            "executions still running an hour after the last"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let catch_up = soak.run_to_end("final-catch-up", &mut fired, hours).await;
    soak.seen(&mut pending, &mut change_lags);
    let writes_before = soak.cw.control().writes();
    let edits_before = soak.ls.control().count("POST graphql:editAsset");
    let last = soak
        .run_to_end("final-converged", &mut fired, hours + 1)
        .await;
    let final_writes = soak.cw.control().writes() - writes_before;
    let final_edits = soak.ls.control().count("POST graphql:editAsset") - edits_before;
    let (size, key) = soak.largest_item().await;
    largest.push((hours + 1, size, key));

    // The verdict's numbers.
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_run_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed_for_good = Vec::new();
    let (mut cw_requests, mut ls_requests, mut runs_counted) = (Vec::new(), Vec::new(), 0);
    let mut completed: Vec<(u64, Instant)> = Vec::new();
    for execution in &fired {
        let status = execution.ended.as_ref().map_or("RUNNING", |e| e.1.as_str());
        *by_status.entry(status.to_string()).or_default() += 1;
        let recorded = summary(&store, &execution.name).await;
        let run_status = recorded
            .as_ref()
            .and_then(|r| r["status"].as_str())
            .unwrap_or("NONE")
            .to_string();
        *by_run_status.entry(run_status.clone()).or_default() += 1;
        if status != "SUCCEEDED" || run_status == "FAILED" || run_status == "NONE" {
            let error = recorded
                .as_ref()
                .and_then(|r| r["error"].as_str())
                .unwrap_or("no error recorded");
            let cause = execution.cause.as_deref().unwrap_or("");
            failed_for_good.push(format!(
                "{} {status} {run_status}: {error}; execution {cause}",
                execution.name
            ));
        }
        if let Some(recorded) = recorded.filter(|_| run_status != "SKIPPED") {
            runs_counted += 1;
            cw_requests.push(ms(&recorded["apiCalls"]["connectwise"]));
            ls_requests.push(ms(&recorded["apiCalls"]["lansweeper"]));
            if let Some((ended, _)) = &execution.ended {
                completed.push((execution.hour, *ended));
            }
        }
    }
    // The enrichment's lag: from an hour's ticket changes to the end of the first run
    // fired at or after it that completed (its Enrich loop done), in compressed hours.
    let hour_start = |h: u64| began + soak.hour.mul_f64(h as f64);
    let lags: Vec<f64> = (1..hours)
        .filter_map(|h| {
            completed
                .iter()
                .filter(|(fired_at, _)| *fired_at >= h)
                .map(|(_, ended)| ended.saturating_duration_since(hour_start(h)))
                .min()
                .map(|lag| lag.as_secs_f64() / soak.hour.as_secs_f64())
        })
        .collect();
    let stats = soak.engine.stats().await;

    println!("\nexecutions by status: {by_status:?}");
    println!("runs by recorded status: {by_run_status:?}");
    println!("\nlargest store item over time (limit {ITEM_LIMIT} bytes):");
    for (hour, size, key) in &largest {
        println!("  hour {hour:>5}: {size:>7} bytes  {key}");
    }
    println!(
        "\n{:<26}{:>6}{:>6}{:>9}{:>9}{:>11}{:>11}{:>10}",
        "function", "calls", "cold", "peak MB", "limit", "max s", "limit s", "timeouts"
    );
    for (function, n) in stats["functions"].as_object().unwrap() {
        println!(
            "{function:<26}{:>6}{:>6}{:>9.1}{:>9}{:>11.2}{:>11.2}{:>10}",
            ms(&n["invocations"]),
            ms(&n["coldStarts"]),
            ms(&n["peakMemoryKb"]) as f64 / 1024.0,
            ms(&n["memoryMb"]),
            ms(&n["maxDurationMs"]) as f64 / 1000.0,
            n["timeoutSeconds"].as_f64().unwrap() / clock,
            ms(&n["timedOut"]),
        );
    }
    let average = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    println!(
        "\nrequests per run ({runs_counted} runs not skipped): ConnectWise avg {:.0} max {}, Lansweeper avg {:.0} max {}",
        average(&cw_requests),
        cw_requests.iter().max().unwrap_or(&0),
        average(&ls_requests),
        ls_requests.iter().max().unwrap_or(&0)
    );
    let (lag_avg, lag_max) = (
        lags.iter().sum::<f64>() / lags.len().max(1) as f64,
        lags.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "enrichment lag (hours from a change to a completed run): avg {lag_avg:.2}, max {lag_max:.2}"
    );
    change_lags.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        change_lags
            .get(((change_lags.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "ticket change to its asset's fields (hours, {} changes seen, {} not yet): p50 {:.2}, p95 {:.2}, max {:.2}",
        change_lags.len(),
        pending.len(),
        quantile(0.5),
        quantile(0.95),
        quantile(1.0)
    );
    println!(
        "faults: ConnectWise refused {} and lost {lost} answers; Lansweeper refused {} (rate {})",
        soak.cw.control().refused(),
        soak.ls.control().refused(),
        soak.ls.rate_refusals()
    );
    println!(
        "final runs: {catch_up}, {last}; the last wrote {final_writes} configurations and {final_edits} asset edits"
    );
    println!("wall time: {:.0} s", began.elapsed().as_secs_f64());

    // Each execution's history against Step Functions' limits: 25,000 events, and 256 KiB
    // a state's payload (the engine's interpreter enforces neither, so it is read here).
    let histories: Vec<(&str, usize, usize)> = fired
        .iter()
        .filter(|f| f.ended.is_some())
        .map(|f| {
            let (events, payload) = f
                .history
                .unwrap_or_else(|| panic!("{}: its history was never read", f.name));
            (f.name.as_str(), events, payload)
        })
        .collect();
    let most_events = histories.iter().max_by_key(|h| h.1).copied().unwrap();
    let largest_payload = histories.iter().max_by_key(|h| h.2).copied().unwrap();
    println!(
        "history per execution: at most {} events ({}), largest state payload {} bytes ({})",
        most_events.1, most_events.0, largest_payload.2, largest_payload.0
    );

    // The verdict.
    assert!(
        !change_lags.is_empty(),
        "no ticket change was ever seen on its asset"
    );
    assert!(
        most_events.1 > 0 && most_events.1 < 25_000,
        "{most_events:?}"
    );
    assert!(largest_payload.2 < 256 * 1024, "{largest_payload:?}");
    let links = soak.configurations_by_link();
    let duplicates: Vec<&String> = links
        .iter()
        .filter(|(_, companies)| companies.len() > 1)
        .map(|(key, _)| key)
        .collect();
    assert!(
        duplicates.is_empty(),
        "duplicate configurations: {duplicates:?}"
    );
    assert!(
        failed_for_good.is_empty(),
        "runs failed for good: {failed_for_good:#?}"
    );
    for (hour, size, key) in &largest {
        assert!(*size <= ITEM_LIMIT, "hour {hour}: {key} holds {size} bytes");
    }
    for (function, n) in stats["functions"].as_object().unwrap() {
        // A statistic the engine did not give is a failure, never a zero.
        let stat = |key: &str| {
            n[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{function}: the engine gave no {key}: {n}"))
        };
        assert!(stat("invocations") > 0, "{function} never ran: {n}");
        assert_eq!(stat("timedOut"), 0, "{function} ran past its deadline: {n}");
        assert_eq!(stat("outOfMemory"), 0, "{function} ran out of memory: {n}");
    }
    // Every kind of fault injected fired, so the runs above lived through them.
    assert!(lost > 0, "no answer was lost");
    assert!(
        soak.cw.control().refused() > 0,
        "ConnectWise refused nothing"
    );
    assert!(
        soak.ls.control().refused() > 0,
        "Lansweeper refused nothing"
    );
    // Converged: the last run changed nothing on either side and failed nothing, and
    // every asset of every mapped client has its one configuration in its company.
    let report = shared::pipeline::report(&store, "final-converged", false)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert_eq!(
        (
            report.counts.created,
            report.counts.modified,
            final_writes,
            final_edits
        ),
        (0, 0, 0, 0),
        "the last run still had work: {report:#?}"
    );
    let company_ids: HashMap<String, i64> = soak.cw.with_tenant(|t| {
        t.records("companies")
            .map(|c| {
                (
                    c["identifier"].as_str().unwrap().to_string(),
                    c["id"].as_i64().unwrap(),
                )
            })
            .collect()
    });
    let left_out: HashSet<String> = report
        .conflicts
        .iter()
        .map(|c| c.asset_key.to_lowercase())
        .collect();
    let mut unconverged = Vec::new();
    for client in 0..=clients {
        let company = company_ids[&company_of(client)];
        let keys: Vec<String> = soak
            .ls
            .with_site_id(&site_id(client), |site| {
                site.data
                    .assets
                    .iter()
                    .map(|a| a["key"].as_str().unwrap().to_lowercase())
                    .collect()
            })
            .unwrap();
        for key in keys.into_iter().filter(|k| !left_out.contains(k)) {
            if links.get(&key).map(Vec::as_slice) != Some(&[company][..]) {
                unconverged.push(key);
            }
        }
    }
    assert!(
        unconverged.is_empty(),
        "{} assets not converged: {:?}",
        unconverged.len(),
        &unconverged[..unconverged.len().min(20)]
    );
    every_value_is_what_a_fresh_run_computes(&soak, &store, clock).await;
}

/// The verdict on every value written, not only the links: a dry run of the sync and of
/// the enrichment from an empty store (nothing remembered: every configuration and every
/// asset's fields computed afresh from both sides) plans no write at all. A bulk-modify
/// that wrote nothing, or an enrichment that skipped assets, leaves work here.
async fn every_value_is_what_a_fresh_run_computes(soak: &Soak, store: &DynamoStore, clock: f64) {
    use shared::store::Store;

    let fresh = shared::store::MemoryStore::new();
    let mapping = store
        .get_raw(shared::layout::MAPPING)
        .await
        .unwrap()
        .unwrap();
    fresh
        .put_raw(shared::layout::MAPPING, mapping, shared::layout::KEPT)
        .await
        .unwrap();
    let cw = shared::connectwise::ConnectWiseClient::connect(
        &lscw_tests::cw_config(&soak.cw),
        lscw_tests::fast_options(),
    )
    .await
    .unwrap();
    let ls = lscw_tests::ls_client_for(
        &soak.ls,
        simulators::lansweeper::TOKEN,
        shared::lansweeper::LansweeperOptions::default().sped_up(clock),
    );
    let dry = shared::settings::SyncSettings {
        target_company: company_of(0),
        dry_run: true,
        ..shared::settings::SyncSettings::default()
    };
    let sync = shared::pipeline::run_sync(&cw, &ls, &fresh, &dry, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (
            sync.counts.created,
            sync.counts.modified,
            sync.counts.retired,
            sync.counts.reactivated
        ),
        (0, 0, 0, 0),
        "a fresh sync would still write: {:#?}",
        sync.counts
    );
    let (enrichment, _) = shared::enrichment::run_enrich(&cw, &ls, &fresh, &dry, None)
        .await
        .unwrap();
    assert!(enrichment.assets > 0, "{enrichment:#?}");
    assert_eq!(
        enrichment.written, 0,
        "a fresh enrichment would still write {} of {} assets",
        enrichment.written, enrichment.assets
    );
    println!(
        "fresh dry runs: the sync plans no write over {} assets, the enrichment none over {}",
        sync.assets, enrichment.assets
    );
}
