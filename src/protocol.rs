//! Airbyte protocol messages: lenient parsing of what arrives on stdin, and the lines this connector prints.

use crate::error::ConnectorError;
pub use crate::fields::RecordData;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A stream's identity: its namespace (if any) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A stream as a RECORD names it, borrowed from the input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName<'a> {
    pub namespace: Option<Cow<'a, str>>,
    pub name: Cow<'a, str>,
}

impl StreamName<'_> {
    /// Whether this is the stream `key` names.
    pub fn is(&self, key: &StreamKey) -> bool {
        self.name == key.name.as_str() && self.namespace.as_deref() == key.namespace.as_deref()
    }

    pub fn to_key(&self) -> StreamKey {
        StreamKey { namespace: self.namespace.as_deref().map(str::to_string), name: self.name.to_string() }
    }
}

/// A RECORD from the source, borrowed from its input line. `data` is whatever the source sent
/// (normally an object).
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub stream: StreamName<'a>,
    pub data: RecordData<'a>,
}

/// What one stdin line means to the connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<'a> {
    Record(Record<'a>),
    /// The STATE payload exactly as received, so that every field (`id`, `sourceStats`, …) survives.
    State(RawState),
    /// LOG, TRACE, CONTROL and other types that a destination does not act on.
    Ignored,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<RecordPayload<'a>>,
    #[serde(borrow)]
    state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RecordPayload<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<RecordData<'a>>,
}

/// Why a stdin line could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Parses one stdin line; a record borrows its stream's name and its fields from the line (a
/// field's value is only scanned here, and read when the mapping uses it, so that a field nested
/// deeper than the parser's recursion limit costs nothing). Unknown fields and explicit nulls are
/// accepted.
pub fn parse_line(line: &[u8]) -> Result<Incoming<'_>, ParseError> {
    // One UTF-8 check of the whole line (fast), then a parser that need not check each string.
    let text = std::str::from_utf8(line).map_err(|e| {
        ParseError(format!("it is not valid UTF-8 (invalid bytes after byte {})", e.valid_up_to()))
    })?;
    // Most lines are plain records, read in one pass; the rest (and any doubt) go to serde_json.
    if let Some(record) = crate::scan::record(text) {
        return Ok(record);
    }
    parse_with_serde(text)
}

/// Parses one line with serde_json: the reference reading, and the one that explains what is wrong
/// with a line that is not a message.
pub fn parse_with_serde(text: &str) -> Result<Incoming<'_>, ParseError> {
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
        let starts_as_object = text.bytes().find(|b| !b.is_ascii_whitespace()) == Some(b'{');
        if e.is_data() && !starts_as_object {
            ParseError("it is not a JSON object".to_string())
        } else if e.is_data() {
            ParseError(format!("it is not an Airbyte message ({e})"))
        } else {
            ParseError(format!("it is not valid JSON ({e})"))
        }
    })?;
    match envelope.kind.as_deref() {
        Some("RECORD") => {
            let record =
                envelope.record.ok_or_else(|| ParseError("a RECORD message has no \"record\"".into()))?;
            let name =
                record.stream.ok_or_else(|| ParseError("a RECORD message has no \"stream\"".into()))?;
            Ok(Incoming::Record(Record {
                stream: StreamName { namespace: record.namespace, name },
                data: record.data.unwrap_or(RecordData::Other(Value::Null)),
            }))
        }
        Some("STATE") => match envelope.state {
            Some(state) if state.get().starts_with('{') => Ok(Incoming::State(RawState(state.to_owned()))),
            _ => Err(ParseError("a STATE message has no \"state\" object".into())),
        },
        Some(
            "LOG" | "TRACE" | "CONTROL" | "SPEC" | "CONNECTION_STATUS" | "CATALOG" | "DESTINATION_CATALOG",
        ) => Ok(Incoming::Ignored),
        Some(other) => Err(ParseError(format!("its type {other:?} is not an Airbyte message type"))),
        None => Err(ParseError("it has no \"type\", so it is not an Airbyte message".into())),
    }
}

/// Which records a STATE covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateScope {
    /// A STREAM state: the records of one stream.
    Stream(StreamKey),
    /// A GLOBAL or LEGACY state: the records of every stream.
    All,
}

/// A STATE payload exactly as received: echoed byte for byte (each field's value as it came, in
/// the order it came), so that cursors beyond f64 precision and every other field survive.
#[derive(Debug, Clone)]
pub struct RawState(Box<RawValue>);

