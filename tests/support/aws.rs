//! The AWS side on loopback: moto's server (DynamoDB, Secrets Manager), and the engine
//! (`infra/local/sfn_engine.py`: moto's server whose Step Functions execute the template's
//! state machine over the real function binaries). moto is installed by `make setup` into
//! `.venv/`; a test that needs it fails, never skips, without it.

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
        // The engine runs the functions as its children: stop the whole group
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

/// Invokes a function through a Lambda Invoke API on `port`; a function error is `Err`
/// with the error's JSON.
pub async fn invoke_at(
    port: u16,
    function: &str,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
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

/// Starts an execution named `name` with input `{}`; answers its ARN.
pub async fn start_execution(moto: &Service, state_machine: &str, name: &str) -> String {
    let started = aws_json(
        moto,
        "states",
        "AWSStepFunctions.StartExecution",
        &serde_json::json!({"stateMachineArn": state_machine, "name": name, "input": "{}"}),
    )
    .await;
    started["executionArn"]
        .as_str()
        .expect("an execution")
        .to_string()
}

/// An execution's description (`status`, `output`, `error`, `cause`).
pub async fn describe_execution(moto: &Service, arn: &str) -> serde_json::Value {
    aws_json(
        moto,
        "states",
        "AWSStepFunctions.DescribeExecution",
        &serde_json::json!({"executionArn": arn}),
    )
    .await
}

/// An execution's history as Step Functions keeps it: how many events, and the largest
/// state payload (an event's `input` or `output`, in bytes), the two limits an execution
/// must stay under (25,000 events, 256 KiB).
pub async fn execution_history(moto: &Service, arn: &str) -> (usize, usize) {
    let (mut events, mut largest) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut body = serde_json::json!({"executionArn": arn, "maxResults": 1000});
        if let Some(token) = &token {
            body["nextToken"] = serde_json::json!(token);
        }
        let page = aws_json(
            moto,
            "states",
            "AWSStepFunctions.GetExecutionHistory",
            &body,
        )
        .await;
        for event in page["events"].as_array().into_iter().flatten() {
            events += 1;
            for details in event.as_object().into_iter().flatten().map(|(_, v)| v) {
                for field in ["input", "output"] {
                    if let Some(payload) = details.get(field).and_then(serde_json::Value::as_str) {
                        largest = largest.max(payload.len());
                    }
                }
            }
        }
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => return (events, largest),
        }
    }
}

/// Runs an execution to its end, failing the test past `within`; answers its description.
pub async fn run_execution_within(
    moto: &Service,
    state_machine: &str,
    name: &str,
    within: Duration,
) -> serde_json::Value {
    let arn = start_execution(moto, state_machine, name).await;
    let deadline = Instant::now() + within;
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

/// The functions the template declares (`BuildProperties: Binary`), built for this
/// machine with the tests' own profile and target directory (once per test binary);
/// answers the directory holding them.
pub fn function_binaries() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let template = std::fs::read_to_string(workspace_root().join("template.yaml"))
                .expect("template.yaml");
            let binaries: Vec<&str> = template
                .lines()
                .filter_map(|line| line.trim().strip_prefix("Binary:"))
                .map(str::trim)
                .collect();
            assert!(
                !binaries.is_empty(),
                "the template names no function binary"
            );
            // target/<profile>/deps/<this test> → target/<profile>.
            let exe = std::env::current_exe().expect("the test's path");
            let profile_dir = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("the test sits in target/<profile>/deps")
                .to_path_buf();
            let target = profile_dir.parent().expect("target/<profile>");
            let mut command =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            command
                .current_dir(workspace_root())
                .args(["build", "--quiet", "--target-dir"])
                .arg(target);
            if profile_dir.ends_with("release") {
                command.arg("--release");
            }
            for binary in &binaries {
                command.args(["--bin", binary]);
            }
            let status = command.status().expect("cargo runs");
            assert!(status.success(), "the functions do not build");
            profile_dir
        })
        .clone()
}

