//! Streaming k-way merge of key-sorted segments into new segments, the
//! rewriting half of compaction.
//!
//! Every input is already sorted by the table key, so the merge reads each
//! one batch by batch (the synchronous Parquet reader: one page per column
//! in memory), picks the smallest key with a binary heap over the row-format
//! keys, and writes the output through [`SegmentWriter`], which holds only
//! the row group being encoded. Memory is bounded by the number of inputs
//! times one batch, never by the size of a partition. Rows with equal keys
//! come out in input order (the manifest's), then in file order: the result
//! is what one stable sort of all inputs would give, every row kept.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::compute::interleave_record_batch;
use arrow::row::{RowConverter, Rows, SortField};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::segment::{SegmentOptions, SegmentWriter, partition_dir};
use super::{SegmentMeta, StorageError, io_err};
use crate::model::{self, TableDef};

/// Rows per batch read from each input and handed to the writer.
const BATCH_ROWS: usize = 8192;

/// One input segment: its reader, current batch and position in it.
struct Cursor {
    reader: ParquetRecordBatchReader,
    path: std::path::PathBuf,
    rows: Rows,
    len: usize,
    pos: usize,
    /// Index of the current batch in the merge's arena.
    slot: usize,
}

/// The merge's state: cursors, their heap, and the batches the pending
/// output rows point into.
struct Merger {
    converter: RowConverter,
    key_columns: Vec<usize>,
    cursors: Vec<Cursor>,
    /// Cursor indices; `heap[0]` has the smallest current key.
    heap: Vec<usize>,
    arena: Vec<RecordBatch>,
    pending: Vec<(usize, usize)>,
}

/// Loads the cursor's next non-empty batch into `arena`; false at the end
/// of its file.
fn advance(
    cursor: &mut Cursor,
    converter: &RowConverter,
    key_columns: &[usize],
    arena: &mut Vec<RecordBatch>,
) -> Result<bool, StorageError> {
    for batch in cursor.reader.by_ref() {
        let batch = batch.map_err(|e| StorageError::Parquet {
            path: cursor.path.clone(),
            source: e.into(),
        })?;
        if batch.num_rows() == 0 {
            continue;
        }
        let keys: Vec<_> = key_columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        cursor.rows = converter.convert_columns(&keys)?;
        cursor.len = batch.num_rows();
        cursor.pos = 0;
        cursor.slot = arena.len();
        arena.push(batch);
        return Ok(true);
    }
    Ok(false)
}

