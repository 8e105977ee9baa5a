//! Builds `samples` batches row by row, for writers whose rows arrive one at
//! a time (line protocol, gRPC) instead of as Arrow. The batch has exactly the
//! table's schema; validation still happens in the write path.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringBuilder, TimestampNanosecondArray, UInt32Array,
};

use super::{UTC, samples};

/// The context columns of `samples`, in the order of [`SampleRow::context`].
pub const CONTEXT_COLUMNS: [&str; 3] = ["equipment", "work_order", "lot"];

/// One row of `samples`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleRow<'a> {
    pub tag: &'a str,
    pub ts_ns: i64,
    pub value: Option<f64>,
    pub text: Option<&'a str>,
    /// OPC UA StatusCode (0 = Good).
    pub quality: u32,
    /// `equipment`, `work_order`, `lot` ([`CONTEXT_COLUMNS`]).
    pub context: [Option<&'a str>; 3],
}

/// Accumulates rows, then [`SampleRows::finish`]es them into one batch.
pub struct SampleRows {
    tag: StringBuilder,
    ts: Vec<i64>,
    value: Float64Builder,
    text: StringBuilder,
    quality: Vec<u32>,
    context: [StringBuilder; 3],
}

impl SampleRows {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            // Plant tag names run around 20-30 bytes.
            tag: StringBuilder::with_capacity(rows, rows * 24),
            ts: Vec::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            text: StringBuilder::new(),
            quality: Vec::with_capacity(rows),
            context: Default::default(),
        }
    }

    pub fn push(&mut self, row: SampleRow<'_>) {
        self.tag.append_value(row.tag);
        self.ts.push(row.ts_ns);
        self.value.append_option(row.value);
        self.text.append_option(row.text);
        self.quality.push(row.quality);
        for (builder, value) in self.context.iter_mut().zip(row.context) {
            builder.append_option(value);
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The rows as one batch in the schema of `samples`.
    pub fn finish(self) -> RecordBatch {
        let [mut equipment, mut work_order, mut lot] = self.context;
        let (mut tag, mut value, mut text) = (self.tag, self.value, self.text);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(tag.finish()),
            Arc::new(TimestampNanosecondArray::from(self.ts).with_timezone(UTC)),
            Arc::new(value.finish()),
            Arc::new(text.finish()),
            Arc::new(UInt32Array::from(self.quality)),
            Arc::new(equipment.finish()),
            Arc::new(work_order.finish()),
            Arc::new(lot.finish()),
        ];
        RecordBatch::try_new(samples().schema.clone(), columns)
            .expect("columns are built in the order and types of the samples schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_a_samples_batch() {
        let mut rows = SampleRows::with_capacity(2);
        rows.push(SampleRow {
            tag: "a",
            ts_ns: 5,
            value: Some(1.5),
            context: [Some("eq"), None, Some("L-1")],
            ..Default::default()
        });
        rows.push(SampleRow {
            tag: "b",
            text: Some("on"),
            quality: 0x4000_0000,
            ..Default::default()
        });
        assert_eq!(rows.len(), 2);
        let batch = rows.finish();
        assert_eq!(batch.schema(), samples().schema);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(2).null_count(), 1);
        assert_eq!(batch.column(5).null_count(), 1);
        assert_eq!(batch.column(6).null_count(), 2);
    }
}
