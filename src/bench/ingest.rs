//! The ingest phase of `lotline bench`: deterministic plant-like batches sent
//! by N concurrent writers (one connection each, one durable request per
//! batch), then a flush and the bytes per sample of the segments; once per
//! protocol of `--protocols`, so Flight SQL, gRPC and line protocol ingest
//! stand side by side in one run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array,
};
use serde::Serialize;

use super::protocols::{self, Protocol, Writer};
use super::{BenchArgs, Latency, count_bar};
use crate::client::{self, ClientError};
use crate::model;
use crate::storage::Manifest;

/// 2026-01-01T00:00:00Z, where the bench's samples start.
pub const START_NS: i64 = 1_767_225_600_000_000_000;

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub protocol: Protocol,
    /// The `equipment` every sample carried (`--stamping-compare`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equipment: Option<String>,
    /// Where this protocol's samples start (each protocol gets its own time
    /// range, so none repeats another's rows).
    pub start_ns: i64,
    pub rows: usize,
    pub tags: usize,
    pub batch_rows: usize,
    pub writers: usize,
    pub seconds: f64,
    pub samples_per_second: f64,
    pub ack: Latency,
    pub flush_seconds: f64,
    /// Segment bytes per sample of the whole `samples` table after the
    /// flush (needs `--data-dir`): with several protocols, of all written so far.
    pub bytes_per_sample: Option<f64>,
}

/// Deterministic plant-like batch `index`: row `g` of the whole run is tag
/// `g % tags` at second `g / tags`, value a slow wave plus noise quantized to
/// 0.01 (like a real sensor's resolution). `benches/compare/compare.py`
/// builds the same rows bit for bit.
pub fn bench_batch(index: usize, batch_rows: usize, tags: usize, start_ns: i64) -> RecordBatch {
    let first = index * batch_rows;
    let mut names = Vec::with_capacity(batch_rows);
    let mut ts = Vec::with_capacity(batch_rows);
    let mut values = Vec::with_capacity(batch_rows);
    for g in first..first + batch_rows {
        let (tag, second) = (g % tags, (g / tags) as i64);
        names.push(format!("bench.t{tag:05}"));
        ts.push(start_ns + second * 1_000_000_000);
        let noise = ((g as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as f64 / 1024.0 - 0.5;
        let wave = (second as f64 / 600.0 + tag as f64).sin() * 5.0;
        values.push(((50.0 + tag as f64 % 100.0 + wave + noise) * 100.0).round() / 100.0);
    }
    let n = names.len();
    RecordBatch::try_from_iter([
        ("tag", Arc::new(StringArray::from(names)) as _),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone(model::UTC)) as _,
        ),
        ("value", Arc::new(Float64Array::from(values)) as _),
        ("quality", Arc::new(UInt32Array::from(vec![0u32; n])) as _),
    ])
    .expect("bench batch")
}

/// Where the `range`-th series of samples of a run starts: each series gets
/// its own time range, so none repeats another's rows.
pub fn range_start(args: &BenchArgs, range: usize) -> i64 {
    let batches = args.rows.div_ceil(args.batch_rows.max(1));
    let seconds = (batches * args.batch_rows).div_ceil(args.tags.max(1)) as i64;
    START_NS + range as i64 * (seconds + 1) * 1_000_000_000
}

/// Ingests the same samples through every protocol of `--protocols`, one
/// after the other, each shifted past the previous one's time range.
pub async fn run(args: &BenchArgs) -> Result<Vec<IngestReport>, ClientError> {
    let mut reports = Vec::new();
    for (i, &protocol) in args.protocols.iter().enumerate() {
        reports.push(run_series(args, protocol, range_start(args, i), None).await?);
    }
    Ok(reports)
}

/// `batch` with an `equipment` column holding `equipment` on every row.
fn with_equipment(batch: RecordBatch, equipment: &str) -> RecordBatch {
    let (schema, mut columns, rows) = batch.into_parts();
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(std::sync::Arc::new(arrow::datatypes::Field::new(
        "equipment",
        arrow::datatypes::DataType::Utf8,
        true,
    )));
    columns.push(Arc::new(StringArray::from(vec![equipment; rows])) as ArrayRef);
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .expect("bench batch with equipment")
}

/// One timed series: the bench samples from `start_ns` through `protocol`,
/// with `equipment` on every row if given, then a flush.
pub async fn run_series(
    args: &BenchArgs,
    protocol: Protocol,
    start_ns: i64,
    equipment: Option<&str>,
) -> Result<IngestReport, ClientError> {
    let batches = args.rows.div_ceil(args.batch_rows.max(1));
    let writers = args.writers.clamp(1, batches.max(1));
    // Each writer's share, encoded before the clock starts.
    let mut shares: Vec<Vec<protocols::Payload>> = (0..writers).map(|_| Vec::new()).collect();
    for i in 0..batches {
        let mut batch = bench_batch(i, args.batch_rows, args.tags, start_ns);
        if let Some(equipment) = equipment {
            batch = with_equipment(batch, equipment);
        }
        shares[i % writers].push(protocols::encode(protocol, batch));
    }
    // gRPC and HTTP writers carry a token from one handshake (Flight logs in
    // per connection), so no call pays for a password check.
    let token = match protocol {
        Protocol::Flight => None,
        _ if args.connect.no_auth => None,
        _ => client::connect(&args.connect).await?.token().cloned(),
    };
    let mut connected = Vec::new();
    for _ in 0..writers {
        connected.push(
            Writer::open(
                protocol,
                &args.connect,
                &args.http_endpoint,
                token.as_deref(),
            )
            .await?,
        );
    }
    let what = format!("ingest ({})", protocol.name());
    let bar = count_bar(batches as u64, &what, "requests");
    let began = Instant::now();
    let mut tasks = Vec::new();
    for (mut writer, share) in connected.into_iter().zip(shares) {
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for payload in share {
                let sent = Instant::now();
                writer.send(payload).await?;
                acks.push(sent.elapsed());
                bar.inc(1);
            }
            Ok::<_, ClientError>(acks)
        }));
    }
    let mut acks: Vec<Duration> = Vec::new();
    for task in tasks {
        acks.extend(
            task.await
                .map_err(|e| ClientError::Usage(e.to_string()))??,
        );
    }
    let seconds = began.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let rows = batches * args.batch_rows;

    let flushed = Instant::now();
    client::run_flush(&args.connect).await?;
    let flush_seconds = flushed.elapsed().as_secs_f64();
    Ok(IngestReport {
        protocol,
        equipment: equipment.map(String::from),
        start_ns,
        rows,
        tags: args.tags,
        batch_rows: args.batch_rows,
        writers,
        seconds,
        samples_per_second: rows as f64 / seconds,
        ack: Latency::of(acks),
        flush_seconds,
        bytes_per_sample: args.data_dir.as_deref().and_then(bytes_per_sample),
    })
}

/// Segment bytes per row of `samples`, from the manifest.
pub fn bytes_per_sample(data_dir: &Path) -> Option<f64> {
    let manifest = Manifest::load(data_dir).ok()?;
    let rows = manifest.total_rows("samples");
    (rows > 0).then(|| {
        manifest
            .segments("samples")
            .iter()
            .map(|s| s.bytes)
            .sum::<u64>() as f64
            / rows as f64
    })
}
