//! The last-value cache (PI's "snapshot"): the newest sample of every tag,
//! kept by the write path so that reading all tags never touches segments.
//!
//! Entries point at rows of the batches that were written (no per-row copy on
//! the write path); once they pin too many distinct batches the cache
//! compacts itself into one batch. Merging is idempotent — a row replaces an
//! entry only if its time is not older — so replaying the WAL over a
//! persisted snapshot gives the same cache as before a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};

use crate::model::{Cache, TableDef};
use crate::storage::{Manifest, StorageError, segment};

/// Compact when entries reference more batches than this.
const MAX_PINNED_BATCHES: usize = 64;
/// ... or when the pinned batches hold more rows than this many per entry
/// plus [`SPARE_PINNED_ROWS`]. A batch stays whole while one entry points
/// into it, so 64 bulk requests of 50 000 rows would keep 3.2 M rows alive
/// for a cache of 50 000; the bound keeps it near the cache's own size.
const PINNED_ROWS_PER_ENTRY: usize = 4;
const SPARE_PINNED_ROWS: usize = 1 << 18;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    ts: i64,
    /// Index into `batches` and row within it.
    batch: usize,
    row: usize,
}

#[derive(Debug)]
pub struct LastValues {
    schema: SchemaRef,
    key_column: usize,
    time_column: usize,
    entries: FastMap<String, Entry>,
    batches: Vec<Arc<RecordBatch>>,
    /// Rows of `batches`.
    pinned_rows: usize,
    /// [`Self::to_batch`]'s result until the next change: readers of all tags
    /// (dashboards polling the snapshot) then share one gather of the rows,
    /// the bulk of a `last_values` scan, instead of repeating it per query.
    materialized: Option<RecordBatch>,
}

