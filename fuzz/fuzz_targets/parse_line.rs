//! Fuzz target: any stdin line through the message parser, and any STATE it accepts through the
//! scope reader and the echo, which must keep every field it was given.
#![no_main]

use destination_mailchimp::protocol::{parse_line, state_echo, state_scope, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(Incoming::State(state)) = parse_line(line) {
        let _ = state_scope(&state);
        let echoed = state_echo(state.clone(), 1, 0);
        for (key, value) in state.as_object().expect("a parsed state is an object") {
            if key != "destinationStats" {
                assert_eq!(&echoed["state"][key], value);
            }
        }
    }
});
