//! The `lscw` binary as a user runs it: `lscw simulate connectwise` in one process,
//! `lscw action …` in another.

#![allow(
    clippy::too_many_lines,
    reason = "each test is one operator's session of lscw commands, read top to bottom"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_simulator() -> (Running, String) {
    let (running, port) = start("connectwise");
    (
        running,
        format!("http://127.0.0.1:{port}/v4_6_release/apis/3.0"),
    )
}

fn start(api: &str) -> (Running, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_lscw"))
        .args(["simulate", api, "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "simulator did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running(child), port)
}

fn action(base_url: &str, key: &str, input: &str) -> Result<Value, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_lscw"))
        .args(["action", key, "--input", input])
        .env("CW_BASE_URL", base_url)
        .env("CW_COMPANY_ID", "sim")
        .env("CW_PUBLIC_KEY", "simpub")
        .env("CW_PRIVATE_KEY", "simpriv")
        .env("CW_CLIENT_ID", "00000000-0000-4000-8000-00000000c0de")
        .env_remove("CW_SITE")
        .output()
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn ids(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn list_locations_against_the_simulator_process() {
    let (_simulator, base_url) = start_simulator();
    let all = action(&base_url, "listOfLocationsAction", "{}").unwrap();
    assert_eq!(ids(&all), (1..=60).collect::<Vec<_>>());
    let page = action(&base_url, "listOfLocationsAction", r#"{"page":2}"#).unwrap();
    assert_eq!(ids(&page), (26..=50).collect::<Vec<_>>());
    let err = action(&base_url, "listOfLocationsAction", r#"{"pageSize":1001}"#).unwrap_err();
    assert!(err.contains("pageSize"), "{err}");
    let err = action(
        &base_url,
        "createManufacturerAction",
        r#"{"name":"Dell Inc."}"#,
    )
    .unwrap_err();
    assert!(err.contains("ObjectExists"), "{err}");
}

#[test]
fn assets_prints_the_whole_generated_site_as_json_lines() {
    let (_simulator, port) = start("lansweeper");
    let output = Command::new(env!("CARGO_BIN_EXE_lscw"))
        .arg("assets")
        .env(
            "LS_API_URL",
            format!("http://127.0.0.1:{port}/api/v2/graphql"),
        )
        .env("LS_TOKEN", "simtoken")
        .env("LS_SITE_ID", "sim-site")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2_000);
    assert!(lines.iter().all(|asset| asset["key"].is_string()));
    let keys: std::collections::HashSet<&str> =
        lines.iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 2_000);

    let sites = Command::new(env!("CARGO_BIN_EXE_lscw"))
        .arg("sites")
        .env(
            "LS_API_URL",
            format!("http://127.0.0.1:{port}/api/v2/graphql"),
        )
        .env("LS_TOKEN", "simtoken")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(sites.stdout).unwrap(),
        "sim-site\tsim-msp\n"
    );
}

/// `lscw sync`, `lscw enrich` and `lscw report` as three processes against one pair of
/// simulators (their quota clock 200 times faster, the client's alike): the store on
/// disk carries the run's report and Lansweeper's spent quota from one to the next, so
/// the enrichment paces itself against what the sync spent and is never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_enrich_as_processes_share_the_store_and_lansweeper_s_quota() {
    use simulators::lansweeper::{LansweeperOptions, SiteSpec};
    use simulators::scenario::LinkedPair;

    let pair = LinkedPair::start(
        &SiteSpec {
            seed: 1,
            assets: 2_000,
        },
        LansweeperOptions::sped_up(200.0),
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let data = std::env::temp_dir().join(format!("lscw-cli-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let settings = pair.settings();
    let lscw = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lscw"));
        command
            .args(args)
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LS_QUOTA_SPEED", "200")
            .env("LSCW_DATA_DIR", &data)
            .env_remove("SYNC_TABLE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("SECRET_ARN");
        async move {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stdout}\n{stderr}");
            stdout
        }
    };
    // Three devices ConnectWise keeps refusing: the report has failures to show.
    let refused: Vec<String> = pair.lansweeper.with_site(|site| {
        site.data.assets[..3]
            .iter()
            .map(|a| a["assetBasicInfo"]["name"].as_str().unwrap().to_string())
            .collect()
    });
    for name in &refused {
        pair.connectwise.control().fail_item(name, 100);
    }
    let synced = lscw(&["sync"]).await;
    let run_id = synced
        .lines()
        .find_map(|line| line.strip_prefix("Run "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let enriched = lscw(&["enrich"]).await;
    assert!(enriched.contains("written"), "{enriched}");
    let written: u64 = enriched
        .lines()
        .find_map(|line| line.trim().strip_prefix("written"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(written > 1_000, "{enriched}");
    assert_eq!(
        pair.lansweeper.rate_refusals(),
        0,
        "the enrichment counted what the sync had spent"
    );
    let page = data.join("run.html");
    let json = data.join("run.json");
    let reported = lscw(&[
        "report",
        &run_id,
        "--html",
        page.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ])
    .await;
    assert!(reported.contains(&run_id), "{reported}");
    let html = std::fs::read_to_string(&page).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    check_report_page(&html, &report, &pair.connectwise.base_url());

    // The same page in a real browser: what it renders holds the same rows.
    let rendered = browser(&["--dump-dom", &format!("file://{}", page.display())]);
    for kind in ["conflict", "failed"] {
        assert_eq!(
            rows(&rendered, kind),
            rows(&html, kind),
            "{kind} rows as the browser renders them"
        );
    }
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    browser(&[
        "--hide-scrollbars",
        "--window-size=1280,1600",
        &format!("--screenshot={}", screenshot.display()),
        &format!("file://{}", page.display()),
    ]);
    let png = std::fs::read(&screenshot).expect("the browser wrote a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a picture of the page, {} bytes",
        png.len()
    );
    let runs = lscw(&["runs"]).await;
    let row = runs.lines().find(|line| line.starts_with(&run_id)).unwrap();
    assert!(row.contains("SUCCEEDED_WITH_FAILURES"), "{runs}");
    assert!(
        runs.lines().next().unwrap().contains("started (UTC)"),
        "when each started: {runs}"
    );

    // `lscw run`: the enrichment under the sync's run id, as the state machine runs
    // it, so `lscw report` of that run tells both.
    let ran = lscw(&["run"]).await;
    let ids: Vec<&str> = ran
        .lines()
        .filter_map(|line| {
            line.strip_prefix("Run ")
                .or_else(|| line.strip_prefix("Enrichment "))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(ids.len() == 2 && ids[0] == ids[1], "{ran}");
    let reported = lscw(&["report", ids[0]]).await;
    assert!(
        reported.contains(&format!("Enrichment {}", ids[0])),
        "{reported}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// The asset keys of the page's rows of one kind (`conflict`, `failed`), in order.
fn rows(html: &str, kind: &str) -> Vec<String> {
    let marker = format!(r#"data-kind="{kind}" data-asset=""#);
    html.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let key = &rest[..rest.find('"').unwrap()];
            key.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

/// A run's page holds every conflict and failure of its JSON report, links only to
/// configurations in ConnectWise, and loads nothing from anywhere.
fn check_report_page(html: &str, report: &Value, connectwise: &str) {
    let run_id = report["runId"].as_str().unwrap();
    assert!(html.contains(&format!("Run <code>{run_id}</code>")));
    let keys = |list: &str| -> Vec<String> {
        report[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["assetKey"].as_str().unwrap().to_string())
            .collect()
    };
    let conflicts = keys("conflicts");
    let failed = keys("failed");
    assert!(
        !conflicts.is_empty() && !failed.is_empty(),
        "the scenario has conflicts and failures to show: {} conflicts, {} failed; {}",
        conflicts.len(),
        failed.len(),
        report["status"]
    );
    assert_eq!(
        rows(html, "conflict"),
        conflicts,
        "every conflict, in order"
    );
    assert_eq!(rows(html, "failed"), failed, "every failure, in order");
    for (conflict, entry) in report["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(html.split(r#"data-kind="conflict""#).skip(1))
    {
        let row = &entry[..entry.find("</tr>").unwrap()];
        for candidate in conflict["candidates"].as_array().unwrap() {
            assert!(
                row.contains(&format!("recid={candidate}\">{candidate}</a>")),
                "candidate {candidate} links to its configuration: {row}"
            );
        }
        if let Some(merge) = conflict["merge"].as_str() {
            assert!(
                row.contains(&format!("<code>{merge}</code>")),
                "the row names the merge: {row}"
            );
        }
    }
    assert!(
        report["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["merge"]
                .as_str()
                .is_some_and(|m| m.starts_with("lscw merge "))),
        "the scenario's twins are one device each: their conflicts name the merge"
    );
    let site = connectwise
        .split("/v4_6_release")
        .next()
        .unwrap()
        .to_string();
    let links: Vec<&str> = html
        .match_indices("href=\"")
        .map(|(at, _)| {
            let rest = &html[at + 6..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert!(!links.is_empty());
    for link in links {
        let url = reqwest::Url::parse(&link.replace("&amp;", "&"))
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(
            url.as_str().starts_with(&site)
                && url.path().ends_with("/openrecord.rails")
                && url
                    .query_pairs()
                    .any(|(k, v)| k == "recid" && v.parse::<i64>().is_ok()),
            "a link to a configuration in ConnectWise: {url}"
        );
    }
    for external in ["<link", "src=", "@import", "url(", "<script", "<iframe"] {
        assert!(
            !html.contains(external),
            "the page loads nothing: {external}"
        );
    }
    assert!(html.contains("<svg"), "the chart of the last runs");
}

/// Headless Chromium (Debian's `chromium`, which `make setup` installs) run on a page;
/// answers what it printed. A missing browser fails the test.
fn browser(args: &[&str]) -> String {
    let binary = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("no chromium: run `make setup` (it installs Debian's chromium)");
    let profile = std::env::temp_dir().join(format!("lscw-chromium-{}", std::process::id()));
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `lscw mapping` as processes over an estate: suggest proposes by name and applies
/// nothing; set, export and import keep a versioned mapping in the store; what names a
/// site or company that does not exist is refused, with a non-zero exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_commands_suggest_set_export_import_and_refuse_unknowns() {
    use simulators::lansweeper::{LansweeperOptions, SiteSpec};
    use simulators::scenario::LinkedPair;

    let pair = LinkedPair::start_estate(
        &SiteSpec {
            seed: 2,
            assets: 40,
        },
        LansweeperOptions::sped_up(200.0),
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let data = std::env::temp_dir().join(format!("lscw-cli-mapping-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let settings = pair.settings();
    let lscw = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lscw"));
        command
            .args(args)
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LS_QUOTA_SPEED", "200")
            .env("LSCW_DATA_DIR", &data)
            .env_remove("SYNC_TABLE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("SECRET_ARN");
        async move {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            )
        }
    };
    let (ok, listed) = lscw(&["mapping", "list"]).await;
    assert!(ok, "{listed}");
    assert!(listed.contains("no stored mapping"), "{listed}");
    assert!(listed.contains("sim-site\t→ BlueLightCo"), "{listed}");

    let (ok, doctor) = lscw(&["doctor"]).await;
    assert!(ok, "{doctor}");
    for check in [
        "ConnectWise credentials",
        "custom fields",
        "Lansweeper token",
        "mapping: sim-site → BlueLightCo",
        "every check passed",
    ] {
        assert!(doctor.contains(check), "{check}: {doctor}");
    }

    let (ok, suggested) = lscw(&["mapping", "suggest"]).await;
    assert!(ok, "{suggested}");
    assert!(
        suggested.contains("contoso-site\t\"Contoso Ltd.\" → Contoso \"Contoso Ltd.\"\tscore 1.00"),
        "{suggested}"
    );
    assert!(suggested.contains("nothing is applied"), "{suggested}");
    let (_, still) = lscw(&["mapping", "list"]).await;
    assert!(
        still.contains("no stored mapping"),
        "suggest applied nothing: {still}"
    );

    let (ok, set) = lscw(&["mapping", "set", "contoso-site", "--company", "contoso"]).await;
    assert!(ok, "{set}");
    assert!(set.contains("mapping version 1 saved"), "{set}");
    let (ok, set) = lscw(&[
        "mapping",
        "set",
        "shared-site",
        "--rule",
        "custom:Customer=Northwind->Northwind",
        "--rule",
        "ip=10.0.0.0/8->Fabrikam",
    ])
    .await;
    assert!(ok, "{set}");
    assert!(
        set.contains("shared-site\trule 2: IP in 10.0.0.0/8 → Fabrikam"),
        "{set}"
    );

    for (args, expected) in [
        (
            vec!["mapping", "set", "ghost-site", "--company", "Contoso"],
            "site ghost-site: the token cannot see this site",
        ),
        (
            vec![
                "mapping",
                "set",
                "contoso-site",
                "--company",
                "Contoso Pharma",
            ],
            "company Contoso Pharma: ConnectWise has no company",
        ),
        (
            vec![
                "mapping",
                "set",
                "shared-site",
                "--rule",
                "ip=10.0.0.0/40->Fabrikam",
            ],
            "the prefix must be 0 to 32",
        ),
        (
            vec!["mapping", "set", "shared-site"],
            "no default company and no rule",
        ),
    ] {
        let (ok, refused) = lscw(&args).await;
        assert!(!ok, "{args:?} was accepted: {refused}");
        assert!(refused.contains(expected), "{args:?}: {refused}");
    }

    let file = data.join("mapping.json");
    let (ok, _) = lscw(&["mapping", "export", file.to_str().unwrap()]).await;
    assert!(ok);
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["version"], 2, "the refused edits saved nothing");
    assert_eq!(exported["sites"].as_array().unwrap().len(), 2);
    let (ok, removed) = lscw(&["mapping", "remove", "contoso-site"]).await;
    assert!(ok, "{removed}");
    let (ok, imported) = lscw(&["mapping", "import", file.to_str().unwrap()]).await;
    assert!(ok, "{imported}");
    assert!(imported.contains("mapping version 4 saved"), "{imported}");
    assert!(
        imported.contains("contoso-site\t→ contoso"),
        "the file's mapping is back: {imported}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// `lscw doctor` against the simulators: each broken piece fails its own line, with its
/// fix, and the exit code says so; the other checks still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_broken_piece_with_its_fix() {
    use simulators::lansweeper::{LansweeperOptions, SiteSpec};
    use simulators::scenario::LinkedPair;

    let pair = LinkedPair::start(
        &SiteSpec {
            seed: 3,
            assets: 20,
        },
        LansweeperOptions::sped_up(200.0),
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let data = std::env::temp_dir().join(format!("lscw-cli-doctor-{}", std::process::id()));
    let settings = pair.settings();
    let doctor = |changes: Vec<(&'static str, Option<&'static str>)>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lscw"));
        command
            .arg("doctor")
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LSCW_DATA_DIR", &data)
            .env_remove("SYNC_TABLE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("SECRET_ARN");
        for (key, value) in changes {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        async move {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        }
    };
    let (ok, good) = doctor(vec![]).await;
    assert!(ok, "{good}");
    assert!(!good.contains("FAIL"), "{good}");

    for (change, failing, fix) in [
        (
            vec![("CW_PRIVATE_KEY", Some("wrong"))],
            "FAIL  ConnectWise credentials",
            "CW_PRIVATE_KEY",
        ),
        (
            vec![("CW_CLIENT_ID", None)],
            "FAIL  ConnectWise settings",
            "CW_CLIENT_ID",
        ),
        (
            vec![("CW_CUSTOM_FIELD_IDS", Some("ls_asset_id=6"))],
            "FAIL  custom fields",
            "CW_CUSTOM_FIELD_IDS",
        ),
        (
            vec![("LS_TOKEN", Some("wrong-token"))],
            "FAIL  Lansweeper token",
            "LS_TOKEN",
        ),
        (
            vec![("LS_SITE_ID", Some("ghost-site"))],
            "FAIL  mapping",
            "site ghost-site: the token cannot see this site",
        ),
    ] {
        let shown = format!("{change:?}");
        let (ok, out) = doctor(change).await;
        assert!(!ok, "{shown}: {out}");
        let line = out
            .lines()
            .position(|l| l.starts_with(failing))
            .unwrap_or_else(|| panic!("{shown}: no `{failing}` in {out}"));
        // The failing line, its message's continuation lines, and its fix.
        let mut told = Vec::new();
        for text in out.lines().skip(line) {
            told.push(text);
            if text.trim_start().starts_with("fix: ") {
                break;
            }
        }
        let told = told.join("\n");
        assert!(told.contains(fix), "{shown}: {told}");
        assert!(told.contains("fix: "), "{shown}: {told}");
        assert_eq!(
            out.matches("FAIL").count(),
            1,
            "{shown}: one broken piece, one failing line: {out}"
        );
        assert!(
            !out.contains("wrong-token") && !out.contains("simpriv"),
            "no secret is shown"
        );
    }

    // The tenant itself set up wrong: a custom field of the wrong type, then one missing.
    let wrong_type = |tenant: &mut simulators::connectwise::Tenant| {
        let field = tenant
            .custom_fields
            .iter_mut()
            .find(|f| f.caption == "ls_asset_location")
            .unwrap();
        field.field_type = "Number".into();
        tenant.complete_custom_fields();
    };
    let missing = |tenant: &mut simulators::connectwise::Tenant| {
        tenant.custom_fields.retain(|f| f.caption != "ls_software");
        tenant.complete_custom_fields();
    };
    for (broken, reason) in [
        (
            &wrong_type as &dyn Fn(&mut simulators::connectwise::Tenant),
            "custom field ls_asset_location (8) is of type Number; the sync writes it as Text",
        ),
        (
            &missing,
            "custom field ls_software not found on ConnectWise configurations",
        ),
    ] {
        pair.connectwise.with_tenant(broken);
        let (ok, out) = doctor(vec![]).await;
        assert!(!ok, "{reason}: {out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("FAIL  custom fields"))
            .unwrap_or_else(|| panic!("no failing custom fields line: {out}"));
        assert!(line.contains(reason), "{line}");
        assert!(
            out.contains("fix: `lscw doctor --fix` creates the missing ones"),
            "{out}"
        );
        assert_eq!(out.matches("FAIL").count(), 1, "{out}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// `lscw secret set` fills the stack's secret from what is typed, once both APIs accept
/// it: a refused token writes nothing and is never echoed; accepted values are written.
///
/// Breaking it looks like: a secret filled with a mistyped token that every run then
/// fails on, or the token printed in the terminal's scrollback.
#[tokio::test]
async fn secret_set_writes_only_what_both_apis_accept_and_echoes_nothing() {
    use lscw_tests::aws::{aws_env, create_secret, sdk_config, start_moto};
    let moto = start_moto();
    let aws = sdk_config(&moto).await;
    let empty = serde_json::json!({"CW_COMPANY_ID": "", "CW_PUBLIC_KEY": "", "CW_PRIVATE_KEY": "",
        "CW_CLIENT_ID": "", "LS_TOKEN": ""});
    let arn = create_secret(&aws, "lscw-credentials", &empty).await;
    let tenant =
        simulators::connectwise::generate(&simulators::connectwise::TenantSpec::default()).unwrap();
    let cw = lscw_tests::start_cw(tenant).await;
    let site =
        simulators::lansweeper::generate(&simulators::lansweeper::SiteSpec { seed: 3, assets: 5 })
            .unwrap();
    let ls = lscw_tests::start_ls(site).await;
    let secret_set = |typed: String| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lscw"));
        command
            .args(["secret", "set", "--secret-arn", &arn])
            .envs(aws_env(&moto))
            .env("CW_BASE_URL", cw.base_url())
            .env("LS_API_URL", ls.api_url())
            .env_remove("CW_SITE")
            .env_remove("LS_TOKEN")
            .env_remove("SYNC_TABLE");
        typed_into(command, typed)
    };
    let stored = || async {
        let text = aws_sdk_secretsmanager::Client::new(&aws)
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string();
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let typed = |token: &str| {
        format!(
            "{}\n{}\n{}\n{}\n{token}\n",
            simulators::connectwise::COMPANY_ID,
            simulators::connectwise::PUBLIC_KEY,
            simulators::connectwise::PRIVATE_KEY,
            simulators::connectwise::CLIENT_ID,
        )
    };

    let refused = secret_set(typed("not-the-token-4711")).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("Lansweeper refused the token"), "{said}");
    assert!(said.contains("nothing was written"), "{said}");
    for value in ["not-the-token-4711", simulators::connectwise::PRIVATE_KEY] {
        assert!(!said.contains(value), "a typed value echoed: {said}");
    }
    assert_eq!(stored().await, empty, "nothing written");

    let accepted = secret_set(typed(simulators::lansweeper::TOKEN)).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&accepted.stdout),
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(accepted.status.success(), "{said}");
    assert!(!said.contains(simulators::lansweeper::TOKEN), "{said}");
    let written = stored().await;
    assert_eq!(written["LS_TOKEN"], simulators::lansweeper::TOKEN);
    assert_eq!(
        written["CW_PRIVATE_KEY"],
        simulators::connectwise::PRIVATE_KEY
    );
    assert_eq!(
        written["CW_COMPANY_ID"],
        simulators::connectwise::COMPANY_ID
    );
}

/// The deployment steps (docs/deploying.md), against moto and the simulators, as an MSP of several
/// clients follows them: the stack's table and empty secret (as the template makes
/// them), `lscw secret set`, a mapping of three sites set with `lscw mapping set`
/// against the deployed table, `lscw doctor` against the deployed secret and table, then
/// the template's state machine over the real functions — with neither `TargetCompany`
/// nor `LansweeperSiteId` given.
///
/// Breaking it looks like: a stack for many clients that cannot be set up without the
/// console, or a run that needs the single-site parameters.
#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "the deployment steps in docs/deploying.md's order, each checked as it is taken"
)]
async fn the_deployment_steps_map_three_sites_and_the_state_machine_syncs_them() {
    use lscw_tests::aws::{
        aws_env, create_secret, create_table, run_execution_within, sdk_config, start_engine,
    };
    use simulators::lansweeper::{LansweeperSimulator, SITE_ID, SiteSpec};
    use simulators::scenario::{CONTOSO_SITE, SHARED_SITE, TARGET_COMPANY};
    const TABLE: &str = "lscw-deployed";
    let engine = start_engine(TABLE);
    let aws = sdk_config(&engine.moto).await;
    create_table(&aws, TABLE).await;
    let empty = serde_json::json!({"CW_COMPANY_ID": "", "CW_PUBLIC_KEY": "", "CW_PRIVATE_KEY": "",
        "CW_CLIENT_ID": "", "LS_TOKEN": ""});
    let arn = create_secret(&aws, "lscw/credentials", &empty).await;
    let (tenant, sites) = simulators::scenario::estate(&SiteSpec {
        seed: 5,
        assets: 45,
    })
    .unwrap();
    let cw = lscw_tests::start_cw(tenant).await;
    let ls = LansweeperSimulator::start_sites(sites, lscw_tests::ls_sim_options(), "127.0.0.1:0")
        .await
        .unwrap();
    // The template's Globals, with the simulators' addresses for CW_SITE; no
    // TargetCompany, no LansweeperSiteId.
    let mut env = aws_env(&engine.moto);
    env.push(("SECRET_ARN", arn.clone()));
    env.push(("SYNC_TABLE", TABLE.into()));
    env.push(("CW_BASE_URL", cw.base_url()));
    env.push(("LS_API_URL", ls.api_url()));
    env.push(("LS_QUOTA_SPEED", lscw_tests::LS_SPEED.to_string()));
    let lscw = |args: Vec<String>, typed: String| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lscw"));
        command
            .args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("CW_TARGET_COMPANY")
            .env_remove("LS_SITE_ID")
            .env_remove("LS_TOKEN")
            .env_remove("CW_SITE");
        async move {
            let output = typed_into(command, typed).await;
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(output.status.success(), "lscw {}: {said}", args.join(" "));
            said
        }
    };
    let args = |words: &[&str]| words.iter().map(|w| (*w).to_string()).collect::<Vec<_>>();

    // Step 3: the secret, typed.
    let typed = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        simulators::connectwise::COMPANY_ID,
        simulators::connectwise::PUBLIC_KEY,
        simulators::connectwise::PRIVATE_KEY,
        simulators::connectwise::CLIENT_ID,
        simulators::lansweeper::TOKEN,
    );
    lscw(args(&["secret", "set"]), typed).await;
    // Step 4: three sites, each to its client's company, in the deployed table.
    for (site, company) in [
        (SITE_ID, TARGET_COMPANY),
        (CONTOSO_SITE, "Contoso"),
        (SHARED_SITE, "Northwind"),
    ] {
        lscw(
            args(&["mapping", "set", site, "--company", company]),
            String::new(),
        )
        .await;
    }
    let listed = lscw(args(&["mapping", "list"]), String::new()).await;
    for site in [SITE_ID, CONTOSO_SITE, SHARED_SITE] {
        assert!(listed.contains(site), "{listed}");
    }
    // Step 5: everything checked against the deployed secret and table.
    let checked = lscw(args(&["doctor"]), String::new()).await;
    assert!(checked.contains("every check passed"), "{checked}");

    // Step 6: an execution of the template's state machine over the real functions.
    // The functions get the template's environment: its parameters as step 1 left them
    // (no TargetCompany, no LansweeperSiteId), the table and the secret as deployed, and
    // the simulators' addresses where the site would be.
    let deployed = lscw_tests::aws::Setup {
        parameters: vec![("ConnectWiseSite", String::new())],
        resources: vec![("SyncTable", TABLE.into()), ("Credentials", arn.clone())],
        env: env
            .iter()
            .filter(|(key, _)| !matches!(*key, "SECRET_ARN" | "SYNC_TABLE"))
            .cloned()
            .collect(),
    };
    engine
        .configure(&deployed, 1.0, &serde_json::json!({}))
        .await;
    let machine = engine.create_state_machine("sync").await;
    let execution = run_execution_within(
        &engine.moto,
        &machine,
        "first-run",
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution:#}");
    let companies: std::collections::BTreeSet<i64> = cw.with_tenant(|t| {
        t.records("configurations")
            .filter(|c| {
                c["customFields"].as_array().is_some_and(|fields| {
                    fields
                        .iter()
                        .any(|f| f["caption"] == "ls_asset_id" && f["value"].is_string())
                })
            })
            .filter_map(|c| c["company"]["id"].as_i64())
            .collect()
    });
    assert_eq!(
        companies.len(),
        3,
        "each site's assets in its client's company"
    );
}

/// Runs `command` with `typed` as its standard input (what an operator types at its
/// prompts) and answers its output.
async fn typed_into(mut command: Command, typed: String) -> std::process::Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(typed.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}
