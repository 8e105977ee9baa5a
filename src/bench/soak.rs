//! `lotline bench --soak SECONDS`: 8 writers and 4 readers against a running
//! server for a set time. Writers send small durable requests at a steady
//! total rate; readers loop over point queries and a last-values scan of the
//! soak's tags. Reports every error (there must be none), the server's
//! resident memory over time (from `/proc/<pid>/status`; the pid is
//! `--server-pid` or the process holding `<data-dir>/LOCK`), and latency
//! drift: the first window against the last.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array};
use arrow_flight::sql::client::FlightSqlServiceClient;
use serde::Serialize;
use tonic::transport::Channel;

use super::queries::count_rows;
use super::{BenchArgs, Latency, count_bar};
use crate::client::{self, ClientError, ConnectArgs};
use crate::generate::output::ingest_batch;
use crate::model;

pub const WRITERS: usize = 8;
pub const READERS: usize = 4;
/// Tags per soak writer.
const WRITER_TAGS: usize = 500;
/// Requests per second per writer.
const REQUESTS_PER_SECOND: u64 = 10;
/// Errors whose text is kept in the report.
const KEPT_ERRORS: usize = 5;
const START_NS: i64 = 1_798_761_600_000_000_000; // 2027-01-01T00:00:00Z

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub seconds: f64,
    pub writers: usize,
    pub readers: usize,
    pub target_samples_per_second: u64,
    pub samples_per_second: f64,
    pub write_requests: u64,
    pub reads: u64,
    /// Failed writes and reads; must be 0.
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Length of the first and last windows compared for drift.
    pub window_seconds: f64,
    pub write_ack_first: Option<Latency>,
    pub write_ack_last: Option<Latency>,
    pub read_first: Option<Latency>,
    pub read_last: Option<Latency>,
    /// Last window's p50 over the first window's (1.0 = no drift).
    pub write_drift: Option<f64>,
    pub read_drift: Option<f64>,
    pub server_pid: Option<u32>,
    pub rss: Option<RssReport>,
}

#[derive(Debug, Serialize)]
pub struct RssReport {
    pub start_mib: f64,
    pub max_mib: f64,
    pub end_mib: f64,
    /// (seconds since the start, MiB), one a second.
    pub series: Vec<(f64, f64)>,
}

/// Everything the tasks record: (seconds since start, latency) per call.
#[derive(Default)]
struct Log {
    writes: Vec<(f64, Duration)>,
    reads: Vec<(f64, Duration)>,
    errors: u64,
    first_errors: Vec<String>,
    rows: u64,
}

impl Log {
    fn error(&mut self, e: impl ToString) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(e.to_string());
        }
    }
}

/// The pid whose open files include `<data_dir>/LOCK` (the server).
pub fn lock_holder(data_dir: &Path) -> Option<u32> {
    let lock = std::fs::canonicalize(data_dir.join("LOCK")).ok()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == lock))
        {
            return Some(pid);
        }
    }
    None
}

/// Resident memory of a process in MiB (`VmRSS`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn soak_batch(writer: usize, seq: u64, rows: usize) -> RecordBatch {
    let mut tags = Vec::with_capacity(rows);
    let mut ts = Vec::with_capacity(rows);
    let mut values = Vec::with_capacity(rows);
    for i in 0..rows {
        let g = seq * rows as u64 + i as u64;
        let tag = (g % WRITER_TAGS as u64) as usize;
        let tick = (g / WRITER_TAGS as u64) as i64;
        tags.push(format!("soak.w{writer}.t{tag:03}"));
        ts.push(START_NS + tick * 100_000_000);
        values.push(((tick as f64 / 50.0).sin() * 10.0 * 100.0).round() / 100.0 + tag as f64);
    }
    RecordBatch::try_from_iter([
        ("tag", Arc::new(StringArray::from(tags)) as _),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone(model::UTC)) as _,
        ),
        ("value", Arc::new(Float64Array::from(values)) as _),
        (
            "quality",
            Arc::new(UInt32Array::from(vec![0u32; rows])) as _,
        ),
    ])
    .expect("soak batch")
}

fn read_sql(reader: usize, i: u64) -> String {
    match i % 3 {
        // The last-values cache, as a dashboard reads it: a steady cost. (A
        // GROUP BY over all of `samples` grows with every second of the soak
        // and measured the data's growth, not the server's drift.)
        0 => "SELECT tag, ts, value FROM last_values WHERE tag LIKE 'soak.%'".to_string(),
        _ => format!(
            "SELECT ts, value FROM samples WHERE tag = 'soak.w{}.t{:03}' \
             AND ts >= TIMESTAMP '2027-01-01T00:00:00Z' AND ts < TIMESTAMP '2027-01-01T01:00:00Z'",
            (reader + i as usize) % WRITERS,
            (i * 37) % WRITER_TAGS as u64
        ),
    }
}

/// A connection, or the error logged and `None`.
async fn connect_logged(
    connect: &ConnectArgs,
    log: &Mutex<Log>,
) -> Option<FlightSqlServiceClient<Channel>> {
    match client::connect(connect).await {
        Ok(flight) => Some(flight),
        Err(e) => {
            log.lock().expect("log").error(e);
            None
        }
    }
}

