use arrow::array::AsArray;
use arrow::compute::concat_batches;
use arrow::datatypes::{Float64Type, TimestampNanosecondType};

use super::*;
use crate::storage::segment::{read_segment, write_segments};

/// (tag, ts, value) rows of one flush.
type Rows3 = Vec<(String, i64, f64)>;

fn batch(rows: &Rows3) -> RecordBatch {
    let rows: Vec<(&str, i64, f64)> = rows.iter().map(|r| (r.0.as_str(), r.1, r.2)).collect();
    model::test_samples(&rows)
}

fn read_rows(dir: &Path, metas: &[SegmentMeta]) -> Rows3 {
    let mut out = Vec::new();
    for meta in metas {
        let b = concat_batches(
            &model::stored_schema(model::samples()),
            &read_segment(dir, meta).unwrap(),
        )
        .unwrap();
        let tags = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
        let v = b.column(2).as_primitive::<Float64Type>();
        out.extend((0..b.num_rows()).map(|i| (tags.value(i).to_string(), ts.value(i), v.value(i))));
    }
    out
}

#[test]
fn merge_is_a_stable_sort_of_all_inputs_split_into_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentOptions {
        row_group_rows: 1000,
        ..SegmentOptions::default()
    };
    let mut next_id = 1;
    let mut inputs = Vec::new();
    let mut all: Rows3 = Vec::new();
    let mut value = 0.0;
    // Five flushes over the same 300 tags and interleaved times, with a
    // duplicate (tag, ts) in every flush: far more rows than one batch.
    for flush in 0..5i64 {
        let mut rows: Rows3 = Vec::new();
        for tag in 0..300 {
            for k in 0..12i64 {
                rows.push((format!("t{tag:04}"), k * 10 + flush, value));
                value += 1.0;
            }
            rows.push((format!("t{tag:04}"), 0, value));
            value += 1.0;
        }
        all.extend(rows.iter().cloned());
        let metas = write_segments(
            dir.path(),
            model::samples(),
            &[batch(&rows)],
            &mut next_id,
            &options,
        )
        .unwrap();
        inputs.extend(metas);
    }
    assert_eq!(inputs.len(), 5);
    // Reference: a stable sort of the inputs in manifest order.
    let mut expected: Rows3 = Vec::new();
    for meta in &inputs {
        expected.extend(read_rows(dir.path(), std::slice::from_ref(meta)));
    }
    expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));

    let mut written = Vec::new();
    let mut batches_seen = 0;
    let outputs = merge_segments::<StorageError>(
        dir.path(),
        model::samples(),
        &inputs,
        &[100, 101, 102],
        &options,
        &mut written,
        |b| {
            batches_seen += 1;
            Ok(b)
        },
    )
    .unwrap();
    assert!(batches_seen > 1, "streamed in several batches");
    assert_eq!(outputs, written);
    assert_eq!(
        outputs.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![100, 101, 102]
    );
    let total = all.len() as u64;
    assert_eq!(outputs.iter().map(|m| m.rows).sum::<u64>(), total);
    // Equal split: ceil(total / 3) rows in all but the last.
    assert_eq!(outputs[0].rows, total.div_ceil(3));
    let merged = read_rows(dir.path(), &outputs);
    assert_eq!(
        merged, expected,
        "sorted, every row, duplicates in input order"
    );
    for meta in &outputs {
        assert!(meta.file.starts_with("tables/samples/date=1970-01-01/"));
        let rows = read_rows(dir.path(), std::slice::from_ref(meta));
        assert_eq!(meta.min_key.as_deref(), Some(rows[0].0.as_str()));
        assert_eq!(
            meta.max_key.as_deref(),
            Some(rows.last().unwrap().0.as_str())
        );
        assert_eq!(meta.min_time, rows.iter().map(|r| r.1).min());
        assert_eq!(meta.max_time, rows.iter().map(|r| r.1).max());
        let sha = crate::storage::digest::file_sha256(&dir.path().join(&meta.file)).unwrap();
        assert_eq!(meta.sha256.as_deref(), Some(sha.as_str()));
    }
}

#[test]
fn a_short_input_fails_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let mut next_id = 1;
    let rows: Rows3 = (0..10).map(|i| ("a".to_string(), i, 0.0)).collect();
    let mut metas = write_segments(
        dir.path(),
        model::samples(),
        &[batch(&rows)],
        &mut next_id,
        &SegmentOptions::default(),
    )
    .unwrap();
    let merge = |metas: &[SegmentMeta]| {
        let mut written = Vec::new();
        let err = merge_segments::<StorageError>(
            dir.path(),
            model::samples(),
            metas,
            &[9],
            &SegmentOptions::default(),
            &mut written,
            Ok,
        )
        .unwrap_err();
        for meta in &written {
            std::fs::remove_file(dir.path().join(&meta.file)).unwrap();
        }
        err.to_string()
    };
    // The manifest claims more rows than the file holds, then fewer.
    metas[0].rows = 11;
    let err = merge(&metas);
    assert!(
        err.contains("read 10 rows") && err.contains("list 11"),
        "{err}"
    );
    metas[0].rows = 9;
    let err = merge(&metas);
    assert!(
        err.contains("read 10 rows") && err.contains("list 9"),
        "{err}"
    );
    // No temporary file is left behind.
    let partition = dir.path().join("tables/samples/date=1970-01-01");
    let left: Vec<_> = std::fs::read_dir(partition)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec![format!("{:016}.parquet", metas[0].id)]);
}
