//! Fuzz target: arbitrary bytes decoded into a JSON document shaped like the ingest payloads
//! (their field names, ids at and past the limits, NUL, edge timestamps, reserved names),
//! sent to every route, and to PostHog's capture API also gzipped and as base64 forms. Each
//! must be a 4xx or a payload Postgres stores; never a panic (`hogsend_runtime::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hogsend_runtime::fuzzing::check_json(data) {
        panic!(
            "{e}\ndocument: {}",
            hogsend_runtime::fuzzing::json_from_bytes(data)
        );
    }
});