impl PartialEq for RawState {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl RawState {
    /// A state from its JSON text; `None` unless it is an object.
    pub fn from_json(text: &str) -> Option<Self> {
        let raw = RawValue::from_string(text.trim().to_string()).ok()?;
        raw.get().starts_with('{').then_some(Self(raw))
    }

    /// The JSON text as received.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The top-level fields in their order, each value as received.
    fn fields(&self) -> Vec<(String, &RawValue)> {
        struct Fields<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de> serde::de::Visitor<'de> for Fields<'de> {
            type Value = Vec<(String, &'de RawValue)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a state object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(fields)
            }
        }
        let mut deserializer = serde_json::Deserializer::from_str(self.0.get());
        serde::Deserializer::deserialize_map(&mut deserializer, Fields(std::marker::PhantomData))
            .unwrap_or_default()
    }
}

/// The part of a STATE that says which records it covers.
#[derive(Deserialize)]
struct StateHead {
    #[serde(rename = "type")]
    kind: Option<String>,
    stream: Option<StreamHead>,
}

#[derive(Deserialize)]
struct StreamHead {
    stream_descriptor: Option<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    name: Option<String>,
    namespace: Option<String>,
}

/// Reads the scope of a STATE payload (no `type` means LEGACY).
pub fn state_scope(state: &RawState) -> StateScope {
    let Ok(head) = serde_json::from_str::<StateHead>(state.as_json()) else { return StateScope::All };
    if head.kind.as_deref() == Some("STREAM") {
        let descriptor = head.stream.and_then(|s| s.stream_descriptor);
        if let Some(Descriptor { name: Some(name), namespace }) = descriptor {
            return StateScope::Stream(StreamKey { namespace, name });
        }
    }
    StateScope::All
}

/// The STATE echo, as one line of JSON: the received payload with `destinationStats` added (counts
/// as JSON floats); every other field's value is written exactly as it came.
pub fn state_echo(state: &RawState, accepted: u64, rejected: u64) -> String {
    let mut line = String::with_capacity(state.as_json().len() + 96);
    line.push_str(r#"{"type":"STATE","state":{"#);
    for (key, value) in state.fields() {
        if key == "destinationStats" {
            continue;
        }
        line.push_str(&serde_json::to_string(&key).expect("a string serializes"));
        line.push(':');
        line.push_str(value.get());
        line.push(',');
    }
    line.push_str(&format!(
        r#""destinationStats":{{"recordCount":{},"rejectedRecordCount":{}}}}}}}"#,
        Value::from(accepted as f64),
        Value::from(rejected as f64)
    ));
    line
}

/// Log levels of LOG messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

pub fn log_message(level: Level, message: &str) -> Value {
    let level = match level {
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    };
    json!({"type": "LOG", "log": {"level": level, "message": message}})
}

pub fn spec_message(spec: &Value) -> Value {
    json!({"type": "SPEC", "spec": spec})
}

pub fn connection_status(succeeded: bool, message: &str) -> Value {
    let status = if succeeded { "SUCCEEDED" } else { "FAILED" };
    json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": status, "message": message}})
}

pub fn trace_error(error: &ConnectorError) -> Value {
    let mut detail = Map::new();
    detail.insert("message".into(), Value::String(error.message.clone()));
    if let Some(internal) = &error.internal {
        detail.insert("internal_message".into(), Value::String(internal.clone()));
    }
    detail.insert("failure_type".into(), serde_json::to_value(error.failure_type).unwrap_or(Value::Null));
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_millis(), "error": detail}})
}

fn now_millis() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0)
}

/// The one writer of stdout: each message is one compact JSON line, flushed at once.
pub struct Output<W: Write> {
    out: W,
}

