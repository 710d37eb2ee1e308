//! Fuzz target: arbitrary bytes as an ingest request (the first byte picks the route — each
//! payload family, each Segment kind — and how the body is labelled: JSON, form, text,
//! none, `?compression=gzip-js`, an `Idempotency-Key`). The decode + parse + validate of the
//! routes must refuse it with a 4xx or accept a payload Postgres stores; never panic
//! (`hogsend_runtime::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hogsend_runtime::fuzzing::check_bytes(data) {
        panic!("{e}");
    }
});
