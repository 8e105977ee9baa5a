//! Unit tests of stamping: the interval lookup (boundaries, open runs,
//! overlaps, gaps), latest-wins merging of runs and tags, and which sample
//! rows get stamped or keep what they were given.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray, TimestampNanosecondArray};

use super::*;
use crate::model;

fn utf8<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn nanos(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter(values))
}

/// A batch of `def` from named columns, normalized as the write path does.
fn normalized(def: &TableDef, columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    model::normalize_batch(def, &batch, 0).unwrap()
}

/// (equipment, start, end or None, work_order, lot) rows.
fn runs(rows: &[(&str, i64, Option<i64>, &str, &str)]) -> RecordBatch {
    normalized(
        model::production_runs(),
        vec![
            ("equipment", utf8(rows.iter().map(|r| Some(r.0)))),
            ("start_ts", nanos(rows.iter().map(|r| Some(r.1)))),
            ("end_ts", nanos(rows.iter().map(|r| r.2))),
            ("work_order", utf8(rows.iter().map(|r| Some(r.3)))),
            ("lot", utf8(rows.iter().map(|r| Some(r.4)))),
        ],
    )
}

fn tags(rows: &[(&str, Option<&str>)]) -> RecordBatch {
    normalized(
        model::tags(),
        vec![
            ("tag", utf8(rows.iter().map(|r| Some(r.0)))),
            ("equipment", utf8(rows.iter().map(|r| r.1))),
        ],
    )
}

type Text<'a> = Option<&'a str>;

/// (tag, ts, equipment, work_order, lot) rows.
fn samples(rows: &[(&str, i64, Text, Text, Text)]) -> RecordBatch {
    normalized(
        model::samples(),
        vec![
            ("tag", utf8(rows.iter().map(|r| Some(r.0)))),
            ("ts", nanos(rows.iter().map(|r| Some(r.1)))),
            ("equipment", utf8(rows.iter().map(|r| r.2))),
            ("work_order", utf8(rows.iter().map(|r| r.3))),
            ("lot", utf8(rows.iter().map(|r| r.4))),
        ],
    )
}

fn index(run_rows: &[(&str, i64, Option<i64>, &str, &str)]) -> StampIndex {
    let mut index = StampIndex::default();
    index
        .merge(model::production_runs(), &runs(run_rows))
        .unwrap();
    index
}

fn lot_at(index: &StampIndex, equipment: &str, ts: i64) -> Option<String> {
    index
        .context_at(equipment, ts)
        .and_then(|c| c.lot.as_deref().map(String::from))
}

fn column(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(name).unwrap().as_string::<i32>();
    (0..batch.num_rows())
        .map(|r| text(array, r).map(String::from))
        .collect()
}

#[test]
fn start_is_inclusive_end_exclusive_and_open_runs_never_end() {
    let index = index(&[
        ("oven", 100, Some(200), "W1", "L1"),
        ("oven", 200, Some(300), "W2", "L2"),
        ("oven", 400, None, "W3", "L3"),
    ]);
    assert_eq!(lot_at(&index, "oven", 99), None);
    assert_eq!(lot_at(&index, "oven", 100).as_deref(), Some("L1"));
    assert_eq!(lot_at(&index, "oven", 199).as_deref(), Some("L1"));
    assert_eq!(lot_at(&index, "oven", 200).as_deref(), Some("L2"));
    assert_eq!(lot_at(&index, "oven", 299).as_deref(), Some("L2"));
    // The gap between two runs: nobody.
    assert_eq!(lot_at(&index, "oven", 300), None);
    assert_eq!(lot_at(&index, "oven", 399), None);
    assert_eq!(lot_at(&index, "oven", 400).as_deref(), Some("L3"));
    assert_eq!(lot_at(&index, "oven", i64::MAX - 1).as_deref(), Some("L3"));
    assert_eq!(lot_at(&index, "mixer", 150), None);
}