/// The deployed form on loopback (`infra/local/sfn_engine.py`): moto's server, whose
/// Step Functions execute the template's state machine, and a Lambda service running
/// the real function binaries under their template limits.
pub struct Engine {
    /// moto's server (the engine's process; its group holds the functions).
    pub moto: Service,
    /// The Lambda service's port (Invoke API and `/_engine/`).
    pub lambda_port: u16,
    /// The state machine definition with the template's substitutions filled.
    pub definition: String,
}

/// Starts the engine over the functions' binaries; `table` fills the definition's table.
pub fn start_engine(table: &str) -> Engine {
    let binaries = function_binaries();
    let (moto_port, lambda_port) = (free_port(), free_port());
    let root = workspace_root();
    let definition_out = std::env::temp_dir().join(format!("lscw-engine-{lambda_port}.asl.json"));
    let mut command = Command::new(tool("python"));
    command
        .arg(root.join("infra/local/sfn_engine.py"))
        .args(["--moto-port", &moto_port.to_string()])
        .args(["--lambda-port", &lambda_port.to_string()])
        .arg("--bin-dir")
        .arg(&binaries)
        .arg("--template")
        .arg(root.join("template.yaml"))
        .arg("--definition")
        .arg(root.join("infra/statemachine/sync.asl.json"))
        .args(["--table", table])
        .arg("--definition-out")
        .arg(&definition_out)
        .current_dir(&root);
    let moto = spawn(command, lambda_port, "engine", Duration::from_secs(60));
    wait_for_port(
        moto_port,
        "engine (moto)",
        Duration::from_secs(10),
        &moto.log,
    );
    let definition = std::fs::read_to_string(&definition_out).expect("the filled definition");
    let mut moto = moto;
    moto.port = moto_port;
    Engine {
        moto,
        lambda_port,
        definition,
    }
}

/// What a deployment is given: the template's parameters (`TargetCompany`), the local
/// names of its resources (`SyncTable`, `Credentials`), and what only a test adds to the
/// functions' environment (the AWS endpoint, a faster quota clock, the log level). The
/// functions' environment itself is the template's.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub parameters: Vec<(&'static str, String)>,
    pub resources: Vec<(&'static str, String)>,
    pub env: Vec<(&'static str, String)>,
}

impl Engine {
    /// The functions' environment (every container started from now on), the clock
    /// factor and per-function limit overrides (`{"bulk-create": {"timeoutSeconds": 2}}`).
    pub async fn configure(&self, setup: &Setup, clock_factor: f64, functions: &serde_json::Value) {
        let map = |pairs: &[(&str, String)]| -> serde_json::Map<String, serde_json::Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
                .collect()
        };
        let body = serde_json::json!({
            "parameters": map(&setup.parameters),
            "resources": map(&setup.resources),
            "env": map(&setup.env),
            "clockFactor": clock_factor,
            "functions": functions,
        });
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/_engine/configure",
                self.lambda_port
            ))
            .json(&body)
            .send()
            .await
            .expect("the engine answers");
        let status = response.status();
        assert!(
            status.is_success(),
            "engine configure: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Per function: invocations, errors, timedOut, outOfMemory, coldStarts,
    /// peakMemoryKb, maxDurationMs, totalDurationMs, timeoutSeconds, memoryMb.
    pub async fn stats(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/_engine/stats",
                self.lambda_port
            ))
            .send()
            .await
            .expect("the engine answers")
            .json()
            .await
            .expect("stats as JSON")
    }

    /// One function invoked through the Lambda Invoke API, as a state's task invokes it.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        invoke_at(self.lambda_port, function, payload).await
    }

    /// What the engine and the functions printed so far.
    pub fn log(&self) -> String {
        self.moto.log()
    }

    /// Creates the state machine from the filled definition; answers its ARN.
    pub async fn create_state_machine(&self, name: &str) -> String {
        aws_json(
            &self.moto,
            "states",
            "AWSStepFunctions.CreateStateMachine",
            &serde_json::json!({"name": name, "definition": self.definition,
                "roleArn": "arn:aws:iam::123456789012:role/sync"}),
        )
        .await["stateMachineArn"]
            .as_str()
            .expect("a state machine ARN")
            .to_string()
    }
}
