//! `lscw secret set`: the stack's credentials secret filled without a console. Each value
//! is asked for (the private key and the token without echo on a terminal), both APIs
//! are asked to accept them, and only then is the secret written. No value typed is ever
//! printed, in a prompt, a message or an error.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use shared::connectwise::{
    ClientOptions, ConnectWiseClient, ConnectionConfig, ListQuery, endpoint,
};
use shared::lansweeper::{LansweeperClient, LansweeperConfig, LansweeperOptions};

/// What the secret holds: key, what to ask, whether it is hidden while typed.
const VALUES: &[(&str, &str, bool)] = &[
    (
        "CW_COMPANY_ID",
        "ConnectWise company id (the one you sign in with)",
        false,
    ),
    (
        "CW_PUBLIC_KEY",
        "ConnectWise API member's public key",
        false,
    ),
    (
        "CW_PRIVATE_KEY",
        "ConnectWise API member's private key",
        true,
    ),
    (
        "CW_CLIENT_ID",
        "ConnectWise clientId (developer.connectwise.com)",
        false,
    ),
    (
        "LS_TOKEN",
        "Lansweeper token (personal access token or lsf_…)",
        true,
    ),
];

/// Asks for every value, checks them against ConnectWise and Lansweeper (the site and
/// API addresses come from the environment: `CW_SITE` or `CW_BASE_URL`, `LS_API_URL`),
/// and writes them to the secret `arn`.
///
/// # Errors
/// A value missing, refused by its API, or the secret not writable.
pub async fn set(arn: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let mut values = BTreeMap::new();
    for (key, question, hidden) in VALUES {
        eprint!("{question} [{key}]: ");
        std::io::stderr().flush()?;
        let value = read_value(&mut lines, *hidden).with_context(|| format!("reading {key}"))?;
        if value.is_empty() {
            bail!("{key} is empty: nothing was written");
        }
        values.insert((*key).to_string(), value);
    }
    let lookup = |key: &str| {
        values
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok().filter(|v| !v.is_empty()))
    };
    let configurations = check_connectwise(&lookup).await?;
    let sites = check_lansweeper(&lookup).await?;
    let aws = aws_config::load_from_env().await;
    let body = serde_json::to_string(&values)?;
    aws_sdk_secretsmanager::Client::new(&aws)
        .put_secret_value()
        .secret_id(arn)
        .secret_string(body)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write the secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    println!(
        "secret {arn} written: ConnectWise accepted the keys ({configurations} configurations visible), Lansweeper the token (sites: {sites})"
    );
    Ok(())
}

/// One line of input; typed without echo when `hidden` and stdin is a terminal.
fn read_value(lines: &mut impl BufRead, hidden: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let quiet = hidden && rustix::termios::isatty(&stdin);
    let restore = if quiet {
        let before = rustix::termios::tcgetattr(&stdin)?;
        let mut silent = before.clone();
        silent.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &silent)?;
        Some(before)
    } else {
        None
    };
    let mut line = String::new();
    let read = lines.read_line(&mut line);
    if let Some(before) = restore {
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &before)?;
        eprintln!();
    }
    read?;
    Ok(line.trim().to_string())
}

/// The keys reach ConnectWise and are accepted; answers how many configurations they see.
async fn check_connectwise(lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<u64> {
    let config = ConnectionConfig::from_lookup(lookup)
        .map_err(|e| anyhow::anyhow!("ConnectWise: {e}; nothing was written"))?;
    let client = ConnectWiseClient::connect(&config, ClientOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("ConnectWise: {e}; nothing was written"))?;
    client
        .count(endpoint::CONFIGURATIONS, &ListQuery::default())
        .await
        .map_err(|e| anyhow::anyhow!("ConnectWise refused the keys: {e}; nothing was written"))
}

/// The token is accepted by Lansweeper; answers the sites it sees.
async fn check_lansweeper(lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let client = LansweeperConfig::from_lookup(lookup)
        .and_then(|config| LansweeperClient::new(config, LansweeperOptions::default()))
        .map_err(|e| anyhow::anyhow!("Lansweeper: {e}; nothing was written"))?;
    let sites = client
        .sites()
        .await
        .map_err(|e| anyhow::anyhow!("Lansweeper refused the token: {e}; nothing was written"))?;
    Ok(sites
        .iter()
        .map(|s| format!("{} ({})", s.id, s.name))
        .collect::<Vec<_>>()
        .join(", "))
}
