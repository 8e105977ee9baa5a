//! Collectors: lotline reads the plant's machines itself. A mapping file
//! ([`mapping`]) names each collector, its protocol and endpoint, and maps
//! protocol addresses to tags; [`Collectors::start`] upserts the mapped tags
//! into `tags` and runs one task per collector, which writes its samples
//! through a [`SampleSink`] (the engine, inside `lotline serve`) and reports
//! its health to the [`status::StatusBoard`] (`collector_status`,
//! `/metrics`); [`Collectors::reload`] applies the file again. Connects,
//! disconnects, the mapping loaded and every reload are recorded in
//! `audit_log`.
//!
//! Quality is an OPC UA StatusCode, whatever the protocol: Good is 0, a
//! lost connection BadNoCommunication at the time it was seen.

pub mod aliases;
pub mod batched;
pub mod forward;
pub mod mapping;
pub mod modbus;
pub mod mtconnect;
pub mod opcua;
pub mod queue;
pub mod running;
pub mod sparkplug;
pub mod status;
pub mod tags;
pub mod template;

use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;

use crate::audit::Event;
use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model::{self, SampleRow, SampleRows};
use mapping::Point;
pub use running::{Collectors, Reloaded};
use status::State;

/// OPC UA StatusCode BadNoCommunication: no value because the source is
/// unreachable.
pub const BAD_NO_COMMUNICATION: u32 = 0x8031_0000;

/// The interface name collectors' writes carry in `audit_log`.
const INTERFACE: &str = "collector";

/// Where collected samples go.
#[async_trait]
pub trait SampleSink: Send + Sync + 'static {
    /// Writes one batch of `samples` rows for collector `name`. The rows are
    /// durable (per the server's WAL policy) when this returns `Ok`.
    async fn write(&self, name: &str, samples: RecordBatch) -> Result<usize, String>;
    /// Records `event` in `audit_log` (best effort: a failure is logged).
    async fn audit(&self, event: Event);
    /// The time of the newest sample stored for `tag`, where this sink can
    /// tell (collectors backfill from there); `None` by default.
    async fn newest_ts(&self, _tag: &str) -> Option<i64> {
        None
    }
    /// Upserts tags a collector learned of while running (a Sparkplug birth
    /// with a unit); by default they are not kept.
    async fn upsert_tags(&self, _tags: Vec<mapping::TagMeta>) -> Result<(), String> {
        Ok(())
    }
}

/// The engine of this process as a sink (collectors inside `lotline serve`).
pub struct EngineSink(pub Arc<Engine>);

#[async_trait]
impl SampleSink for EngineSink {
    async fn write(&self, name: &str, samples: RecordBatch) -> Result<usize, String> {
        let who = WriteContext::new(format!("collector:{name}"), INTERFACE);
        self.0
            .write_as(&who, model::samples(), vec![samples])
            .await
            .map_err(|e| e.to_string())
    }

    async fn audit(&self, event: Event) {
        if let Err(e) = self.0.audit(event).await {
            tracing::warn!("could not record a collector event in audit_log: {e}");
        }
    }

    async fn newest_ts(&self, tag: &str) -> Option<i64> {
        self.0.newest_ts(model::samples(), tag)
    }

    async fn upsert_tags(&self, tags: Vec<mapping::TagMeta>) -> Result<(), String> {
        tags::upsert_learned(&tags, &self.0)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .expect("clock within the nanosecond range")
}

/// One value read (or not) from one point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    /// Index of the point in its collector's list.
    pub point: usize,
    pub ts: i64,
    pub value: Option<f64>,
    /// A text value (OPC UA strings), stored in `samples.text`.
    pub text: Option<String>,
    pub quality: u32,
    /// Sent from the source's own history (a backfill, an edge node's
    /// store-and-forward), not as it happened.
    pub historical: bool,
}

impl Reading {
    pub fn good(point: usize, ts: i64, value: f64) -> Self {
        Self {
            point,
            ts,
            value: Some(value),
            text: None,
            quality: 0,
            historical: false,
        }
    }

    pub fn bad(point: usize, ts: i64, quality: u32) -> Self {
        Self {
            point,
            ts,
            value: None,
            text: None,
            quality,
            historical: false,
        }
    }
}

