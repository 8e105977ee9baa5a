//! Unit tests of the genealogy index: cycles, diamonds, depth limits,
//! latest-wins merging and the incremental path matching a full load.

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};

use super::*;
use crate::model;

/// A normalized `genealogy` batch of (input, output, ts, quantity) rows.
fn edges(rows: &[(&str, &str, i64, f64)]) -> RecordBatch {
    let batch = RecordBatch::try_from_iter([
        (
            "input_lot",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as _,
        ),
        (
            "output_lot",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))) as _,
        ),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.2),
            )) as _,
        ),
        (
            "quantity",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))) as _,
        ),
        (
            "work_order",
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| Some(format!("WO-{}", r.1))),
            )) as _,
        ),
    ])
    .unwrap();
    model::normalize_batch(model::genealogy(), &batch, 0).unwrap()
}

/// (lot, depth, path) of a trace.
fn rows(
    index: &GenealogyIndex,
    start: &str,
    dir: Direction,
    max: Option<u32>,
) -> Vec<(String, u32, String)> {
    let steps = index.trace(start, dir, max);
    (0..steps.len())
        .map(|i| {
            (
                index.lot(steps[i].lot).to_string(),
                steps[i].depth,
                index.path(&steps, i).join(">"),
            )
        })
        .collect()
}

fn owned(rows: &[(&str, u32, &str)]) -> Vec<(String, u32, String)> {
    rows.iter()
        .map(|(l, d, p)| (l.to_string(), *d, p.to_string()))
        .collect()
}

#[test]
fn diamond_reaches_each_lot_once_through_the_smallest_parent() {
    // F <- B <- R, F <- A <- R: R at depth 2, through A (smaller than B).
    let index = GenealogyIndex::load([&edges(&[
        ("R", "B", 1, 1.0),
        ("R", "A", 1, 2.0),
        ("B", "F", 2, 3.0),
        ("A", "F", 2, 4.0),
    ])])
    .unwrap();
    assert_eq!(
        rows(&index, "F", Direction::Backward, None),
        owned(&[
            ("F", 0, "F"),
            ("A", 1, "F>A"),
            ("B", 1, "F>B"),
            ("R", 2, "F>A>R")
        ])
    );
    assert_eq!(
        rows(&index, "R", Direction::Forward, None),
        owned(&[
            ("R", 0, "R"),
            ("A", 1, "R>A"),
            ("B", 1, "R>B"),
            ("F", 2, "R>A>F")
        ])
    );
    let steps = index.trace("F", Direction::Backward, None);
    let r = steps.iter().find(|s| index.lot(s.lot) == "R").unwrap();
    let edge = index.edge(r.via.unwrap().1);
    assert_eq!(index.quantity(edge), Some(2.0));
    assert_eq!(index.work_order(edge), Some("WO-A"));
    assert_eq!(index.equipment(edge), None);
}

#[test]
fn cycle_terminates_and_depth_limit_applies() {
    let index = GenealogyIndex::load([&edges(&[
        ("A", "B", 1, 1.0),
        ("B", "C", 2, 1.0),
        ("C", "A", 3, 1.0),
        ("C", "D", 4, 1.0),
        ("D", "D", 5, 1.0),
    ])])
    .unwrap();
    assert_eq!(
        rows(&index, "A", Direction::Forward, None),
        owned(&[
            ("A", 0, "A"),
            ("B", 1, "A>B"),
            ("C", 2, "A>B>C"),
            ("D", 3, "A>B>C>D")
        ])
    );
    assert_eq!(
        rows(&index, "A", Direction::Forward, Some(2)),
        owned(&[("A", 0, "A"), ("B", 1, "A>B"), ("C", 2, "A>B>C")])
    );
    assert_eq!(
        rows(&index, "A", Direction::Forward, Some(0)),
        owned(&[("A", 0, "A")])
    );
    assert_eq!(
        rows(&index, "D", Direction::Backward, None),
        owned(&[
            ("D", 0, "D"),
            ("C", 1, "D>C"),
            ("B", 2, "D>C>B"),
            ("A", 3, "D>C>B>A")
        ])
    );
    assert!(index.trace("nope", Direction::Backward, None).is_empty());
}

