//! `lotline bench`: measures a running server the way a plant uses it. Three
//! parts, each optional:
//!
//! - [`ingest`]: durable ingest with concurrent writers (samples/s, ack
//!   latency), a flush, and bytes per sample of the segments; through Flight
//!   SQL, gRPC `lotline.v1` and/or line protocol over HTTP ([`protocols`]),
//!   side by side;
//! - [`queries`]: the query mix (last values of all tags, one tag one hour,
//!   interpolation, TimeAverage, bulk export, traceability) over whatever the
//!   server holds, each with p50/p95/p99; functions not landed yet are
//!   reported as skipped;
//! - [`soak`]: 8 writers and 4 readers for a set time, with errors, server
//!   memory and latency drift;
//! - [`stamping`] (`--stamping-compare`): ingest with context stamping on vs
//!   off, side by side.
//!
//! Results print as a table or as JSON.

pub mod ingest;
pub mod protocols;
pub mod queries;
pub mod soak;
pub mod stamping;

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::client::{self, ClientError, ConnectArgs};
pub use ingest::{IngestReport, bench_batch};
pub use protocols::Protocol;
pub use queries::{QueryResult, Status};
pub use soak::SoakReport;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Samples to ingest in all (0: skip the ingest and measure what the
    /// server already holds)
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
    /// Ingest through each of these, one after the other, the same samples
    /// (each in its own time range): flight (Flight SQL bulk ingest), grpc
    /// (lotline.v1 IngestService), line (line protocol over HTTP)
    #[arg(long, value_enum, value_delimiter = ',', default_value = "flight")]
    pub protocols: Vec<Protocol>,
    /// The server's HTTP listener, for --protocols line
    #[arg(
        long,
        env = "LOTLINE_HTTP_ENDPOINT",
        default_value = "http://127.0.0.1:8086"
    )]
    pub http_endpoint: String,
    /// Runs of each light query (last values, one tag one hour, trace)
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Runs of each heavy query (interpolation, TimeAverage, bulk export, join)
    #[arg(long, default_value_t = 5)]
    pub heavy_queries: usize,
    /// Skip the query mix
    #[arg(long)]
    pub no_queries: bool,
    /// Also ingest the samples twice more through Flight SQL with an
    /// equipment on every row: once where a production run stamps every row,
    /// once where none does; reports both and the overhead
    #[arg(long)]
    pub stamping_compare: bool,
    /// Also soak the server for this many seconds: 8 writers, 4 readers
    #[arg(long, value_name = "SECONDS")]
    pub soak: Option<u64>,
    /// Total samples per second the soak writers send
    #[arg(long, default_value_t = 50_000)]
    pub soak_rate: u64,
    /// The server's pid, for its memory during the soak (default: the
    /// process holding <data-dir>/LOCK)
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's data directory: bytes per sample after the flush, and
    /// the server's pid for the soak
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Latency percentiles (nearest rank) of a set of calls.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Self {
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

    fn line(&self) -> String {
        format!(
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub endpoint: String,
    /// One report per protocol, in the order of `--protocols`.
    pub ingest: Vec<IngestReport>,
    pub queries: Vec<QueryResult>,
    pub soak: Option<SoakReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stamping: Option<stamping::StampingReport>,
}

/// A progress bar counting `unit`s, hidden when stderr is not a terminal.
pub(crate) fn count_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!(
        "{{msg:>28}} [{{elapsed_precise}}] [{{wide_bar}}] {{pos}}/{{len}} {unit} (eta {{eta}})"
    );
    bar.set_style(ProgressStyle::with_template(&template).expect("progress template"));
    bar.set_message(what.to_string());
    bar
}

pub async fn run(args: &BenchArgs) -> Result<BenchReport, ClientError> {
    if args.rows > 0 && (args.tags == 0 || args.batch_rows == 0) {
        return Err(ClientError::Usage(
            "--tags and --batch-rows must be at least 1".into(),
        ));
    }
    let ingest = if args.rows > 0 {
        ingest::run(args).await?
    } else {
        Vec::new()
    };
    let stamping = if args.stamping_compare && args.rows > 0 {
        Some(stamping::run(args, ingest.len()).await?)
    } else {
        None
    };
    let queries = if args.no_queries {
        Vec::new()
    } else {
        let mut flight = client::connect(&args.connect).await?;
        queries::run(args, &mut flight).await?
    };
    let soak = match args.soak {
        Some(seconds) if seconds > 0 => Some(soak::run(args, seconds).await?),
        _ => None,
    };
    Ok(BenchReport {
        endpoint: args.connect.endpoint.clone(),
        ingest,
        queries,
        soak,
        stamping,
    })
}

pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    if let Some(first) = r.ingest.first() {
        out += &format!(
            "ingest       {} samples per protocol, {} tags, {} rows/request, {} writers\n\
             {:<8} {:>12} {:>9} {:>11} {:>11} {:>11} {:>9} {:>13}\n",
            first.rows,
            first.tags,
            first.batch_rows,
            first.writers,
            "protocol",
            "samples/s",
            "seconds",
            "ack p50 ms",
            "ack p95 ms",
            "ack p99 ms",
            "flush s",
            "bytes/sample",
        );
        for i in &r.ingest {
            out += &format!(
                "{:<8} {:>12.0} {:>9.2} {:>11.2} {:>11.2} {:>11.2} {:>9.2} {:>13}\n",
                i.protocol.name(),
                i.samples_per_second,
                i.seconds,
                i.ack.p50_ms,
                i.ack.p95_ms,
                i.ack.p99_ms,
                i.flush_seconds,
                i.bytes_per_sample
                    .map_or("(--data-dir)".into(), |b| format!("{b:.2}")),
            );
        }
        out.push('\n');
    }
    if let Some(s) = &r.stamping {
        out += &stamping::render(s);
    }
    if !r.queries.is_empty() {
        out += &format!(
            "{:<38} {:>9} {:>9} {:>9} {:>6} {:>12}  {}\n",
            "query", "p50 ms", "p95 ms", "p99 ms", "runs", "rows/run", "note"
        );
        for q in &r.queries {
            let note = match (q.values_per_second, &q.detail) {
                (Some(v), _) => format!("{v:.0} values/s"),
                (None, Some(d)) => d.clone(),
                _ => String::new(),
            };
            match &q.latency {
                Some(l) => {
                    out += &format!(
                        "{:<38} {:>9.2} {:>9.2} {:>9.2} {:>6} {:>12.0}  {note}\n",
                        q.name,
                        l.p50_ms,
                        l.p95_ms,
                        l.p99_ms,
                        l.count,
                        q.rows_per_run.unwrap_or(0.0)
                    )
                }
                None => out += &format!("{:<38} {:>49}  {note}\n", q.name, "-"),
            }
        }
        out.push('\n');
    }
    if let Some(s) = &r.soak {
        let opt = |l: &Option<Latency>| l.as_ref().map_or("-".to_string(), Latency::line);
        let ratio = |d: Option<f64>| d.map_or("-".to_string(), |d| format!("{d:.2}x"));
        out += &format!(
            "soak         {:.0} s, {} writers, {} readers: {:.0} samples/s (target {}), {} writes, {} reads\n\
             errors       {}{}\n\
             writes       first {:.0} s: {}\n             last  {:.0} s: {} (p50 drift {})\n\
             reads        first {:.0} s: {}\n             last  {:.0} s: {} (p50 drift {})\n\
             server RSS   {}\n",
            s.seconds,
            s.writers,
            s.readers,
            s.samples_per_second,
            s.target_samples_per_second,
            s.write_requests,
            s.reads,
            s.errors,
            s.first_errors
                .first()
                .map_or(String::new(), |e| format!(" (first: {e})")),
            s.window_seconds,
            opt(&s.write_ack_first),
            s.window_seconds,
            opt(&s.write_ack_last),
            ratio(s.write_drift),
            s.window_seconds,
            opt(&s.read_first),
            s.window_seconds,
            opt(&s.read_last),
            ratio(s.read_drift),
            s.rss.as_ref().map_or(
                "(pass --server-pid or --data-dir)".to_string(),
                |m| format!(
                    "start {:.0} MiB, max {:.0} MiB, end {:.0} MiB",
                    m.start_mib, m.max_mib, m.end_mib
                )
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.count, 100);
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        let one = Latency::of(vec![Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }

    #[test]
    fn render_shows_results_and_skips() {
        let ok = QueryResult {
            name: "one tag, one hour".into(),
            status: Status::Ok,
            detail: None,
            sql: Some("SELECT 1".into()),
            latency: Some(Latency::of(vec![Duration::from_millis(3)])),
            rows_per_run: Some(3600.0),
            values_per_second: None,
        };
        let skipped = QueryResult {
            name: "trace_backward, depth 10".into(),
            status: Status::Skipped,
            detail: Some("skipped (not landed: trace_backward)".into()),
            sql: None,
            latency: None,
            rows_per_run: None,
            values_per_second: None,
        };
        let report = BenchReport {
            endpoint: "http://127.0.0.1:1".into(),
            ingest: Vec::new(),
            queries: vec![ok, skipped],
            soak: None,
            stamping: None,
        };
        let text = render(&report);
        assert!(text.contains("one tag, one hour"), "{text}");
        assert!(text.contains("3600"), "{text}");
        assert!(
            text.contains("skipped (not landed: trace_backward)"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["queries"][1]["status"], "skipped");
        assert_eq!(json["queries"][0]["latency"]["p99_ms"], 3.0);
    }
}