impl<W: Write> Output<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    pub fn send(&mut self, message: &Value) -> Result<(), ConnectorError> {
        let mut line = serde_json::to_vec(message).expect("a JSON value always serializes");
        line.push(b'\n');
        self.write_line(&line)
    }

    /// Sends a line that is already one compact JSON message (a state echo).
    pub fn send_line(&mut self, line: &str) -> Result<(), ConnectorError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.write_line(&bytes)
    }

    /// One write and a flush per message, so that a message is never split.
    fn write_line(&mut self, line: &[u8]) -> Result<(), ConnectorError> {
        self.out
            .write_all(line)
            .and_then(|_| self.out.flush())
            .map_err(|e| ConnectorError::system(format!("Could not write to standard output: {e}")))
    }

    pub fn log(&mut self, level: Level, message: &str) -> Result<(), ConnectorError> {
        self.send(&log_message(level, message))
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_leniently() {
        let line = br#"{"type":"RECORD","record":{"stream":"users","namespace":null,"data":{"email":"a@b.io"},"emitted_at":1,"meta":null,"extra":5},"log":null}"#;
        let Incoming::Record(record) = parse_line(line).unwrap() else { panic!() };
        assert_eq!(record.stream.to_key(), StreamKey { namespace: None, name: "users".into() });
        assert_eq!(record.data, RecordData::from(serde_json::json!({"email": "a@b.io"})));
    }

    #[test]
    fn keeps_every_state_field() {
        let line = br#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"u","namespace":"p"},"stream_state":{"c":1}},"sourceStats":{"recordCount":2.0},"id":17}}"#;
        let Incoming::State(state) = parse_line(line).unwrap() else { panic!() };
        assert_eq!(
            state_scope(&state),
            StateScope::Stream(StreamKey { namespace: Some("p".into()), name: "u".into() })
        );
        let echo = state_echo(&state, 2, 0);
        assert_eq!(
            echo,
            r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"u","namespace":"p"},"stream_state":{"c":1}},"sourceStats":{"recordCount":2.0},"id":17,"destinationStats":{"recordCount":2.0,"rejectedRecordCount":0.0}}}"#
        );
    }

    #[test]
    fn states_come_back_byte_for_byte_with_their_destination_stats_replaced() {
        let state = r#"{"data":{"cursor":123456789012345678901234567890,"at":1732600000.123456789,"s":"\u00e9"},"destinationStats":{"recordCount":9.0},"id":1}"#;
        let line = format!(r#"{{"type":"STATE","state":{state}}}"#);
        let Incoming::State(parsed) = parse_line(line.as_bytes()).unwrap() else { panic!() };
        assert_eq!(
            state_echo(&parsed, 1, 2),
            r#"{"type":"STATE","state":{"data":{"cursor":123456789012345678901234567890,"at":1732600000.123456789,"s":"\u00e9"},"id":1,"destinationStats":{"recordCount":1.0,"rejectedRecordCount":2.0}}}"#
        );
    }

    #[test]
    fn legacy_and_global_states_cover_all_streams() {
        let scope = |text: &str| state_scope(&RawState::from_json(text).unwrap());
        assert_eq!(scope(r#"{"data": {"x": 1}}"#), StateScope::All);
        assert_eq!(scope(r#"{"type": "GLOBAL", "global": {}}"#), StateScope::All);
        assert_eq!(scope(r#"{"type": "STREAM", "stream": {}}"#), StateScope::All);
        assert!(RawState::from_json("[1]").is_none());
    }

    #[test]
    fn a_record_nested_past_the_recursion_limit_is_read_with_its_deep_field_as_null() {
        let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
        let line = format!(
            r#"{{"type":"RECORD","record":{{"stream":"u","data":{{"email":"a@b.io","deep":{deep},"n":2}}}}}}"#
        );
        let Incoming::Record(record) = parse_line(line.as_bytes()).unwrap() else { panic!() };
        assert_eq!(record.data, RecordData::from(json!({"email": "a@b.io", "deep": null, "n": 2})));
        let state = format!(r#"{{"type":"STATE","state":{{"data":{deep}}}}}"#);
        assert!(
            matches!(parse_line(state.as_bytes()), Ok(Incoming::State(_))),
            "a deep state is kept as it is"
        );
    }

    #[test]
    fn ignores_other_types_and_rejects_non_messages() {
        assert_eq!(
            parse_line(br#"{"type":"LOG","log":{"level":"INFO","message":"x"}}"#).unwrap(),
            Incoming::Ignored
        );
        assert_eq!(parse_line(br#"{"type":"TRACE","trace":null}"#).unwrap(), Incoming::Ignored);
        assert!(parse_line(b"[1,2]").is_err());
        assert!(parse_line(b"not json").is_err());
        assert!(parse_line(br#"{"record":{}}"#).is_err());
        assert!(parse_line(br#"{"type":"RECORD","record":{"data":{}}}"#).is_err());
        assert!(parse_line(b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"\xff\"}}").is_err());
    }

    #[test]
    fn output_writes_one_compact_line_per_message() {
        let mut output = Output::new(Vec::new());
        output.send(&connection_status(true, "ok")).unwrap();
        output.log(Level::Warn, "careful").unwrap();
        let text = String::from_utf8(output.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"connectionStatus":{"message":"ok","status":"SUCCEEDED"},"type":"CONNECTION_STATUS"}"#
        );
    }
}
