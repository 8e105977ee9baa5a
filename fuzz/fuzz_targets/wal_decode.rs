//! Fuzzes the WAL record decoder (`ingest::wal::decode_records` in
//! `src/ingest/wal.rs`, the very file the server compiles): what recovery
//! reads back from disk after a crash, a torn write or bit rot.
//!
//! The first input byte picks what the rest is:
//! - even: a WAL file image, as found on disk;
//! - odd: a record payload before compression (`table_id` then an Arrow IPC
//!   stream), which the target compresses and frames with a valid header and
//!   checksum, so the fuzzer reaches the zstd and Arrow IPC decoding that a
//!   checksum mismatch would otherwise stop.
//!
//! Checked: no panic; a cut, if any, covers exactly the rest of the image;
//! every record decoded re-encodes and decodes to the same batches.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/ingest/wal.rs"]
#[allow(dead_code)]
mod wal;

/// libfuzzer-sys makes every panic abort, even one `decode_records` catches
/// (it catches arrow's IPC reader panicking on malformed input). Keep the
/// message for every other panic and let the harness abort on uncaught ones.
fn let_decoder_panics_be_caught() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let in_arrow = info
                .location()
                .is_some_and(|l| l.file().contains("/arrow-"));
            if !in_arrow {
                eprintln!("{info}");
            }
        }))
    });
}

fuzz_target!(|data: &[u8]| {
    let_decoder_panics_be_caught();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let image = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(compressed) = zstd::bulk::compress(rest, 1) else {
            return;
        };
        wal::frame(&compressed)
    };
    let (records, cut) = wal::decode_records(&image);
    if let Some(cut) = &cut {
        assert!(cut.offset < image.len() as u64, "{cut:?}");
        assert_eq!(cut.offset + cut.bytes, image.len() as u64, "{cut:?}");
    }
    for record in records {
        if record.batches.is_empty() {
            continue;
        }
        let encoded = wal::encode_record(record.table_id, &record.batches)
            .expect("a decoded record re-encodes");
        let (again, cut) = wal::decode_records(&encoded);
        assert!(cut.is_none(), "{cut:?}");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].table_id, record.table_id);
        assert_eq!(again[0].batches, record.batches);
    }
});
