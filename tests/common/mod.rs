//! Shared helpers for the end-to-end tests: run the built binary against the fake Mailchimp API and
//! decode every stdout line.
#![allow(dead_code)]

pub mod conformance;
pub mod s3;

use fake_mailchimp::{FakeList, FakeMailchimp};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

pub const KEY: &str = "5e8ff3a0c1d24b7e9f60a1b2c3d4e5f6-us6";
pub const LIST: &str = "c0ffee1234";

/// The fake Mailchimp API of one test. When the test ends (and has not already failed), every
/// request it received and every answer it gave is checked against Mailchimp's API document.
pub struct Fake(FakeMailchimp);

impl std::ops::Deref for Fake {
    type Target = FakeMailchimp;

    fn deref(&self) -> &FakeMailchimp {
        &self.0
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            conformance::assert_requests_conform(&self.0.requests());
        }
    }
}

impl Fake {
    pub fn start(lists: Vec<FakeList>) -> Fake {
        Fake(FakeMailchimp::start(KEY, lists).expect("the fake starts"))
    }
}

/// A fake with one audience (default merge fields plus the given members).
pub fn fake_with(setup: impl FnOnce(&mut FakeList)) -> Fake {
    let mut list = FakeList::with_default_fields(LIST, "Test Audience");
    setup(&mut list);
    Fake::start(vec![list])
}

pub fn fake() -> Fake {
    fake_with(|_| {})
}

pub fn config(extra: Value) -> Value {
    let mut config = json!({"api_key": KEY, "list_id": LIST});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

pub fn stream(name: &str, namespace: Option<&str>, mode: &str) -> Value {
    json!({"stream": {"name": name, "namespace": namespace, "json_schema": {"type": "object"},
                      "supported_sync_modes": ["full_refresh", "incremental"]},
           "sync_mode": "incremental", "cursor_field": ["updated_at"],
           "destination_sync_mode": mode, "primary_key": [["id"]]})
}

pub fn catalog(streams: Vec<Value>) -> Value {
    json!({"streams": streams})
}

pub fn record(stream: &str, namespace: Option<&str>, data: Value) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "namespace": namespace, "data": data, "emitted_at": 1795687418000u64}})
        .to_string()
}

pub fn stream_state(stream: &str, namespace: Option<&str>, id: u64, source_count: u64) -> String {
    json!({"type": "STATE", "state": {"type": "STREAM",
        "stream": {"stream_descriptor": {"name": stream, "namespace": namespace}, "stream_state": {"cursor": id}},
        "sourceStats": {"recordCount": source_count as f64}, "id": id}})
    .to_string()
}

/// The files a command reads, in a temporary folder that lives as long as this value.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new(config: &Value, catalog: &Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        std::fs::write(dir.path().join("catalog.json"), catalog.to_string()).unwrap();
        Self { dir }
    }

    pub fn config(&self) -> String {
        self.path("config.json")
    }

    pub fn catalog(&self) -> String {
        self.path("catalog.json")
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub lines: Vec<Value>,
    /// The stdout lines as printed (for byte-for-byte checks).
    pub raw: Vec<String>,
    pub stderr: String,
}

