//! Fixed vectors for the canonical encoding and hash (computed independently
//! with Python's hashlib, see docs/AUDIT.md), and chain verification.

use super::*;

fn event() -> Event {
    Event {
        actor: "alice".into(),
        action: "write".into(),
        table_name: Some("samples".into()),
        row_count: Some(3),
        detail: Some("interface=flight_sql.ingest".into()),
        reason: None,
    }
}

const TS: i64 = 1_700_000_000_000_000_000;

#[test]
fn canonical_encoding_and_hash_match_the_fixed_vector() {
    let bytes = canonical_bytes(1, TS, &event(), &GENESIS);
    assert_eq!(
        hex(&bytes),
        "4c4c41310100000000000000010117979cfe362a00000100000005616c69636501000000057772697465\
         010000000773616d706c6573010000000000000003010000001b696e746572666163653d666c69676874\
         5f73716c2e696e676573740001000000200000000000000000000000000000000000000000000000000000\
         000000000000"
    );
    let mut chain = Chain::default();
    let entry = chain.seal(event(), TS);
    assert_eq!(
        hex(&entry.hash),
        "c796e3c53892a8b516d5b943bbf008da8914bb32e805e9e5e2fc2a3992c46eea"
    );
    assert_eq!(entry.prev_hash, GENESIS.to_vec());
    assert_eq!((chain.seq, chain.hash.to_vec()), (1, entry.hash.clone()));
}

#[test]
fn null_and_empty_encode_differently() {
    let mut empty = event();
    empty.reason = Some(String::new());
    assert_ne!(
        canonical_bytes(1, TS, &event(), &GENESIS),
        canonical_bytes(1, TS, &empty, &GENESIS)
    );
    // Moving a byte from one field to the next changes the encoding.
    let mut shifted = event();
    shifted.actor = "alicew".into();
    shifted.action = "rite".into();
    assert_ne!(
        canonical_bytes(1, TS, &event(), &GENESIS),
        canonical_bytes(1, TS, &shifted, &GENESIS)
    );
}

fn chain(n: u64) -> Vec<Entry> {
    let mut chain = Chain::default();
    (0..n).map(|i| chain.seal(event(), TS + i as i64)).collect()
}

fn first_break(entries: &[Entry]) -> Option<Break> {
    let mut check = ChainCheck::default();
    for e in entries {
        check.push(e);
    }
    assert_eq!(check.checked(), entries.len() as u64);
    check.finish()
}

#[test]
fn an_untouched_chain_verifies_and_round_trips_through_a_batch() {
    let entries = chain(5);
    assert_eq!(first_break(&entries), None);
    let batch = to_batch(&entries);
    assert_eq!(from_batch(&batch).unwrap(), entries);
}

#[test]
fn each_kind_of_tampering_names_the_entry() {
    let mut changed = chain(5);
    changed[2].event.row_count = Some(4);
    assert_eq!(first_break(&changed).unwrap().seq, 3);

    let mut rehashed = chain(5);
    // Recomputing the tampered entry's hash moves the break to the link.
    rehashed[2].event.detail = None;
    rehashed[2].hash = rehashed[2].expected_hash().to_vec();
    let b = first_break(&rehashed).unwrap();
    assert_eq!(b.seq, 4, "{}", b.reason);

    let mut flipped = chain(5);
    flipped[1].hash[0] ^= 1;
    assert_eq!(first_break(&flipped).unwrap().seq, 2);

    let mut gap = chain(5);
    gap.remove(3);
    let b = first_break(&gap).unwrap();
    assert_eq!(b.seq, 4);
    assert!(b.reason.contains("seq 5"), "{}", b.reason);
}
