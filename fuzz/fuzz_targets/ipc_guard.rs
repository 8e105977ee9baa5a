//! Fuzzes what the server does with a prepared-statement handle a client
//! sends back (`src/server/handle.rs`, with `src/server/ipc_guard/`, the
//! files the server compiles): protobuf decoding, the check of the bound
//! parameters' Arrow IPC stream, and Arrow's `StreamReader` on what passes.
//! The raw input is also checked as a bare IPC stream, so both layers get
//! inputs shaped for them.
//!
//! Beyond "never panics": run with `-malloc_limit_mb=64`. The guard's limit
//! for handles is 4 MiB, so an input that makes Arrow or prost allocate by a
//! claimed length instead of the bytes sent is a crash here.

#![no_main]

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use libfuzzer_sys::fuzz_target;

#[path = "../../src/server/ipc_guard/mod.rs"]
#[allow(dead_code)]
mod ipc_guard;

#[path = "../../src/server/handle.rs"]
#[allow(dead_code)]
mod handle;

const LIMIT: usize = 64 << 10;

/// libFuzzer's hook aborts on every panic; Arrow's schema conversion panics
/// on malformed schemas by design, and the guard catches exactly those.
/// Every other panic still aborts.
fn let_the_guard_catch_arrow_schema_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_schema_conversion = info
                .location()
                .is_some_and(|l| l.file().contains("arrow-ipc") && l.file().ends_with("convert.rs"));
            if !in_schema_conversion {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_the_guard_catch_arrow_schema_panics();
    if let Ok(decoded) = handle::Handle::decode(data) {
        // What decodes must encode and decode to the same statement.
        let again = handle::Handle::decode(&decoded.encode().expect("re-encodes")).expect("decodes");
        assert_eq!(again, decoded);
    }
    if ipc_guard::check_stream(data, LIMIT).is_err() {
        return;
    }
    let Ok(reader) = StreamReader::try_new(Cursor::new(data), None) else {
        return;
    };
    for batch in reader {
        let Ok(batch) = batch else {
            return;
        };
        assert!(batch.num_rows() <= LIMIT);
    }
});