impl Run {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == kind).collect()
    }

    pub fn states(&self) -> Vec<&Value> {
        self.of_type("STATE").into_iter().map(|l| &l["state"]).collect()
    }

    /// Fails, showing every LOG message, unless one of them contains `text`.
    pub fn assert_logged(&self, text: &str) {
        let logs = self.logs();
        assert!(logs.contains(text), "no LOG message contains {text:?}:\n{logs}");
    }

    pub fn logs(&self) -> String {
        self.of_type("LOG")
            .iter()
            .map(|l| l["log"]["message"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_destination-mailchimp"))
}

/// Starts the binary with debug logging, pointed at `base_url`.
pub fn spawn(args: &[&str], base_url: Option<&str>) -> Child {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match base_url {
        Some(url) => command.env("MAILCHIMP_API_BASE_URL", url),
        None => command.env_remove("MAILCHIMP_API_BASE_URL"),
    };
    command.spawn().expect("the connector binary starts")
}

/// Starts `write` with stdin left open, for tests that watch a running sync; `lines` are sent
/// (and flushed) first.
pub fn start_write(files: &Files, base_url: &str, lines: &[String]) -> (Child, ChildStdin) {
    let mut child =
        spawn(&["write", "--config", &files.config(), "--catalog", &files.catalog()], Some(base_url));
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    (child, stdin)
}

/// Runs the binary to the end with `input` on stdin, and checks what every run must satisfy:
/// each stdout line is one Airbyte message, and the API key appears nowhere.
/// Runs `write` with this config and catalog on these input lines.
pub fn write_lines(base_url: &str, config: &Value, catalog: &Value, lines: &[String]) -> Run {
    let files = Files::new(config, catalog);
    let args = ["write", "--config", &files.config(), "--catalog", &files.catalog()];
    run(&args, &lines.join("\n"), Some(base_url))
}

/// Runs a command whose stdout is for people (`preview`): (exit code, stdout, stderr); the key
/// appears in neither, and nothing panicked.
pub fn run_for_people(args: &[&str], input: &str, base_url: &str) -> (i32, String, String) {
    let mut child = spawn(args, Some(base_url));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap());
    assert_no_secret(&stdout, &stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

pub fn run(args: &[&str], input: &str, base_url: Option<&str>) -> Run {
    run_bytes(args, input.as_bytes().to_vec(), base_url)
}

/// Like `run`, with raw bytes on stdin (they need not be UTF-8); also checks that nothing panicked.
pub fn run_bytes(args: &[&str], input: Vec<u8>, base_url: Option<&str>) -> Run {
    let mut child = spawn(args, base_url);
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    let raw: Vec<String> = stdout.lines().map(str::to_string).collect();
    let lines = stdout.lines().map(parse_protocol_line).collect();
    assert_no_secret(&stdout, &stderr);
    assert!(!stderr.contains("panicked"), "the connector panicked:\n{stderr}");
    let lines: Vec<Value> = lines;
    if args.first() == Some(&"check") {
        assert!(
            lines.len() == 1 && lines[0]["type"] == "CONNECTION_STATUS",
            "check prints exactly one CONNECTION_STATUS: {lines:?}"
        );
    }
    Run { code: status.code().unwrap_or(-1), lines, raw, stderr }
}

/// The protocol's own JSON schema for one AirbyteMessage (airbyte_protocol.yaml rendered as JSON,
/// kept in tests/data).
fn message_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let protocol: Value = serde_json::from_str(include_str!("../data/airbyte_protocol.json")).unwrap();
        let schema = json!({"definitions": protocol["definitions"], "$ref": "#/definitions/AirbyteMessage"});
        jsonschema::draft7::options().build(&schema).expect("the protocol schema compiles")
    })
}

/// Asserts that a stdout line is one compact AirbyteMessage, valid against the protocol's schema,
/// whose payload matches its type (which the schema does not check); keeps it for the
/// conformance check with the protocol's pydantic models when PROTOCOL_LINES_DIR is set.
pub fn parse_protocol_line(line: &str) -> Value {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    // Optional fields may be explicit nulls (PyAirbyte sends them so, and states are echoed as
    // received); the schema writes them as optional, so nulls are read as absent, as the models do.
    let errors: Vec<String> =
        message_schema().iter_errors(&without_nulls(&value)).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "stdout line is not a valid AirbyteMessage ({errors:?}): {line}");
    if let Some(state) = value.get("state").filter(|_| value["type"] == "STATE") {
        let stats = &state["destinationStats"];
        assert!(
            stats["recordCount"].is_f64() && stats["rejectedRecordCount"].is_f64(),
            "a STATE echo carries its counts as numbers: {line}"
        );
    }

    let payload = match value["type"].as_str() {
        Some("SPEC") => "spec",
        Some("CONNECTION_STATUS") => "connectionStatus",
        Some("STATE") => "state",
        Some("LOG") => "log",
        Some("TRACE") => "trace",
        Some("DESTINATION_CATALOG") => "destination_catalog",
        other => panic!("unexpected message type {other:?}: {line}"),
    };
    assert!(value[payload].is_object(), "{payload} missing: {line}");
    assert!(!line.contains('\n'));
    // Only lines that passed every check here go on to the models' check.
    if let Ok(dir) = std::env::var("PROTOCOL_LINES_DIR") {
        keep_line(&dir, line);
    }
    value
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Appends a line to this test process's file in `dir`.
fn keep_line(dir: &str, line: &str) {
    let path = std::path::Path::new(dir).join(format!("lines-{}.jsonl", std::process::id()));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("the lines file");
    // One write per line: tests run in parallel threads and append to the same file.
    file.write_all(format!("{line}\n").as_bytes()).expect("a line is kept");
}

/// Fails if the API key, its secret part or the Basic token the connector sends appears in either output.
pub fn assert_no_secret(stdout: &str, stderr: &str) {
    use base64::Engine;
    let secret = KEY.split('-').next().unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("destination-mailchimp:{KEY}"));
    for (name, form) in [("API key", secret), ("Basic token", token.as_str())] {
        assert!(!stdout.contains(form), "the {name} appeared on stdout:\n{stdout}");
        assert!(!stderr.contains(form), "the {name} appeared on stderr:\n{stderr}");
    }
}

/// Sends SIGTERM to a running connector, as a platform cancelling the sync does.
pub fn sigterm(child: &Child) {
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
}

/// Reads stdout lines as they come (for tests that watch a running sync).
pub fn lines_of(child: &mut Child) -> impl Iterator<Item = String> {
    BufReader::new(child.stdout.take().unwrap()).lines().map(|l| l.unwrap())
}