impl Merger {
    fn open(def: &TableDef, inputs: &[std::path::PathBuf]) -> Result<Self, StorageError> {
        let schema = model::stored_schema(def);
        let key_columns: Vec<usize> = def
            .key
            .iter()
            .map(|k| schema.index_of(k))
            .collect::<Result<_, _>>()?;
        let converter = RowConverter::new(
            key_columns
                .iter()
                .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                .collect(),
        )?;
        let mut merger = Merger {
            converter,
            key_columns,
            cursors: Vec::with_capacity(inputs.len()),
            heap: Vec::with_capacity(inputs.len()),
            arena: Vec::new(),
            pending: Vec::with_capacity(BATCH_ROWS),
        };
        for path in inputs {
            let file = File::open(path).map_err(io_err(path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                .map_err(|source| StorageError::Parquet {
                    path: path.clone(),
                    source,
                })?;
            let mut cursor = Cursor {
                reader,
                path: path.clone(),
                rows: merger.converter.empty_rows(0, 0),
                len: 0,
                pos: 0,
                slot: 0,
            };
            if advance(
                &mut cursor,
                &merger.converter,
                &merger.key_columns,
                &mut merger.arena,
            )? {
                merger.cursors.push(cursor);
                merger.heap.push(merger.cursors.len() - 1);
            }
        }
        for i in (0..merger.heap.len() / 2).rev() {
            merger.sift_down(i);
        }
        Ok(merger)
    }

    /// Whether cursor `a`'s current row goes before cursor `b`'s: by key,
    /// then by input order (keeps equal keys in manifest order).
    fn before(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (&self.cursors[a], &self.cursors[b]);
        match ca.rows.row(ca.pos).cmp(&cb.rows.row(cb.pos)) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => a < b,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.before(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < n && self.before(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    /// The next batch of merged rows (up to [`BATCH_ROWS`]), `None` at the end.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, StorageError> {
        while self.pending.len() < BATCH_ROWS && !self.heap.is_empty() {
            let top = self.heap[0];
            let cursor = &mut self.cursors[top];
            self.pending.push((cursor.slot, cursor.pos));
            cursor.pos += 1;
            if cursor.pos == cursor.len
                && !advance(cursor, &self.converter, &self.key_columns, &mut self.arena)?
            {
                let last = self.heap.pop().expect("non-empty heap");
                if !self.heap.is_empty() {
                    self.heap[0] = last;
                }
            }
            self.sift_down(0);
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let batches: Vec<&RecordBatch> = self.arena.iter().collect();
        let out = interleave_record_batch(&batches, &self.pending)?;
        self.pending.clear();
        // Keep only the batches the cursors still read from.
        let mut arena = Vec::with_capacity(self.heap.len());
        for &i in &self.heap {
            let cursor = &mut self.cursors[i];
            arena.push(self.arena[cursor.slot].clone());
            cursor.slot = arena.len() - 1;
        }
        self.arena = arena;
        Ok(Some(out))
    }
}

/// Merges the key-sorted segments `inputs` (all of one table and one date
/// partition, in manifest order) into `output_ids.len()` new segments of
/// about equal rows in the same partition, sorted by key. `transform` sees
/// every merged batch before it is written and must keep its rows (stamping).
/// Each finished output is pushed to `written` as soon as it is durable, so
/// the caller can remove them if anything fails. Returns the outputs.
pub fn merge_segments<E: From<StorageError>>(
    data_dir: &Path,
    def: &'static TableDef,
    inputs: &[SegmentMeta],
    output_ids: &[u64],
    options: &SegmentOptions,
    written: &mut Vec<SegmentMeta>,
    mut transform: impl FnMut(RecordBatch) -> Result<RecordBatch, E>,
) -> Result<Vec<SegmentMeta>, E> {
    assert!(!output_ids.is_empty(), "at least one output");
    let dir = partition_dir(&inputs[0]);
    assert!(
        inputs.iter().all(|m| partition_dir(m) == dir),
        "inputs of one partition"
    );
    let total: u64 = inputs.iter().map(|m| m.rows).sum();
    let per_file = total.div_ceil(output_ids.len() as u64).max(1);
    let paths: Vec<_> = inputs.iter().map(|m| data_dir.join(&m.file)).collect();
    let mut merger = Merger::open(def, &paths)?;
    let mut ids = output_ids.iter();
    let mut outputs = Vec::new();
    let mut writer: Option<SegmentWriter> = None;
    let mut rows = 0u64;
    let miscount = |rows: u64| {
        // Every row exactly once: a count that differs from the manifest's
        // means an input is not what its entry says, which must not go live.
        StorageError::Io {
            path: data_dir.join(dir),
            source: std::io::Error::other(format!(
                "merge read {rows} rows from {} segment(s) whose manifest entries list {total}",
                inputs.len()
            )),
        }
    };
    let mut run = || -> Result<(), E> {
        while let Some(batch) = merger.next_batch()? {
            let n = batch.num_rows();
            let mut batch = transform(batch)?;
            assert_eq!(batch.num_rows(), n, "the transform keeps every row");
            rows += n as u64;
            while batch.num_rows() > 0 {
                let w = match &mut writer {
                    Some(w) => w,
                    None => {
                        let id = *ids.next().ok_or_else(|| miscount(rows))?;
                        writer.insert(SegmentWriter::create(data_dir, dir, def, id, options)?)
                    }
                };
                let room = (per_file - w.rows()) as usize;
                let take = room.min(batch.num_rows());
                w.write(&batch.slice(0, take))?;
                batch = batch.slice(take, batch.num_rows() - take);
                if w.rows() == per_file {
                    let meta = writer.take().expect("open writer").finish()?;
                    written.push(meta.clone());
                    outputs.push(meta);
                }
            }
        }
        if let Some(w) = writer.take() {
            let meta = w.finish()?;
            written.push(meta.clone());
            outputs.push(meta);
        }
        if rows != total {
            return Err(miscount(rows).into());
        }
        Ok(())
    };
    let result = run();
    if let Some(w) = writer {
        // Failed midway: no temporary file is left behind.
        w.abandon();
    }
    result?;
    Ok(outputs)
}

#[cfg(test)]
mod tests;