impl LastValues {
    /// A cache for `def`, keyed by its range column and ordered by its time
    /// column. `None` unless the table asks for [`Cache::LastValues`].
    pub fn for_table(def: &TableDef) -> Option<Self> {
        if !def.has_cache(Cache::LastValues) {
            return None;
        }
        let time = def
            .time_column
            .expect("a last-value cache needs a time column");
        Some(Self {
            schema: def.schema.clone(),
            key_column: def.column_index(def.range_column).expect("range column"),
            time_column: def.column_index(time).expect("time column"),
            entries: FastMap::default(),
            batches: Vec::new(),
            pinned_rows: 0,
            materialized: None,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the newest row per key of `batch` (already normalized to the
    /// table schema). Later rows win ties, so a rewrite of the same sample
    /// replaces it.
    pub fn merge(&mut self, batch: &RecordBatch) {
        let keys = batch.column(self.key_column).as_string::<i32>();
        let times = batch
            .column(self.time_column)
            .as_primitive::<TimestampNanosecondType>();
        // Reduce within the batch first: plants send runs of the same tag.
        let mut newest: FastMap<&str, (i64, usize)> = FastMap::default();
        for row in 0..batch.num_rows() {
            let (key, ts) = (keys.value(row), times.value(row));
            match newest.get_mut(key) {
                Some(best) if best.0 > ts => {}
                Some(best) => *best = (ts, row),
                None => {
                    newest.insert(key, (ts, row));
                }
            }
        }
        let index = self.batches.len();
        let mut used = false;
        for (key, (ts, row)) in newest {
            let entry = Entry {
                ts,
                batch: index,
                row,
            };
            match self.entries.get_mut(key) {
                Some(current) if current.ts > ts => {}
                Some(current) => {
                    *current = entry;
                    used = true;
                }
                None => {
                    self.entries.insert(key.to_string(), entry);
                    used = true;
                }
            }
        }
        if used {
            self.materialized = None;
            self.batches.push(Arc::new(batch.clone()));
            self.pinned_rows += batch.num_rows();
            if self.batches.len() > MAX_PINNED_BATCHES
                || self.pinned_rows > self.entries.len() * PINNED_ROWS_PER_ENTRY + SPARE_PINNED_ROWS
            {
                self.compact();
            }
        }
    }

    /// Rewrites the cache as one batch holding exactly its rows, releasing
    /// the batches it pinned.
    fn compact(&mut self) {
        let batch = self.batch();
        self.pinned_rows = batch.num_rows();
        self.batches = vec![Arc::new(batch)];
        for (row, entry) in self.entries.values_mut().enumerate() {
            entry.batch = 0;
            entry.row = row;
        }
    }

    /// Every key with the time of its newest row.
    pub fn newest_times(&self) -> impl Iterator<Item = (&str, i64)> {
        self.entries.iter().map(|(key, e)| (key.as_str(), e.ts))
    }

    /// The time of `key`'s newest row, if it has one.
    pub fn newest_ts(&self, key: &str) -> Option<i64> {
        self.entries.get(key).map(|e| e.ts)
    }

    /// All entries as one batch, shared by callers until the next change
    /// (the same rows as [`Self::to_batch`]).
    pub fn batch(&mut self) -> RecordBatch {
        if let Some(batch) = &self.materialized {
            debug_assert_eq!(batch.num_rows(), self.entries.len());
            return batch.clone();
        }
        let batch = self.to_batch();
        self.materialized = Some(batch.clone());
        batch
    }

    /// All entries as one batch (in no particular order).
    pub fn to_batch(&self) -> RecordBatch {
        if self.entries.is_empty() {
            return RecordBatch::new_empty(self.schema.clone());
        }
        let sources: Vec<&RecordBatch> = self.batches.iter().map(Arc::as_ref).collect();
        let indices: Vec<(usize, usize)> =
            self.entries.values().map(|e| (e.batch, e.row)).collect();
        let batch = interleave_record_batch(&sources, &indices)
            .expect("cached batches share the table schema");
        debug_assert_eq!(batch.num_rows(), self.entries.len());
        debug_assert!(batch.column(self.key_column).null_count() == 0);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    fn samples(rows: &[(&str, i64, f64)]) -> RecordBatch {
        model::test_samples(rows)
    }

    /// The cache's rows through the shared batch, so the tests also check
    /// that every change invalidates it.
    fn sorted(cache: &mut LastValues) -> Vec<(String, i64, f64)> {
        let b = cache.batch();
        assert_eq!(b, cache.to_batch(), "shared batch out of date");
        let mut out: Vec<_> = (0..b.num_rows())
            .map(|i| {
                (
                    b.column(0).as_string::<i32>().value(i).to_string(),
                    b.column(1)
                        .as_primitive::<TimestampNanosecondType>()
                        .value(i),
                    b.column(2)
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .value(i),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn keeps_newest_per_tag_and_is_idempotent() {
        let mut cache = LastValues::for_table(model::samples()).unwrap();
        cache.merge(&samples(&[("a", 5, 1.0), ("b", 1, 2.0), ("a", 3, 9.0)]));
        cache.merge(&samples(&[("a", 4, 7.0), ("b", 2, 3.0)]));
        let expected = vec![("a".to_string(), 5, 1.0), ("b".to_string(), 2, 3.0)];
        assert_eq!(sorted(&mut cache), expected);
        // Replaying the same data again changes nothing; an equal time rewrites.
        cache.merge(&samples(&[("a", 5, 1.0), ("b", 1, 2.0), ("a", 3, 9.0)]));
        assert_eq!(sorted(&mut cache), expected);
        cache.merge(&samples(&[("a", 5, 6.5)]));
        assert_eq!(sorted(&mut cache)[0], ("a".to_string(), 5, 6.5));
    }

    #[test]
    fn large_batches_are_not_pinned_for_long() {
        let mut cache = LastValues::for_table(model::samples()).unwrap();
        let tags: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        for round in 0..20i64 {
            // 100 000 rows per request, all for the same 1000 tags.
            let rows: Vec<(&str, i64, f64)> = (0..100_000)
                .map(|i| {
                    (
                        tags[i % 1000].as_str(),
                        round * 1000 + (i / 1000) as i64,
                        i as f64,
                    )
                })
                .collect();
            cache.merge(&samples(&rows));
            assert!(
                cache.pinned_rows <= 1000 * PINNED_ROWS_PER_ENTRY + SPARE_PINNED_ROWS,
                "{} rows pinned after round {round}",
                cache.pinned_rows
            );
        }
        assert_eq!(
            cache.pinned_rows,
            cache.batches.iter().map(|b| b.num_rows()).sum::<usize>()
        );
        let got = sorted(&mut cache);
        assert_eq!(got.len(), 1000);
        assert!(got.iter().all(|(_, ts, _)| *ts == 19 * 1000 + 99));
    }

    #[test]
    fn compaction_keeps_content() {
        let mut cache = LastValues::for_table(model::samples()).unwrap();
        for i in 0..(MAX_PINNED_BATCHES as i64 * 3) {
            cache.merge(&samples(&[(&format!("t{}", i % 10), i, i as f64)]));
        }
        assert!(cache.batches.len() <= MAX_PINNED_BATCHES);
        let got = sorted(&mut cache);
        assert_eq!(got.len(), 10);
        let last = MAX_PINNED_BATCHES as i64 * 3 - 1;
        assert!(
            got.iter()
                .any(|(_, ts, v)| *ts == last && *v == last as f64)
        );
    }
}

/// Where snapshots of the cache live, relative to the data directory.
pub const SNAPSHOT_DIR: &str = "state";

/// The snapshot file of `table` taken at the flush that starts WAL file `seq`.
pub fn snapshot_file(table: &str, seq: u64) -> String {
    format!("{SNAPSHOT_DIR}/last_values-{table}-{seq:020}.parquet")
}

/// Writes a snapshot durably (it becomes the one in use when a manifest
/// naming it is stored).
pub fn store_snapshot(
    disk: &dyn crate::storage::Disk,
    data_dir: &Path,
    file: &str,
    batch: &RecordBatch,
) -> Result<(), StorageError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
        path: dir.clone(),
        source,
    })?;
    segment::write_parquet_atomic(disk, &data_dir.join(file), batch, None).map(|_| ())
}

/// Deletes snapshot files the manifest no longer names.
pub fn remove_stale_snapshots(
    disk: &dyn crate::storage::Disk,
    data_dir: &Path,
    manifest: &Manifest,
) -> Result<(), StorageError> {
    let dir = data_dir.join(SNAPSHOT_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let live: Vec<PathBuf> = manifest
        .last_values
        .values()
        .map(|f| data_dir.join(f))
        .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        if !live.contains(&path) {
            disk.remove(&path).map_err(|source| StorageError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
