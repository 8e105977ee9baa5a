//! `lotline bench`: measures a running server the way a plant uses it, over
//! Flight SQL only: durable ingest with concurrent writers (samples/s, ack
//! latency), bytes per sample after a flush, and point queries (one tag, one
//! hour). Results print as a table or as JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array};
use arrow_flight::error::FlightError;
use serde::Serialize;

use crate::client::{self, ClientError, ConnectArgs};
use crate::model;
use crate::storage::Manifest;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Samples to ingest in all
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: usize,
    /// Distinct tags; consecutive rows cycle through them like a gateway scan
    #[arg(long, default_value_t = 50_000)]
    pub tags: usize,
    /// Rows per ingest request
    #[arg(long, default_value_t = 50_000)]
    pub batch_rows: usize,
    /// Concurrent writers, each on its own connection
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// One-tag one-hour queries to time after the ingest
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// The server's data directory, to report bytes per sample after a flush
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        Latency {
            count: samples.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub rows: usize,
    pub tags: usize,
    pub batch_rows: usize,
    pub writers: usize,
    pub ingest_seconds: f64,
    pub ingest_samples_per_second: f64,
    pub ingest_ack: Latency,
    pub flush_seconds: f64,
    pub bytes_per_sample: Option<f64>,
    pub one_tag_one_hour: Latency,
    pub one_tag_one_hour_rows: usize,
}

/// Deterministic plant-like batch `index`: row `g` of the whole run is tag
/// `g % tags` at second `g / tags`, value a slow wave plus noise quantized to
/// 0.01 (like a real sensor's resolution).
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

pub async fn run(args: &BenchArgs) -> Result<BenchReport, ClientError> {
    let start_ns = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
    let batches = args.rows.div_ceil(args.batch_rows.max(1));
    let writers = args.writers.clamp(1, batches.max(1));
    eprintln!(
        "generating {batches} batches of {} rows over {} tags ...",
        args.batch_rows, args.tags
    );
    let pool: Arc<Vec<RecordBatch>> = Arc::new(
        (0..batches)
            .map(|i| bench_batch(i, args.batch_rows, args.tags, start_ns))
            .collect(),
    );
    let bar = indicatif::ProgressBar::new(batches as u64);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (pool, connect, bar) = (pool.clone(), args.connect.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut flight = client::connect(&connect).await?;
            let command = client::ingest_command("samples");
            let mut acks = Vec::new();
            for batch in pool.iter().skip(w).step_by(writers) {
                let sent = Instant::now();
                let stream = futures::stream::iter([Ok::<_, FlightError>(batch.clone())]);
                flight
                    .execute_ingest(command.clone(), stream)
                    .await
                    .map_err(|e| ClientError::flight("bench ingest", e))?;
                acks.push(sent.elapsed());
                bar.inc(1);
            }
            Ok::<_, ClientError>(acks)
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(
            task.await
                .map_err(|e| ClientError::Usage(e.to_string()))??,
        );
    }
    let ingest = began.elapsed();
    bar.finish_and_clear();
    let rows = batches * args.batch_rows;

    let flushed = Instant::now();
    client::run_flush(&args.connect).await?;
    let flush_seconds = flushed.elapsed().as_secs_f64();
    let bytes_per_sample = args
        .data_dir
        .as_ref()
        .and_then(|dir| Manifest::load(dir).ok())
        .and_then(|m| {
            let rows = m.total_rows("samples");
            (rows > 0).then(|| {
                m.segments("samples").iter().map(|s| s.bytes).sum::<u64>() as f64 / rows as f64
            })
        });

    let mut flight = client::connect(&args.connect).await?;
    let mut latencies = Vec::new();
    let mut returned = 0;
    for q in 0..args.queries {
        let tag = (q * 7919) % args.tags;
        let sql = format!(
            "SELECT ts, value, quality FROM samples WHERE tag = 'bench.t{tag:05}' \
             AND ts >= TIMESTAMP '2026-01-01T00:00:00Z' AND ts < TIMESTAMP '2026-01-01T01:00:00Z'"
        );
        let sent = Instant::now();
        returned += client::query(&mut flight, &sql)
            .await?
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>();
        latencies.push(sent.elapsed());
    }
    Ok(BenchReport {
        rows,
        tags: args.tags,
        batch_rows: args.batch_rows,
        writers,
        ingest_seconds: ingest.as_secs_f64(),
        ingest_samples_per_second: rows as f64 / ingest.as_secs_f64(),
        ingest_ack: Latency::of(acks),
        flush_seconds,
        bytes_per_sample,
        one_tag_one_hour: Latency::of(latencies),
        one_tag_one_hour_rows: returned / args.queries.max(1),
    })
}

pub fn render(r: &BenchReport) -> String {
    let lat = |l: &Latency| {
        format!(
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
        )
    };
    format!(
        "ingest      {} samples, {} tags, {} rows/request, {} writers\n\
         throughput  {:.0} samples/s ({:.2} s)\n\
         ack latency {}\n\
         flush       {:.2} s\n\
         on disk     {}\n\
         1 tag 1 h   {} ({} rows each)\n",
        r.rows,
        r.tags,
        r.batch_rows,
        r.writers,
        r.ingest_samples_per_second,
        r.ingest_seconds,
        lat(&r.ingest_ack),
        r.flush_seconds,
        r.bytes_per_sample
            .map_or("(pass --data-dir)".into(), |b| format!(
                "{b:.2} bytes/sample"
            )),
        lat(&r.one_tag_one_hour),
        r.one_tag_one_hour_rows,
    )
}
