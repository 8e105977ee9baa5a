//! The write buffer: acknowledged rows not yet in segments, per table, in
//! write order. `active` receives new rows; a flush freezes it (moves it to
//! `frozen`) at a WAL rotation point and drops `frozen` once the manifest lists
//! the segments written from it. Queries read both.
//!
//! Sizes are kept as rows and as [`retained_bytes`]: the memory the batches
//! keep alive, which is what `flush_bytes` and `max_buffered_bytes` bound.

use std::collections::HashSet;
use std::time::Instant;

use arrow::array::{Array, ArrayData, RecordBatch};

#[derive(Debug, Default)]
pub struct TableBuffer {
    pub active: Vec<RecordBatch>,
    pub frozen: Vec<RecordBatch>,
    pub active_rows: usize,
    pub active_bytes: usize,
    frozen_rows: usize,
    frozen_bytes: usize,
    /// When the oldest row in `active` arrived (for age-based flushes).
    pub active_since: Option<Instant>,
}

impl TableBuffer {
    pub fn append(&mut self, batches: Vec<RecordBatch>) {
        // Once per call, not per batch: the batches of one request (or of
        // one replayed WAL record) share their allocations.
        self.active_bytes += retained_bytes(&batches);
        for batch in batches {
            self.active_rows += batch.num_rows();
            self.active.push(batch);
        }
        self.active_since.get_or_insert_with(Instant::now);
    }

    /// Moves everything active to frozen (frozen may still hold data from a
    /// flush that failed; it is kept, in order, ahead of the new rows).
    pub fn freeze(&mut self) {
        self.frozen.append(&mut self.active);
        self.frozen_rows += self.active_rows;
        self.frozen_bytes += self.active_bytes;
        self.active_rows = 0;
        self.active_bytes = 0;
        self.active_since = None;
    }

    /// Drops the frozen rows (the manifest now lists their segments).
    pub fn clear_frozen(&mut self) {
        self.frozen.clear();
        self.frozen_rows = 0;
        self.frozen_bytes = 0;
    }

    /// All buffered rows in write order.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.frozen.iter().chain(&self.active).cloned().collect()
    }

    pub fn rows(&self) -> usize {
        self.active_rows + self.frozen_rows
    }

    /// Memory the buffered rows keep alive ([`retained_bytes`]).
    pub fn bytes(&self) -> usize {
        self.active_bytes + self.frozen_bytes
    }
}

/// Memory `batches` keep alive: the capacity of every distinct allocation
/// their arrays point into, once. Arrow's `get_array_memory_size` counts an
/// allocation once per array that uses it; the columns of a decoded Flight
/// request all point into its one message body, so that figure is several
/// times the real one (about 4x for samples).
pub fn retained_bytes(batches: &[RecordBatch]) -> usize {
    let mut seen = HashSet::new();
    let mut total = 0;
    for batch in batches {
        for column in batch.columns() {
            add_allocations(&column.to_data(), &mut seen, &mut total);
        }
    }
    total
}

fn add_allocations(data: &ArrayData, seen: &mut HashSet<usize>, total: &mut usize) {
    let nulls = data.nulls().map(|n| n.buffer());
    for buffer in data.buffers().iter().chain(nulls) {
        if seen.insert(buffer.data_ptr().as_ptr() as usize) {
            *total += buffer.capacity();
        }
    }
    for child in data.child_data() {
        add_allocations(child, seen, total);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray};

    use super::*;

    #[test]
    fn shared_allocations_count_once() {
        let values = Arc::new(Float64Array::from(vec![1.0; 1000]));
        let tags = Arc::new(StringArray::from(vec!["a"; 1000]));
        let one =
            RecordBatch::try_from_iter([("v", values.clone() as _), ("t", tags as _)]).unwrap();
        let alone = retained_bytes(std::slice::from_ref(&one));
        assert!(alone >= 1000 * 8 + 1000 + 1001 * 4, "{alone}");
        // The same values column twice, and a slice of it (in another
        // batch of the same call): no more memory than the column alone.
        let values_only = one.project(&[0]).unwrap();
        let twice =
            RecordBatch::try_from_iter([("v", values.clone() as _), ("w", values.clone() as _)])
                .unwrap();
        let slice =
            RecordBatch::try_from_iter([("s", Arc::new(values.slice(10, 20)) as _)]).unwrap();
        assert_eq!(
            retained_bytes(&[twice.clone(), slice]),
            retained_bytes(std::slice::from_ref(&values_only))
        );
        assert!(twice.get_array_memory_size() > retained_bytes(&[twice]));
        assert!(one.get_array_memory_size() >= alone);
    }

    #[test]
    fn a_decoded_request_counts_its_bytes_once() {
        use arrow::ipc::reader::StreamReader;
        use arrow::ipc::writer::StreamWriter;
        // Eight columns decoded from one IPC message share its one buffer.
        let column = Arc::new(Float64Array::from(vec![1.5; 100_000]));
        let batch = RecordBatch::try_from_iter(
            (0..8).map(|i| (format!("c{i}"), column.clone() as arrow::array::ArrayRef)),
        )
        .unwrap();
        let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let data = 8 * 100_000 * 8;
        assert_eq!(super::super::request_bytes(&[decoded.clone()]), data);
        assert!(
            decoded.get_array_memory_size() >= 8 * data,
            "shared buffer counted per column"
        );
    }

    #[test]
    fn freeze_and_clear_keep_the_totals() {
        let batch =
            RecordBatch::try_from_iter([("v", Arc::new(Float64Array::from(vec![1.0; 100])) as _)])
                .unwrap();
        let mut buffer = TableBuffer::default();
        buffer.append(vec![batch.clone()]);
        let bytes = buffer.bytes();
        buffer.freeze();
        buffer.append(vec![batch]);
        assert_eq!((buffer.rows(), buffer.bytes()), (200, 2 * bytes));
        assert_eq!(buffer.active_rows, 100);
        buffer.clear_frozen();
        assert_eq!((buffer.rows(), buffer.bytes()), (100, bytes));
    }

    #[test]
    fn batches_of_one_append_share_their_allocations() {
        // A replayed WAL record: several batches decoded from one buffer.
        let values = Arc::new(Float64Array::from(vec![1.0; 1000]));
        let part = |offset| {
            RecordBatch::try_from_iter([("v", Arc::new(values.slice(offset, 500)) as _)]).unwrap()
        };
        let mut buffer = TableBuffer::default();
        buffer.append(vec![part(0), part(500)]);
        let whole = RecordBatch::try_from_iter([("v", values.clone() as _)]).unwrap();
        assert_eq!(buffer.rows(), 1000);
        assert_eq!(buffer.bytes(), retained_bytes(&[whole]));
    }
}
