//! Fuzzes the check of client Arrow IPC (`src/server/ipc_guard.rs`, the file
//! the server compiles) together with what the server does next: an IPC
//! stream the guard passes is decoded with Arrow's `StreamReader`, as a
//! prepared-statement handle's parameters are.
//!
//! Beyond "never panics": the guard's limit is tiny (64 KiB), and libFuzzer
//! runs with `-malloc_limit_mb`, so an input the guard passes that makes Arrow
//! allocate by a claimed length instead of the bytes sent is a crash here.

#![no_main]

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use libfuzzer_sys::fuzz_target;

#[path = "../../src/server/ipc_guard.rs"]
#[allow(dead_code)]
mod ipc_guard;

const LIMIT: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
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
