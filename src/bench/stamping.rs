//! `lotline bench --stamping-compare`: ingest throughput with context
//! stamping on vs off, in one run against one server.
//!
//! The same bench samples are ingested twice through Flight SQL, each series
//! in its own time range and with an equipment on every row:
//! - "unstamped": equipment `bench.stamp.off`, which has no production run.
//!   The server does everything stamping does short of stamping: it checks
//!   each row and looks the equipment up, finds no run and leaves the row as
//!   it came;
//! - "stamped": equipment `bench.stamp.on`, with one open run covering the
//!   whole range, so every row gets a work order and a lot (built columns,
//!   and a bigger WAL record and segment: part of the price of stamping).
//!
//! The unstamped series is first, so the stamped one does not profit from a
//! warmer server. The difference is what stamping costs per row; the cost of
//! the lookup itself shows by comparing the unstamped series with a run
//! against a server started with `--no-stamping` (where neither is stamped,
//! which `stamped_rows` = 0 shows).

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use serde::Serialize;

use super::BenchArgs;
use super::ingest::{self, IngestReport};
use super::protocols::Protocol;
use crate::client::{self, ClientError};

pub const EQUIPMENT_ON: &str = "bench.stamp.on";
pub const EQUIPMENT_OFF: &str = "bench.stamp.off";
pub const LOT: &str = "BENCH-LOT";

#[derive(Debug, Serialize)]
pub struct StampingReport {
    pub unstamped: IngestReport,
    pub stamped: IngestReport,
    /// Rows of the stamped series that carry the bench lot (all of them,
    /// unless the server runs with `--no-stamping`).
    pub stamped_rows: u64,
    /// Throughput lost to stamping: 1 - stamped / unstamped samples/s, in %.
    pub overhead_percent: f64,
}

/// Runs both series in the time ranges after the first `ranges_used`.
pub async fn run(args: &BenchArgs, ranges_used: usize) -> Result<StampingReport, ClientError> {
    let off_start = ingest::range_start(args, ranges_used);
    let on_start = ingest::range_start(args, ranges_used + 1);
    let mut flight = client::connect(&args.connect).await?;
    let run = format!(
        "INSERT INTO production_runs (equipment, work_order, lot, operation, start_ts) \
         VALUES ('{EQUIPMENT_ON}', 'BENCH-WO', '{LOT}', 'bench', to_timestamp_nanos({on_start}))"
    );
    client::query(&mut flight, &run).await?;
    let unstamped =
        ingest::run_series(args, Protocol::Flight, off_start, Some(EQUIPMENT_OFF)).await?;
    let stamped = ingest::run_series(args, Protocol::Flight, on_start, Some(EQUIPMENT_ON)).await?;
    let count = format!(
        "SELECT count(*) FROM samples WHERE equipment = '{EQUIPMENT_ON}' AND lot = '{LOT}' \
         AND ts >= to_timestamp_nanos({on_start})"
    );
    let batches = client::query(&mut flight, &count).await?;
    let stamped_rows = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<Int64Type>()
                .map(|c| c.value(0))
        })
        .unwrap_or(0) as u64;
    Ok(StampingReport {
        overhead_percent: (1.0 - stamped.samples_per_second / unstamped.samples_per_second) * 100.0,
        unstamped,
        stamped,
        stamped_rows,
    })
}

pub fn render(r: &StampingReport) -> String {
    let line = |name: &str, i: &IngestReport| {
        format!(
            "  {name:<10} {:>12.0} samples/s, ack p50 {:.2} ms, p99 {:.2} ms, flush {:.2} s\n",
            i.samples_per_second, i.ack.p50_ms, i.ack.p99_ms, i.flush_seconds
        )
    };
    format!(
        "stamping     {} samples per series through Flight SQL\n{}{}  overhead   {:.1} % ({} of {} rows stamped)\n\n",
        r.stamped.rows,
        line("unstamped", &r.unstamped),
        line("stamped", &r.stamped),
        r.overhead_percent,
        r.stamped_rows,
        r.stamped.rows,
    )
}
