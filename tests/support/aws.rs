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
        // cargo lambda watch runs the functions as its children: stop the whole group
        // (spawned as its own group, so this never reaches the test's).
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
        }
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
            // The binaries are what the test checked out; watching the tree (with its
            // .venv and target) for reloads is only load.
            "--ignore-changes",
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

/// A call to one of moto's JSON-protocol APIs (Step Functions), as the SDKs send it; moto
/// reads the service and region from the credential scope and checks no signature.
pub async fn aws_json(
    moto: &Service,
    service: &str,
    target: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/", moto.port))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("X-Amz-Target", target)
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .json(body)
        .send()
        .await
        .expect("moto answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Makes moto execute state machines, with Lambda tasks answering queued results.
pub async fn enable_state_machine_execution(moto: &Service) {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/moto-api/config", moto.port))
        .json(&serde_json::json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}))
        .send()
        .await
        .expect("moto config");
    assert!(response.status().is_success());
}

/// Queues what moto's Lambda answers next, in order (each a function's payload).
pub async fn queue_lambda_results(moto: &Service, results: &[String]) {
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/moto-api/static/lambda-simple/response",
            moto.port
        ))
        .json(&serde_json::json!({"results": results, "region": "us-east-1"}))
        .send()
        .await
        .expect("moto queue");
    assert!(response.status().is_success());
}

/// Runs a state machine execution to its end; answers its description.
pub async fn run_execution(moto: &Service, state_machine: &str, name: &str) -> serde_json::Value {
    let started = aws_json(
        moto,
        "states",
        "AWSStepFunctions.StartExecution",
        &serde_json::json!({"stateMachineArn": state_machine, "name": name, "input": "{}"}),
    )
    .await;
    let arn = started["executionArn"]
        .as_str()
        .expect("an execution")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let description = aws_json(
            moto,
            "states",
            "AWSStepFunctions.DescribeExecution",
            &serde_json::json!({"executionArn": arn}),
        )
        .await;
        if description["status"] != "RUNNING" {
            return description;
        }
        assert!(Instant::now() < deadline, "execution still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
