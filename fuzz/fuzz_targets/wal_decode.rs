//! Fuzzes the WAL record decoder (`storage::wal::decode_records` in
//! `src/storage/wal.rs`, the very file the server compiles): what recovery
//! reads back from disk after a crash, a torn write or bit rot.
//!
//! The first input byte picks what the rest is:
//! - even: a WAL file image, as found on disk;
//! - odd: a record payload before compression (`table_id` then an Arrow IPC
//!   stream), which the target compresses and frames with a valid header and
//!   checksum, so the fuzzer reaches the zstd and Arrow IPC decoding that a
//!   checksum mismatch would otherwise stop.
//!
//! Checked: no panic; a cut, if any, covers exactly the rest of the image,
//! and salvage (`salvage`, `records_after`) keeps whole records only, which
//! decode again without a cut;
//! every record decoded re-encodes and decodes to the same rows, and from
//! the second round trip on to identical batches.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/storage/wal.rs"]
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
        // Recovery's torn-tail test and salvage read the same bytes.
        let after = wal::records_after(&image, cut);
        let kept = wal::salvage(&image, &wal::any_group);
        assert!(kept.records.len() >= records.len());
        assert!(kept.image.len() <= image.len());
        let skipped: u64 = kept.skipped.iter().map(|s| s.bytes).sum();
        assert_eq!(kept.image.len() as u64 + skipped, image.len() as u64);
        assert_eq!(kept.skipped[0].offset, cut.offset);
        if after == 0 {
            assert_eq!(kept.records.len(), records.len(), "no group after the damage");
        }
        // What salvage keeps decodes whole.
        let (again, cut_again) = wal::decode_records(&kept.image);
        assert_eq!((again.len(), cut_again), (kept.records.len(), None));
    }
    for record in records {
        if record.batches.is_empty() {
            continue;
        }
        // Arrow's IPC reader accepts non-canonical schemas (found: a timestamp
        // whose timezone reads back as None, then as "" once re-encoded), so
        // the first re-encoding may normalize; from then on it must be exact.
        // Row counts per batch, not summed: a malformed batch may claim ~2^63
        // rows (of a type without buffers).
        let rows = |r: &wal::Record| r.batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>();
        let again = reencode(&record);
        assert_eq!(again.table_id, record.table_id);
        assert_eq!(rows(&again), rows(&record));
        let twice = reencode(&again);
        assert_eq!(twice.table_id, again.table_id);
        assert_eq!(twice.batches, again.batches);
    }
});

/// Encodes a record and decodes it back; it must come back whole.
fn reencode(record: &wal::Record) -> wal::Record {
    let encoded =
        wal::encode_record(record.table_id, &record.batches).expect("a decoded record re-encodes");
    let (mut again, cut) = wal::decode_records(&encoded);
    assert!(cut.is_none(), "{cut:?}");
    assert_eq!(again.len(), 1);
    again.pop().unwrap()
}
