//! The write buffer: acknowledged rows not yet in segments, per table, in
//! write order. `active` receives new rows; a flush freezes it (moves it to
//! `frozen`) at a WAL rotation point and drops `frozen` once the manifest lists
//! the segments written from it. Queries read both.

use std::time::Instant;

use arrow::array::RecordBatch;

#[derive(Debug, Default)]
pub struct TableBuffer {
    pub active: Vec<RecordBatch>,
    pub frozen: Vec<RecordBatch>,
    pub active_rows: usize,
    pub active_bytes: usize,
    /// When the oldest row in `active` arrived (for age-based flushes).
    pub active_since: Option<Instant>,
}

impl TableBuffer {
    pub fn append(&mut self, batches: Vec<RecordBatch>) {
        for batch in batches {
            self.active_rows += batch.num_rows();
            self.active_bytes += batch.get_array_memory_size();
            self.active.push(batch);
        }
        self.active_since.get_or_insert_with(Instant::now);
    }

    /// Moves everything active to frozen (frozen may still hold data from a
    /// flush that failed; it is kept, in order, ahead of the new rows).
    pub fn freeze(&mut self) {
        self.frozen.append(&mut self.active);
        self.active_rows = 0;
        self.active_bytes = 0;
        self.active_since = None;
    }

    /// All buffered rows in write order.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.frozen.iter().chain(&self.active).cloned().collect()
    }

    pub fn rows(&self) -> usize {
        self.active_rows + self.frozen.iter().map(RecordBatch::num_rows).sum::<usize>()
    }

    /// Arrow memory of all buffered rows.
    pub fn bytes(&self) -> usize {
        self.active_bytes
            + self
                .frozen
                .iter()
                .map(RecordBatch::get_array_memory_size)
                .sum::<usize>()
    }
}