#[test]
fn rewrites_replace_and_incremental_merge_equals_a_full_load() {
    let first = edges(&[
        ("R1", "I1", 1, 5.0),
        ("R2", "I1", 1, 6.0),
        ("I1", "F", 2, 7.0),
    ]);
    // Same key (R1, I1, 1) with a new quantity; a parallel edge at another ts.
    let second = edges(&[
        ("R1", "I1", 1, 9.0),
        ("R1", "I1", 0, 1.0),
        ("I1", "F2", 3, 1.0),
    ]);
    let loaded = GenealogyIndex::load([&first, &second]).unwrap();
    let mut merged = GenealogyIndex::default();
    merged.merge(&first).unwrap();
    merged.merge(&second).unwrap();
    merged.merge(&second).unwrap(); // idempotent, as on WAL replay
    for index in [&loaded, &merged] {
        assert_eq!(index.edge_count(), 5);
        let steps = index.trace("I1", Direction::Backward, None);
        let r1 = steps.iter().find(|s| index.lot(s.lot) == "R1").unwrap();
        // Earliest ts wins among parallel edges from the same parent.
        let edge = index.edge(r1.via.unwrap().1);
        assert_eq!((edge.ts, index.quantity(edge)), (0, Some(1.0)));
        assert_eq!(
            rows(index, "R1", Direction::Forward, None),
            owned(&[
                ("R1", 0, "R1"),
                ("I1", 1, "R1>I1"),
                ("F", 2, "R1>I1>F"),
                ("F2", 2, "R1>I1>F2")
            ])
        );
    }
    let replaced = loaded
        .trace("F", Direction::Backward, None)
        .iter()
        .filter_map(|s| s.via)
        .map(|(_, e)| *loaded.edge(e))
        .find(|e| loaded.lot(e.input) == "R1" && e.ts == 1);
    assert!(replaced.is_none(), "R1 is reached through the ts 0 edge");
}

#[test]
fn many_incremental_merges_fold_into_the_csr() {
    let mut index = GenealogyIndex::default();
    let n = MIN_REBUILD_EDGES as i64 + 10;
    let chain: Vec<(String, String)> = (0..n)
        .map(|i| (format!("L{i}"), format!("L{}", i + 1)))
        .collect();
    for block in chain.chunks(5_000) {
        let rows: Vec<(&str, &str, i64, f64)> = block
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str(), 1, 1.0))
            .collect();
        index.merge(&edges(&rows)).unwrap();
    }
    assert!(index.csr_edges > 0, "a rebuild happened");
    assert_eq!(index.edge_count(), n as usize);
    let back = index.trace(&format!("L{n}"), Direction::Backward, Some(3));
    assert_eq!(back.len(), 4);
    assert_eq!(index.lot(back[3].lot), format!("L{}", n - 3));
    let all = index.trace("L0", Direction::Forward, None);
    assert_eq!(all.len(), n as usize + 1);
    let per_edge = index.memory_bytes() as f64 / index.edge_count() as f64;
    assert!(per_edge < 120.0, "{per_edge} bytes per edge");
}

#[test]
fn rows_of_another_schema_are_an_error_not_a_panic() {
    // A segment replaced on disk by a file of another table.
    let foreign = RecordBatch::try_from_iter([(
        "input_lot",
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![7])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let Err(error) = GenealogyIndex::load([&foreign]) else {
        panic!("loaded rows of another schema");
    };
    assert_eq!((error.table, error.column), ("genealogy", "input_lot"));
    let mut corrections = crate::ingest::corrections::CorrectionMap::new();
    let error = crate::ingest::corrections::merge(&mut corrections, &foreign).unwrap_err();
    assert_eq!(error.column, "tag");
}
