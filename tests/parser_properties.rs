//! Property tests for the stdin message parser (the fuzz target in `fuzz/` explores the same code
//! for longer): no input makes it panic, every well-formed RECORD or STATE reads back intact, and
//! the one-pass reader of RECORD lines reads each line as serde_json does, or leaves it to it.

use destination_mailchimp::fields::RecordData;
use destination_mailchimp::protocol::{parse_line, parse_with_serde, Incoming, StreamKey};
use destination_mailchimp::scan;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_give_a_message_or_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_line(&bytes);
    }

    #[test]
    fn json_that_is_almost_a_message_never_panics(kind in prop_oneof![Just("RECORD".to_string()), Just("STATE".to_string()), Just("LOG".to_string()), ".{0,8}"],
                                                 record in json_value(), state in json_value()) {
        let line = json!({"type": kind, "record": record, "state": state}).to_string();
        let _ = parse_line(line.as_bytes());
    }

    #[test]
    fn records_and_states_read_back_intact(stream in ".{1,10}", namespace in proptest::option::of(".{0,6}"),
                                           data in json_value(), state in json_value()) {
        let line = json!({"type": "RECORD", "record": {"stream": stream, "namespace": namespace, "data": data, "emitted_at": 1}});
        match parse_line(line.to_string().as_bytes()) {
            Ok(Incoming::Record(record)) => {
                prop_assert_eq!(record.stream.to_key(), StreamKey { namespace, name: stream });
                prop_assert_eq!(record.data, RecordData::from(data));
            }
            other => prop_assert!(false, "{:?}", other),
        }
        let state = json!({"type": "STREAM", "payload": state, "id": 3});
        let line = json!({"type": "STATE", "state": state});
        let Ok(Incoming::State(parsed)) = parse_line(line.to_string().as_bytes()) else {
            return Err(TestCaseError::fail("a STATE line"));
        };
        prop_assert_eq!(parsed.as_json(), state.to_string(), "the state's text, unchanged");
    }
}

/// When the one-pass reader reads a line, serde_json reads it the same: the same stream and the
/// same fields, each value with the same text.
fn same_as_reference(line: &str) -> Result<(), TestCaseError> {
    if let Some(fast) = scan::record(line) {
        let reference = parse_with_serde(line);
        prop_assert!(reference.is_ok(), "the fast path read a line the reference refuses: {line}");
        let (Incoming::Record(fast), Ok(Incoming::Record(reference))) = (fast, reference) else {
            return Err(TestCaseError::fail(format!("not a record both ways: {line}")));
        };
        prop_assert_eq!(&fast.stream, &reference.stream);
        let names = |data: &RecordData| -> Vec<(String, String)> {
            data.fields()
                .unwrap_or_default()
                .iter()
                .map(|(n, v)| (n.to_string(), v.get().to_string()))
                .collect()
        };
        prop_assert_eq!(names(&fast.data), names(&reference.data), "{}", line);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn a_record_reads_as_the_reference_reads_it(stream in "[a-z]{1,6}", namespace in proptest::option::of("[a-z]{0,4}"),
                                                data in proptest::collection::vec(("[a-z_]{0,6}", json_value()), 0..6)) {
        let data: Vec<String> = data.iter().map(|(k, v)| format!("{}:{}", json!(k), v)).collect();
        let line = format!(r#"{{"type":"RECORD","record":{{"stream":{},"namespace":{},"data":{{{}}},"emitted_at":1}}}}"#,
                           json!(stream), json!(namespace), data.join(","));
        same_as_reference(&line)?;
        if !line.contains('\\') {
            prop_assert!(scan::record(&line).is_some(), "a plain record takes the fast path: {}", line);
        }
    }

    #[test]
    fn a_damaged_record_is_never_read_differently(cut in 0usize..200, byte in any::<u8>(),
                                                  data in proptest::collection::vec(("[a-z]{0,3}", json_value()), 0..4)) {
        let data: Vec<String> = data.iter().map(|(k, v)| format!("{}:{}", json!(k), v)).collect();
        let line = format!(r#"{{"type":"RECORD","record":{{"stream":"s","data":{{{}}}}}}}"#, data.join(","));
        let mut bytes = line.into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        if let Ok(text) = std::str::from_utf8(&bytes) {
            same_as_reference(text)?;
        }
        bytes.remove(at);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            same_as_reference(text)?;
        }
    }
}