#[test]
fn zero_length_runs_cover_nothing() {
    let index = index(&[("oven", 100, Some(100), "W1", "L1")]);
    assert_eq!(lot_at(&index, "oven", 100), None);
}

#[test]
fn of_overlapping_runs_the_latest_start_wins() {
    let index = index(&[
        // A long run, a short one inside it, and an open one that overlaps its end.
        ("oven", 0, Some(1000), "W1", "L1"),
        ("oven", 100, Some(200), "W2", "L2"),
        ("oven", 900, None, "W3", "L3"),
    ]);
    assert_eq!(lot_at(&index, "oven", 50).as_deref(), Some("L1"));
    assert_eq!(lot_at(&index, "oven", 150).as_deref(), Some("L2"));
    // The short run has ended; the long one still covers.
    assert_eq!(lot_at(&index, "oven", 200).as_deref(), Some("L1"));
    assert_eq!(lot_at(&index, "oven", 899).as_deref(), Some("L1"));
    assert_eq!(lot_at(&index, "oven", 900).as_deref(), Some("L3"));
    assert_eq!(lot_at(&index, "oven", 5000).as_deref(), Some("L3"));
}

#[test]
fn lookup_equals_a_linear_scan_on_random_runs() {
    // A tiny xorshift, so the test needs no crate and is repeatable.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n) as i64
    };
    let mut rows = Vec::new();
    for i in 0..60 {
        let start = next(1000);
        let end = (next(4) > 0).then(|| start + next(200));
        rows.push((start, end, format!("L{i}")));
    }
    let mut index = StampIndex::default();
    for (start, end, lot) in &rows {
        index
            .merge(
                model::production_runs(),
                &runs(&[("u", *start, *end, "W", lot)]),
            )
            .unwrap();
    }
    // The reference: latest write per start, then latest start covering ts.
    let mut latest: std::collections::BTreeMap<i64, (Option<i64>, &str)> = Default::default();
    for (start, end, lot) in &rows {
        latest.insert(*start, (*end, lot));
    }
    for ts in -5..1300 {
        let expected = latest
            .iter()
            .rev()
            .find(|(s, (e, _))| **s <= ts && e.is_none_or(|e| ts < e))
            .map(|(_, (_, lot))| lot.to_string());
        assert_eq!(lot_at(&index, "u", ts), expected, "ts {ts}");
    }
}

#[test]
fn a_rewrite_of_a_run_replaces_it() {
    let mut index = index(&[("oven", 100, None, "W1", "L1")]);
    index
        .merge(
            model::production_runs(),
            &runs(&[("oven", 100, Some(150), "W1", "L1-b")]),
        )
        .unwrap();
    assert_eq!(index.run_count(), 1);
    assert_eq!(lot_at(&index, "oven", 120).as_deref(), Some("L1-b"));
    assert_eq!(lot_at(&index, "oven", 150), None);
}