/// A running collector's link to its sink and its status row.
#[derive(Clone)]
pub(crate) struct Session {
    name: String,
    endpoint: String,
    sink: Arc<dyn SampleSink>,
    row: status::Row,
}

impl Session {
    fn update(&self, change: impl FnOnce(&mut status::CollectorStatus)) {
        change(&mut self.row.lock().expect("status row lock"));
    }

    /// Writes `readings` of `points` as samples and counts them.
    pub async fn write<A>(&self, points: &[Point<A>], readings: Vec<Reading>) {
        self.write_tagged(|i| &points[i].tag, readings).await;
    }

    /// Writes `readings` as samples of the tags `tag_of` their points.
    async fn write_tagged<'t>(
        &self,
        tag_of: impl Fn(usize) -> &'t mapping::TagMeta,
        readings: Vec<Reading>,
    ) {
        if readings.is_empty() {
            return;
        }
        let mut rows = SampleRows::with_capacity(readings.len());
        for r in &readings {
            let tag = tag_of(r.point);
            rows.push(SampleRow {
                tag: &tag.name,
                ts_ns: r.ts,
                value: r.value,
                text: r.text.as_deref(),
                quality: r.quality,
                context: [tag.equipment.as_deref(), None, None],
                ..Default::default()
            });
        }
        let live = readings.iter().filter(|r| !r.historical);
        let newest_live = live.map(|r| r.ts).max();
        let historical = readings.iter().filter(|r| r.historical).count() as u64;
        match self.sink.write(&self.name, rows.finish()).await {
            Ok(written) => self.update(|s| {
                s.samples_written += written as u64;
                s.historical_samples += historical;
                s.last_sample_ns = newest_live.max(s.last_sample_ns);
            }),
            Err(e) => self.error(&format!("writing samples: {e}")),
        }
    }

    /// Upserts tags learned while running; a failure is an error in the
    /// status, not a stop.
    pub async fn upsert_tags(&self, tags: Vec<mapping::TagMeta>) {
        if let Err(e) = self.sink.upsert_tags(tags).await {
            self.error(&format!("upserting learned tags: {e}"));
        }
    }

    /// The time of the newest sample the sink holds for `tag`.
    pub async fn newest_ts(&self, tag: &str) -> Option<i64> {
        self.sink.newest_ts(tag).await
    }

    /// Counts a request to the source to send its whole state again.
    pub fn resync_requested(&self, why: &str) {
        tracing::info!("collector {}: {why}", self.name);
        self.update(|s| s.resync_requests += 1);
    }

    /// Counts data the source lost before it was read.
    pub fn data_lost(&self, why: &str) {
        tracing::warn!("collector {}: {why}", self.name);
        self.update(|s| s.data_gaps += 1);
    }

    pub fn error(&self, error: &str) {
        tracing::warn!("collector {}: {error}", self.name);
        self.update(|s| {
            s.errors += 1;
            s.last_error = Some(error.to_string());
        });
    }

    pub async fn connected(&self) {
        tracing::info!("collector {} connected to {}", self.name, self.endpoint);
        self.update(|s| {
            s.state = State::Connected;
            s.connected_since_ns = Some(now_ns());
        });
        self.sink
            .audit(
                Event::new(format!("collector:{}", self.name), "collector.connect")
                    .detail(format!("endpoint={}", self.endpoint)),
            )
            .await;
    }

    /// The connection is lost (or could not be made): counted, and audited
    /// once per outage.
    pub async fn disconnected(&self, error: &str) {
        let mut was = State::Connecting;
        self.update(|s| {
            was = std::mem::replace(&mut s.state, State::Disconnected);
            s.connected_since_ns = None;
        });
        self.error(error);
        if was != State::Disconnected {
            self.sink
                .audit(
                    Event::new(format!("collector:{}", self.name), "collector.disconnect")
                        .detail(format!("endpoint={}: {error}", self.endpoint)),
                )
                .await;
        }
    }
}

/// Why collectors could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("reading or upserting the mapped tags ('aliases', 'tags'): {0}")]
    Tags(#[source] IngestError),
    #[error("{0}")]
    Mapping(#[from] mapping::MappingError),
}
