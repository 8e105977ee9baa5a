//! Each collector's health, as `collector_status` (SQL) and `/metrics` show
//! it: its state, since when it is connected, its newest live sample, how
//! many samples it wrote (and how many of them came from a source's own
//! history), how often it asked a source to resend its state, how often
//! the source lost data before it was read, how many errors it met, and the
//! last one.

use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::TableType;

use super::mapping::Collector;
use crate::model::UTC;
use crate::query::computed::ComputeRows;

/// The SQL name of the status table.
pub const TABLE_NAME: &str = "collector_status";

/// Where a collector's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not connected yet since start.
    Connecting,
    Connected,
    /// Lost or refused; reconnecting with backoff.
    Disconnected,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// One collector's row.
#[derive(Debug, Clone)]
pub struct CollectorStatus {
    pub name: String,
    pub kind: &'static str,
    pub endpoint: String,
    pub state: State,
    pub connected_since_ns: Option<i64>,
    /// Timestamp of the newest live sample written.
    pub last_sample_ns: Option<i64>,
    pub samples_written: u64,
    /// Of `samples_written`, those a source sent from its own history (a
    /// Sparkplug edge node's store-and-forward, an OPC UA backfill): they
    /// do not move `last_sample_ns`.
    pub historical_samples: u64,
    /// Requests to a source to send its whole state again (Sparkplug
    /// rebirth requests after a `seq` gap or an unknown alias).
    pub resync_requests: u64,
    /// Times the source no longer had data not read yet (an MTConnect
    /// agent's buffer overran): a BadDataLost sample marks each.
    pub data_gaps: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// One collector's row, shared by the collector that updates it and the
/// board that shows it.
pub type Row = Arc<Mutex<CollectorStatus>>;

/// The status of every running collector, in the mapping's order.
#[derive(Debug, Default)]
pub struct StatusBoard {
    rows: Mutex<Vec<Row>>,
}

impl StatusBoard {
    /// A row for `collector`, not connected yet.
    pub fn fresh_row(collector: &Collector) -> Row {
        Arc::new(Mutex::new(CollectorStatus {
            name: collector.name.clone(),
            kind: collector.kind(),
            endpoint: collector.endpoint.clone(),
            state: State::Connecting,
            connected_since_ns: None,
            last_sample_ns: None,
            samples_written: 0,
            historical_samples: 0,
            resync_requests: 0,
            data_gaps: 0,
            errors: 0,
            last_error: None,
        }))
    }

    /// Shows `rows` from now on (after a mapping reload).
    pub fn show(&self, rows: Vec<Row>) {
        *self.rows.lock().expect("status lock") = rows;
    }

    pub fn snapshot(&self) -> Vec<CollectorStatus> {
        let rows = self.rows.lock().expect("status lock");
        rows.iter()
            .map(|r| r.lock().expect("status row lock").clone())
            .collect()
    }

    pub fn schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()));
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("endpoint", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("connected_since", ts.clone(), true),
            Field::new("last_sample", ts, true),
            Field::new("samples_written", DataType::UInt64, false),
            Field::new("historical_samples", DataType::UInt64, false),
            Field::new("resync_requests", DataType::UInt64, false),
            Field::new("data_gaps", DataType::UInt64, false),
            Field::new("errors", DataType::UInt64, false),
            Field::new("last_error", DataType::Utf8, true),
        ]))
    }

    /// The board as one batch of [`Self::schema`].
    pub fn to_batch(&self) -> RecordBatch {
        let rows = self.snapshot();
        let text = |f: fn(&CollectorStatus) -> Option<&str>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let time = |f: fn(&CollectorStatus) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampNanosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                    .with_timezone(UTC),
            )
        };
        let count = |f: fn(&CollectorStatus) -> u64| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<UInt64Array>())
        };
        let columns = vec![
            text(|r| Some(&r.name)),
            text(|r| Some(r.kind)),
            text(|r| Some(&r.endpoint)),
            text(|r| Some(r.state.as_str())),
            time(|r| r.connected_since_ns),
            time(|r| r.last_sample_ns),
            count(|r| r.samples_written),
            count(|r| r.historical_samples),
            count(|r| r.resync_requests),
            count(|r| r.data_gaps),
            count(|r| r.errors),
            text(|r| r.last_error.as_deref()),
        ];
        RecordBatch::try_new(Self::schema(), columns)
            .expect("columns in the schema's order and types")
    }
}

/// `collector_status`: the board as it is when a statement scans it.
#[derive(Debug)]
pub struct StatusRows(pub Arc<StatusBoard>);

#[async_trait]
impl ComputeRows for StatusRows {
    fn schema(&self) -> SchemaRef {
        StatusBoard::schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn compute(&self) -> DfResult<RecordBatch> {
        Ok(self.0.to_batch())
    }
}
