//! The AWS side on loopback: moto's server (DynamoDB, Secrets Manager, Step Functions)
//! and `cargo lambda watch` serving the real function binaries. Both are installed by
//! `make setup` into `.venv/`; a test that needs them fails, never skips, without them.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// A child process killed (with its children) when dropped.
pub struct Service {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Service {
    /// What the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // cargo lambda watch runs the functions as its children: stop the whole group.
        let _ = Command::new("kill")
            .args(["-TERM", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn tool(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make setup` (it installs moto and cargo-lambda into .venv/)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, what: &str, timeout: Duration, log: &PathBuf) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(mut command: Command, port: u16, what: &str, timeout: Duration) -> Service {
    use std::os::unix::process::CommandExt;
    let log = std::env::temp_dir().join(format!("lscw-{what}-{port}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    command
        .stdout(Stdio::from(file.try_clone().expect("log file")))
        .stderr(Stdio::from(file))
        .process_group(0);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    wait_for_port(port, what, timeout, &log);
    Service { child, port, log }
}

/// moto's server on a free port.
pub fn start_moto() -> Service {
    let port = free_port();
    let mut command = Command::new(tool("moto_server"));
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    spawn(command, port, "moto", Duration::from_secs(60))
}

/// `cargo lambda watch` serving every function of the workspace, with `env` set on it.
pub fn start_watch(env: &[(&str, String)]) -> Service {
    let port = free_port();
    let mut command = Command::new(tool("cargo-lambda"));
    command
        .args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .current_dir(workspace_root())
        .env(
            "PATH",
            format!(
                "{}:{}",
                tool("cargo-lambda")
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    for (key, value) in env {
        command.env(key, value);
    }
    spawn(
        command,
        port,
        "cargo-lambda-watch",
        Duration::from_secs(120),
    )
}

/// Dummy credentials: moto accepts any.
pub fn aws_env(moto: &Service) -> Vec<(&'static str, String)> {
    vec![
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        ),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
    ]
}

pub async fn sdk_config(moto: &Service) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", moto.port))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// The table `template.yaml` declares: `pk`/`sk` strings, TTL on `expiresAt`.
pub async fn create_table(config: &aws_config::SdkConfig, name: &str) {
    let client = aws_sdk_dynamodb::Client::new(config);
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("table created");
}

pub async fn create_secret(
    config: &aws_config::SdkConfig,
    name: &str,
    value: &serde_json::Value,
) -> String {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let created = client
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("secret created");
    created.arn().expect("an ARN").to_string()
}

/// Invokes a function through the Lambda Invoke API of `cargo lambda watch`.
pub async fn invoke(
    watch: &Service,
    function: &str,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            watch.port
        ))
        .timeout(Duration::from_secs(900))
        .json(payload)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let failed =
        response.headers().contains_key("x-amz-function-error") || !response.status().is_success();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    if failed || body.get("errorType").is_some() {
        return Err(body.to_string());
    }
    Ok(body)
}
