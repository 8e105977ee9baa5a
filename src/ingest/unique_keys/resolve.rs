//! The slow path's lookup: which of a late request's readings are new,
//! which were written before (exact resends), and which change a written
//! reading. The keys are looked up in the buffer and in the segments whose
//! manifest ranges (tag and time) can hold them, reading only the row
//! groups whose time statistics overlap and only the reading's columns.

use std::path::Path;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;

use super::FastMap;
use crate::ingest::corrections::CorrectionMap;
use crate::ingest::corrections::{READING_COLUMNS, Readings};
use crate::ingest::{IngestError, TableSnapshot};
use crate::model::TableDef;
use crate::storage::segment;

/// A late request split by what its readings are.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Readings at keys nobody wrote (all the request's new ones).
    pub new: Vec<RecordBatch>,
    /// Readings that differ from the one written at their key.
    pub superseding: Vec<RecordBatch>,
    /// Readings already written (or already the key's correction).
    pub resent: usize,
}

impl Resolved {
    pub fn new_rows(&self) -> usize {
        self.new.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn superseding_rows(&self) -> usize {
        self.superseding.iter().map(RecordBatch::num_rows).sum()
    }
}

/// What was found at one looked-up key.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    same: bool,
    other: bool,
}

/// Splits `batches` (surveyed: one reading per key) by looking up every
/// reading in `snapshot` (every write admitted before is in it) and in
/// `fixes`. Every reading, not only those inside the times admitted before
/// this request: another slow-path request admitted after this one may
/// have run first and written one of this request's new readings.
pub fn resolve(
    data_dir: &Path,
    def: &'static TableDef,
    snapshot: TableSnapshot,
    fixes: &CorrectionMap,
    batches: Vec<RecordBatch>,
) -> Result<Resolved, IngestError> {
    let readings = batches
        .iter()
        .map(|b| Readings::of(def.name, b))
        .collect::<Result<Vec<_>, _>>()?;
    // The keys to look up, and the box of tags and times that holds them.
    // By tag, then time (a map keyed by a borrowed tag can be asked with any &str).
    let mut wanted: FastMap<&str, FastMap<i64, (usize, usize, Found)>> = FastMap::default();
    let (mut low, mut high) = (i64::MAX, i64::MIN);
    let (mut first_tag, mut last_tag): (Option<&str>, Option<&str>) = (None, None);
    for (b, r) in readings.iter().enumerate() {
        for row in 0..r.len() {
            let (tag, ts) = (r.tag.value(row), r.ts[row]);
            let times = wanted.entry(tag).or_default();
            times.insert(ts, (b, row, Found::default()));
            (low, high) = (low.min(ts), high.max(ts));
            first_tag = Some(first_tag.map_or(tag, |t| t.min(tag)));
            last_tag = Some(last_tag.map_or(tag, |t| t.max(tag)));
        }
    }
    let mut look = |batch: &RecordBatch| -> Result<(), IngestError> {
        let stored = Readings::of(def.name, batch)?;
        for i in 0..stored.len() {
            let ts = stored.ts[i];
            if ts < low || ts > high {
                continue;
            }
            let times = wanted.get_mut(stored.tag.value(i));
            if let Some((b, row, found)) = times.and_then(|t| t.get_mut(&ts)) {
                match readings[*b].differs(*row, &stored, i) {
                    None => found.same = true,
                    Some(_) => found.other = true,
                }
            }
        }
        Ok(())
    };
    for batch in &snapshot.buffered {
        look(batch)?;
    }
    if let (Some(first_tag), Some(last_tag)) = (first_tag, last_tag) {
        let time_column = def.time_column.expect("a time column");
        for meta in &snapshot.segments {
            let outside_time =
                meta.max_time.is_some_and(|t| t < low) || meta.min_time.is_some_and(|t| t > high);
            let outside_tags = meta.max_key.as_deref().is_some_and(|k| k < first_tag)
                || meta.min_key.as_deref().is_some_and(|k| k > last_tag);
            if outside_time || outside_tags {
                continue;
            }
            let mut failed = None;
            segment::scan_parquet_columns_in(
                &data_dir.join(&meta.file),
                &READING_COLUMNS,
                Some((time_column, low, high)),
                |batch| {
                    if failed.is_none() {
                        failed = look(&batch).err();
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
    drop(look);
    // Split each batch: new rows, superseding rows, resends dropped.
    let mut resolved = Resolved::default();
    for (b, r) in readings.iter().enumerate() {
        let mut new = Vec::with_capacity(r.len());
        let mut superseding = Vec::with_capacity(r.len());
        for row in 0..r.len() {
            let key = (r.tag.value(row), r.ts[row]);
            let found = wanted.get(key.0).and_then(|t| t.get(&key.1));
            let found = found.map(|(_, _, f)| *f).unwrap_or_default();
            let corrected_to_it = || {
                fixes
                    .get(&(key.0.to_string(), key.1))
                    .is_some_and(|fix| r.is(row, fix))
            };
            let resent = found.same || (found.other && corrected_to_it());
            resolved.resent += usize::from(resent);
            new.push(Some(!found.same && !found.other));
            superseding.push(Some(found.other && !resent));
        }
        let batch = &batches[b];
        let take = |mask: Vec<Option<bool>>| {
            filter_record_batch(batch, &BooleanArray::from(mask))
                .map_err(|e| IngestError::Internal(e.to_string()))
        };
        for (into, mask) in [
            (&mut resolved.new, new),
            (&mut resolved.superseding, superseding),
        ] {
            let rows = take(mask)?;
            if rows.num_rows() > 0 {
                into.push(rows);
            }
        }
    }
    Ok(resolved)
}
