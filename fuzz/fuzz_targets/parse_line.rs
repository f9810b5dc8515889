//! Fuzz target: any stdin line through the message parser, and any STATE it accepts through the
//! scope reader and the echo, which must be valid JSON and keep every field it was given.
#![no_main]

use destination_mailchimp::protocol::{parse_line, state_echo, state_scope, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(Incoming::State(state)) = parse_line(line) {
        let _ = state_scope(&state);
        let echoed: serde_json::Value = serde_json::from_str(&state_echo(&state, 1, 0)).expect("the echo is JSON");
        let given: serde_json::Value = serde_json::from_str(state.as_json()).expect("a parsed state is JSON");
        for (key, value) in given.as_object().expect("a parsed state is an object") {
            if key != "destinationStats" {
                assert_eq!(&echoed["state"][key], value);
            }
        }
    }
});