pub async fn run(args: &BenchArgs, seconds: u64) -> Result<SoakReport, ClientError> {
    let pid = args
        .server_pid
        .or_else(|| args.data_dir.as_deref().and_then(lock_holder));
    let rate = args.soak_rate.max(WRITERS as u64 * REQUESTS_PER_SECOND);
    let rows = (rate / (WRITERS as u64 * REQUESTS_PER_SECOND)) as usize;
    let log = Arc::new(Mutex::new(Log::default()));
    let began = Instant::now();
    let deadline = began + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (log, connect) = (log.clone(), args.connect.clone());
        tasks.push(tokio::spawn(async move {
            let Some(mut flight) = connect_logged(&connect, &log).await else {
                return;
            };
            let command = client::ingest_command("samples");
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / REQUESTS_PER_SECOND));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0;
            while Instant::now() < deadline {
                tick.tick().await;
                let sent = Instant::now();
                let result = ingest_batch(&mut flight, &command, soak_batch(w, seq, rows)).await;
                let mut log = log.lock().expect("log");
                match result {
                    Ok(()) => {
                        log.writes
                            .push(((sent - began).as_secs_f64(), sent.elapsed()));
                        log.rows += rows as u64;
                    }
                    Err(e) => log.error(e),
                }
                seq += 1;
            }
        }));
    }
    for r in 0..READERS {
        let (log, connect) = (log.clone(), args.connect.clone());
        tasks.push(tokio::spawn(async move {
            let Some(mut flight) = connect_logged(&connect, &log).await else {
                return;
            };
            let mut i = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let result = count_rows(&mut flight, &read_sql(r, i)).await;
                {
                    let mut log = log.lock().expect("log");
                    match result {
                        Ok(_) => log
                            .reads
                            .push(((sent - began).as_secs_f64(), sent.elapsed())),
                        Err(e) => log.error(e),
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let bar = count_bar(seconds, "soak", "s");
    let mut series = Vec::new();
    while Instant::now() < deadline {
        if let Some(mib) = pid.and_then(rss_mib) {
            series.push((began.elapsed().as_secs_f64(), mib));
        }
        bar.set_position(began.elapsed().as_secs().min(seconds));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for task in tasks {
        task.await.map_err(|e| ClientError::Usage(e.to_string()))?;
    }
    if let Some(mib) = pid.and_then(rss_mib) {
        series.push((began.elapsed().as_secs_f64(), mib));
    }
    bar.finish_and_clear();
    let elapsed = began.elapsed().as_secs_f64();
    let log = std::mem::take(&mut *log.lock().expect("log"));
    Ok(report(log, elapsed, seconds, rate, pid, series))
}

fn report(
    log: Log,
    elapsed: f64,
    seconds: u64,
    rate: u64,
    pid: Option<u32>,
    series: Vec<(f64, f64)>,
) -> SoakReport {
    let window = (seconds as f64 / 4.0).min(60.0);
    let between = |calls: &[(f64, Duration)], from: f64, to: f64| {
        let picked: Vec<Duration> = calls
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|c| c.1)
            .collect();
        (!picked.is_empty()).then(|| Latency::of(picked))
    };
    let end = seconds as f64;
    let (wf, wl) = (
        between(&log.writes, 0.0, window),
        between(&log.writes, end - window, f64::MAX),
    );
    let (rf, rl) = (
        between(&log.reads, 0.0, window),
        between(&log.reads, end - window, f64::MAX),
    );
    let drift = |a: &Option<Latency>, b: &Option<Latency>| match (a, b) {
        (Some(a), Some(b)) if a.p50_ms > 0.0 => Some(b.p50_ms / a.p50_ms),
        _ => None,
    };
    let rss = (!series.is_empty()).then(|| RssReport {
        start_mib: series[0].1,
        max_mib: series.iter().map(|s| s.1).fold(0.0, f64::max),
        end_mib: series[series.len() - 1].1,
        series,
    });
    SoakReport {
        seconds: elapsed,
        writers: WRITERS,
        readers: READERS,
        target_samples_per_second: rate,
        samples_per_second: log.rows as f64 / elapsed,
        write_requests: log.writes.len() as u64,
        reads: log.reads.len() as u64,
        errors: log.errors,
        first_errors: log.first_errors,
        window_seconds: window,
        write_drift: drift(&wf, &wl),
        read_drift: drift(&rf, &rl),
        write_ack_first: wf,
        write_ack_last: wl,
        read_first: rf,
        read_last: rl,
        server_pid: pid,
        rss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_compares_the_first_and_last_windows() {
        let mut log = Log {
            writes: vec![
                (0.5, Duration::from_millis(10)),
                (5.0, Duration::from_millis(99)),
                (9.5, Duration::from_millis(20)),
            ],
            ..Log::default()
        };
        log.error("boom");
        let r = report(
            log,
            10.0,
            10,
            1000,
            None,
            vec![(0.0, 100.0), (5.0, 300.0), (10.0, 200.0)],
        );
        assert_eq!(r.window_seconds, 2.5);
        assert_eq!(r.write_ack_first.as_ref().unwrap().p50_ms, 10.0);
        assert_eq!(r.write_ack_last.as_ref().unwrap().p50_ms, 20.0);
        assert_eq!(r.write_drift, Some(2.0));
        assert_eq!(r.read_drift, None);
        assert_eq!((r.errors, r.first_errors.len()), (1, 1));
        let rss = r.rss.unwrap();
        assert_eq!(
            (rss.start_mib, rss.max_mib, rss.end_mib),
            (100.0, 300.0, 200.0)
        );
    }

    #[test]
    fn finds_the_process_holding_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = std::fs::File::create(dir.path().join("LOCK")).unwrap();
        assert_eq!(lock_holder(dir.path()), Some(std::process::id()));
        assert!(rss_mib(std::process::id()).unwrap() > 0.0);
        assert_eq!(lock_holder(&dir.path().join("missing")), None);
    }
}
