//! Prometheus metrics, served as text at `GET /metrics` (format 0.0.4).
//!
//! One [`Metrics`] per server, shared through an `Arc` by the Flight SQL
//! service, the gRPC services, the HTTP listener and the WAL thread. Counters and histograms
//! move as things happen; gauges of state the engine owns (buffered rows and
//! bytes, segments) are read from it at scrape time, so they cannot drift.
//!
//! | metric | labels |
//! |---|---|
//! | `lotline_rows_ingested_total` | `table`, `interface` (`flight_sql`, `sql_insert`, `line_protocol`, `grpc`) |
//! | `lotline_requests_rejected_total` | `interface`, `reason` (`unauthenticated`, `invalid`, `too_large`, …) |
//! | `lotline_errors_total` | `kind` (`wal`, `storage`, `internal`, `query`, …): server-side failures |
//! | `lotline_wal_fsync_seconds` | histogram of WAL group commits (write + fsync) |
//! | `lotline_queries_total`, `lotline_query_duration_seconds` | SQL queries executed, and their time to the last batch |
//! | `lotline_statements` | `state` (`running`, `waiting`): statements holding one of the `--max-concurrent-queries` places, and those waiting for one |
//! | `lotline_buffer_rows`, `lotline_buffer_bytes` | `table`: acknowledged rows not yet in segments |
//! | `lotline_segments`, `lotline_segment_bytes` | `table`: live Parquet segments |
//! | `lotline_compaction` | `what` (`runs`, `segments_merged`, `segments_written`, `rows`, `bytes_written`, `failures`): totals since start |
//! | `lotline_sample_keys` | `what` (`late_requests`, `late_rows`, `resent_rows`, `superseding_rows`): one row per (tag, ts), totals since start |

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::collect::{self, status::StatusBoard};
use crate::ingest::{Engine, IngestError};

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    table: &'static str,
    interface: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    interface: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectorLabels {
    collector: String,
    kind: &'static str,
    what: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    collector: Family<CollectorLabels, Gauge>,
    collectors: std::sync::OnceLock<Arc<StatusBoard>>,
    rows_ingested: Family<WriteLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    wal_fsync: Histogram,
    queries: Counter,
    planned: Counter,
    query_duration: Histogram,
    buffer_rows: Family<TableLabels, Gauge>,
    buffer_bytes: Family<TableLabels, Gauge>,
    segments: Family<TableLabels, Gauge>,
    segment_bytes: Family<TableLabels, Gauge>,
    compaction: Family<WhatLabels, Gauge>,
    sample_keys: Family<WhatLabels, Gauge>,
    statements: Family<StateLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Keeps a statement counted in `lotline_statements{state}` while alive.
#[derive(Debug)]
pub struct StatementGauge(Gauge);

impl Drop for StatementGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lotline");
        let rows_ingested = Family::default();
        registry.register(
            "rows_ingested",
            "Rows written durably, by table and interface",
            rows_ingested.clone(),
        );
        let rejected = Family::default();
        registry.register(
            "requests_rejected",
            "Requests refused because of what the client sent (nothing of them was written)",
            rejected.clone(),
        );
        let errors = Family::default();
        registry.register(
            "errors",
            "Requests that failed on the server's side, by kind",
            errors.clone(),
        );
        // 50 µs .. ~1.6 s: local NVMe fsyncs take tens of µs, cloud disks ms.
        let wal_fsync = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register_with_unit(
            "wal_fsync",
            "Duration of one WAL group commit: write of the group's records and fsync",
            Unit::Seconds,
            wal_fsync.clone(),
        );
        let queries = Counter::default();
        registry.register("queries", "SQL queries executed", queries.clone());
        let planned = Counter::default();
        registry.register(
            "statements_planned",
            "SQL statements planned (parsed, analysed, optimised); a query is planned once",
            planned.clone(),
        );
        // 1 ms .. ~65 s.
        let query_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "query_duration",
            "Time from a query's request to its last result batch",
            Unit::Seconds,
            query_duration.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<TableLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let buffer_rows = gauge(
            &mut registry,
            "buffer_rows",
            "Acknowledged rows in the write buffer, not yet in segments",
        );
        let buffer_bytes = gauge(
            &mut registry,
            "buffer_bytes",
            "Memory the write buffer keeps alive, each allocation counted once",
        );
        let segments = gauge(&mut registry, "segments", "Live Parquet segments");
        let segment_bytes = gauge(
            &mut registry,
            "segment_bytes",
            "Bytes of the live Parquet segments",
        );
        // Totals the engine keeps; read at scrape time like the segment gauges.
        let compaction = Family::<WhatLabels, Gauge>::default();
        registry.register(
            "compaction",
            "Compaction totals since start: runs, segments merged and written, rows, bytes written, failures",
            compaction.clone(),
        );
        let sample_keys = Family::<WhatLabels, Gauge>::default();
        registry.register(
            "sample_keys",
            "One row per (tag, ts) since start: requests with readings inside their tag's admitted times (the slow path), their new rows, exact resends not written again, and changed readings kept as superseding corrections",
            sample_keys.clone(),
        );
        let statements = Family::<StateLabels, Gauge>::default();
        registry.register(
            "statements",
            "Statements running (holding a place of --max-concurrent-queries) and waiting for a place",
            statements.clone(),
        );
        let collector = Family::<CollectorLabels, Gauge>::default();
        registry.register(
            "collector",
            "Per collector: connected (1 or 0), samples written and errors since start",
            collector.clone(),
        );
        Self {
            registry,
            collector,
            collectors: std::sync::OnceLock::new(),
            statements,
            compaction,
            sample_keys,
            rows_ingested,
            rejected,
            errors,
            wal_fsync,
            queries,
            planned,
            query_duration,
            buffer_rows,
            buffer_bytes,
            segments,
            segment_bytes,
        }
    }

    /// Shows `board`'s collectors from now on.
    pub fn observe_collectors(&self, board: Arc<StatusBoard>) {
        let _ = self.collectors.set(board);
    }

    /// Subscribes to the engine's WAL group commits (the fsync histogram).
    pub fn observe_engine(&self, engine: &Engine) {
        let histogram = self.wal_fsync.clone();
        engine.observe_wal_commits(Box::new(move |took: Duration| {
            histogram.observe(took.as_secs_f64())
        }));
    }

    /// Counts the outcome of one write request through `interface`.
    pub fn record_write(
        &self,
        interface: &'static str,
        table: &'static str,
        result: &Result<usize, IngestError>,
    ) {
        match result {
            Ok(rows) => {
                self.rows_ingested
                    .get_or_create(&WriteLabels { table, interface })
                    .inc_by(*rows as u64);
            }
            Err(e) if e.is_client_error() => self.rejected(interface, ingest_error_kind(e)),
            Err(e) => self.error(ingest_error_kind(e)),
        }
    }

    /// Counts a request refused because of what the client sent.
    pub fn rejected(&self, interface: &'static str, reason: &'static str) {
        self.rejected
            .get_or_create(&RejectLabels { interface, reason })
            .inc();
    }

    /// Counts a failure on the server's side.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a query; its duration is recorded when the timer is dropped
    /// (hold it until the last result batch is sent).
    /// Counts a statement planned.
    pub fn planned(&self) {
        self.planned.inc();
    }

    pub fn query_started(&self) -> QueryTimer {
        self.queries.inc();
        QueryTimer {
            histogram: self.query_duration.clone(),
            started: Instant::now(),
        }
    }

    /// Counts a statement as `state` (`running`, `waiting`) until the
    /// returned guard is dropped.
    pub fn statement(&self, state: &'static str) -> StatementGauge {
        let gauge = self
            .statements
            .get_or_create(&StateLabels { state })
            .clone();
        gauge.inc();
        StatementGauge(gauge)
    }

    /// Counts a query that failed: the statement's fault or the server's.
    pub fn query_failed(&self, status: &tonic::Status) {
        match status.code() {
            tonic::Code::InvalidArgument | tonic::Code::NotFound => {
                self.rejected("flight_sql", "invalid_query")
            }
            _ => self.error("query"),
        }
    }

    /// The exposition text, with the engine's gauges read now.
    pub fn render(&self, engine: &Engine) -> String {
        for usage in engine.buffer_usage() {
            let table = TableLabels { table: usage.table };
            self.buffer_rows
                .get_or_create(&table)
                .set(usage.rows as i64);
            self.buffer_bytes
                .get_or_create(&table)
                .set(usage.bytes as i64);
        }
        let manifest = engine.manifest();
        for def in crate::model::tables() {
            let live = manifest.segments(def.name);
            let table = TableLabels { table: def.name };
            self.segments.get_or_create(&table).set(live.len() as i64);
            let bytes: u64 = live.iter().map(|s| s.bytes).sum();
            self.segment_bytes.get_or_create(&table).set(bytes as i64);
        }
        let totals = engine.compaction_totals();
        set_totals(
            &self.compaction,
            [
                ("runs", totals.runs),
                ("segments_merged", totals.segments_merged),
                ("segments_written", totals.segments_written),
                ("rows", totals.rows),
                ("bytes_written", totals.bytes_written),
                ("failures", totals.failures),
            ],
        );
        let keys = engine.key_totals();
        set_totals(
            &self.sample_keys,
            [
                ("late_requests", keys.late_requests),
                ("late_rows", keys.late_rows),
                ("resent_rows", keys.resent_rows),
                ("superseding_rows", keys.superseding_rows),
            ],
        );
        for status in self
            .collectors
            .get()
            .map(|b| b.snapshot())
            .unwrap_or_default()
        {
            let connected = u64::from(status.state == collect::status::State::Connected);
            for (what, value) in [
                ("connected", connected),
                ("samples_written", status.samples_written),
                ("historical_samples", status.historical_samples),
                ("resync_requests", status.resync_requests),
                ("data_gaps", status.data_gaps),
                ("errors", status.errors),
            ] {
                let labels = CollectorLabels {
                    collector: status.name.clone(),
                    kind: status.kind,
                    what,
                };
                self.collector.get_or_create(&labels).set(value as i64);
            }
        }
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

/// Records a query's duration when dropped.
pub struct QueryTimer {
    histogram: Histogram,
    started: Instant,
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

/// The label an ingest failure is counted under.
pub fn ingest_error_kind(e: &IngestError) -> &'static str {
    match e {
        IngestError::Invalid(_) => "invalid",
        IngestError::UnknownTable(_) => "unknown_table",
        IngestError::ReadOnly(_) => "read_only",
        IngestError::TooLarge { .. } => "too_large",
        IngestError::ReasonRequired { .. } => "reason_required",
        IngestError::Statement(_) => "invalid",
        IngestError::Wal(_) => "wal",
        IngestError::Storage(_) => "storage",
        IngestError::Locked { .. } => "locked",
        IngestError::Stamp(_) => "stamping",
        IngestError::Compaction(_) => "compaction",
        IngestError::Internal(_) => "internal",
        IngestError::WalDamaged { .. } => "wal",
        IngestError::BufferFull { .. } => "buffer_full",
        IngestError::DiskFull { .. } => "disk_full",
        IngestError::Column(_) => "storage",
        IngestError::BadRequestId(_) => "invalid",
        IngestError::InPart { source, .. } => ingest_error_kind(source),
    }
}

/// Sets a family of totals the engine keeps, one gauge per `what`.
fn set_totals<const N: usize>(
    family: &Family<WhatLabels, Gauge>,
    totals: [(&'static str, u64); N],
) {
    for (what, value) in totals {
        family.get_or_create(&WhatLabels { what }).set(value as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_prometheus_text() {
        let m = Metrics::new();
        m.record_write("line_protocol", "samples", &Ok(5));
        m.record_write(
            "line_protocol",
            "samples",
            &Err(IngestError::TooLarge { bytes: 2, limit: 1 }),
        );
        m.record_write(
            "flight_sql",
            "samples",
            &Err(IngestError::Internal("x".into())),
        );
        drop(m.query_started());
        let mut text = String::new();
        prometheus_text::encode(&mut text, &m.registry).unwrap();
        for line in [
            "# TYPE lotline_rows_ingested_total counter",
            r#"lotline_rows_ingested_total{table="samples",interface="line_protocol"} 5"#,
            r#"lotline_requests_rejected_total{interface="line_protocol",reason="too_large"} 1"#,
            r#"lotline_errors_total{kind="internal"} 1"#,
            "lotline_queries_total 1",
            "lotline_query_duration_seconds_count 1",
            "# TYPE lotline_wal_fsync_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