#[test]
fn stamps_only_rows_without_context_and_fills_equipment_from_tags() {
    let mut index = index(&[
        ("line1", 0, Some(100), "W1", "L1"),
        ("line2", 0, None, "W2", "L2"),
    ]);
    index
        .merge(
            model::tags(),
            &tags(&[("t.tagged", Some("line2")), ("t.cleared", Some("line1"))]),
        )
        .unwrap();
    // The latest row of a tag wins: this one no longer has equipment.
    index
        .merge(model::tags(), &tags(&[("t.cleared", None)]))
        .unwrap();
    let batch = samples(&[
        ("t.a", 10, Some("line1"), None, None),         // stamped
        ("t.a", 100, Some("line1"), None, None),        // after the run
        ("t.tagged", 10, None, None, None),             // equipment from tags
        ("t.a", 20, Some("line1"), Some("WX"), None),   // given: kept
        ("t.a", 30, Some("line1"), None, Some("LX")),   // given: kept
        ("t.tagged", 40, None, Some("WY"), Some("LY")), // equipment only
        ("t.cleared", 50, None, None, None),            // no equipment
        ("t.b", 60, Some("line9"), None, None),         // no runs there
        ("t.tagged", 70, Some("line1"), None, None),    // row beats tags
    ]);
    let (stamped, counts) = index.stamp(&batch).unwrap().expect("changed");
    assert_eq!(
        counts,
        StampCounts {
            stamped: 3,
            equipment_filled: 2
        }
    );
    let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
    assert_eq!(
        column(&stamped, "lot"),
        s(&[
            Some("L1"),
            None,
            Some("L2"),
            None,
            Some("LX"),
            Some("LY"),
            None,
            None,
            Some("L1")
        ])
    );
    assert_eq!(
        column(&stamped, "work_order"),
        s(&[
            Some("W1"),
            None,
            Some("W2"),
            Some("WX"),
            None,
            Some("WY"),
            None,
            None,
            Some("W1")
        ])
    );
    assert_eq!(
        column(&stamped, "equipment"),
        s(&[
            Some("line1"),
            Some("line1"),
            Some("line2"),
            Some("line1"),
            Some("line1"),
            Some("line2"),
            None,
            Some("line9"),
            Some("line1")
        ])
    );
    assert_eq!(column(&stamped, "tag"), column(&batch, "tag"));
    // Stamping is idempotent: a second pass changes nothing.
    assert!(index.stamp(&stamped).unwrap().is_none());
}

#[test]
fn batches_with_nothing_to_do_are_left_alone() {
    let index = index(&[("line1", 0, None, "W1", "L1")]);
    let given = samples(&[("t", 10, Some("line1"), Some("W"), Some("L"))]);
    assert!(index.stamp(&given).unwrap().is_none());
    let empty = StampIndex::default();
    let bare = samples(&[("t", 10, Some("line1"), None, None)]);
    assert!(empty.stamp(&bare).unwrap().is_none());
}

/// `batch` as stored by a versioned table, every row with `op`.
fn versions(def: &TableDef, batch: &RecordBatch, op: model::Op) -> RecordBatch {
    let stamp = model::Stamp {
        recorded_at: 1,
        recorded_by: "test",
        reason: Some("test"),
    };
    model::stamp(def, batch, &vec![op; batch.num_rows()], &stamp).unwrap()
}

#[test]
fn tombstones_drop_runs_and_tag_equipment() {
    let (pr, tg) = (model::production_runs(), model::tags());
    let mut index = StampIndex::default();
    let both = runs(&[
        ("oven1", 0, Some(100), "WO-1", "L-1"),
        ("oven1", 100, None, "WO-2", "L-2"),
    ]);
    index
        .merge(pr, &versions(pr, &both, model::Op::Insert))
        .unwrap();
    index
        .merge(
            tg,
            &versions(tg, &tags(&[("t1", Some("oven1"))]), model::Op::Insert),
        )
        .unwrap();
    let first = runs(&[("oven1", 0, Some(100), "WO-1", "L-1")]);
    index
        .merge(pr, &versions(pr, &first, model::Op::Delete))
        .unwrap();
    index
        .merge(
            tg,
            &versions(tg, &tags(&[("t1", Some("oven1"))]), model::Op::Delete),
        )
        .unwrap();
    assert_eq!(index.context_at("oven1", 50), None, "the deleted run");
    assert_eq!(
        index
            .context_at("oven1", 150)
            .and_then(|c| c.lot.as_deref()),
        Some("L-2")
    );
    assert_eq!(index.run_count(), 1);
    assert_eq!(index.tag_equipment("t1"), None, "the deleted tag");
    // Deleting the last run of an equipment forgets the equipment.
    let second = runs(&[("oven1", 100, None, "WO-2", "L-2")]);
    index
        .merge(pr, &versions(pr, &second, model::Op::Delete))
        .unwrap();
    assert!(index.is_empty());
}
