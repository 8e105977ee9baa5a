//! The query mix of `lotline bench`, run against whatever the server holds
//! (a generated plant, the bench's own samples, or both). Each query runs N
//! times over Flight SQL and reports p50/p95/p99. A query that needs a table
//! or function the server does not have yet (looked up in
//! `information_schema`) is reported as skipped, not failed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use serde::Serialize;
use tonic::transport::Channel;

use super::{BenchArgs, Latency, count_bar};
use crate::client::{self, ClientError};
use crate::generate::output::string_column;
use crate::query::sql_literal;

type Client = FlightSqlServiceClient<Channel>;

const HOUR_NS: i64 = 3_600_000_000_000;
const DAY_NS: i64 = 24 * HOUR_NS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Error,
}

/// One query of the mix.
#[derive(Debug, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub status: Status,
    /// Why it was skipped or failed, or which variant ran.
    pub detail: Option<String>,
    /// The SQL of the first run.
    pub sql: Option<String>,
    pub latency: Option<Latency>,
    /// Rows returned per run, on average.
    pub rows_per_run: Option<f64>,
    /// For the bulk export: values (rows × value columns) per second.
    pub values_per_second: Option<f64>,
}

impl QueryResult {
    fn skipped(name: &str, missing: &[&str]) -> Self {
        QueryResult {
            name: name.into(),
            status: Status::Skipped,
            detail: Some(format!("skipped (not landed: {})", missing.join(", "))),
            sql: None,
            latency: None,
            rows_per_run: None,
            values_per_second: None,
        }
    }
}

/// What the server holds, found once before the mix.
pub struct Targets {
    /// Tables and functions of the server.
    pub names: HashSet<String>,
    /// Tags to query (from `tags`, else from `samples`), sorted.
    pub tags: Vec<String>,
    /// Time range of the first tag's samples (ns).
    pub first_ns: i64,
    pub last_ns: i64,
    /// A finished lot to trace (the last finished run's, else from `samples`).
    pub lot: Option<String>,
}

async fn strings(flight: &mut Client, sql: &str) -> Result<Vec<String>, ClientError> {
    Ok(string_column(&client::query(flight, sql).await?))
}

pub async fn discover(flight: &mut Client) -> Result<Targets, ClientError> {
    let mut names: HashSet<String> = strings(
        flight,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await?
    .into_iter()
    .collect();
    // Older servers may not list routines; then no function has landed.
    if let Ok(routines) = strings(
        flight,
        "SELECT routine_name FROM information_schema.routines",
    )
    .await
    {
        names.extend(routines);
    }
    let mut tags = strings(flight, "SELECT tag FROM tags ORDER BY tag").await?;
    if tags.is_empty() {
        tags = strings(flight, "SELECT DISTINCT tag FROM samples ORDER BY tag").await?;
    }
    let (mut first_ns, mut last_ns) = (0, 0);
    if let Some(tag) = tags.first() {
        let sql = format!(
            "SELECT CAST(min(ts) AS BIGINT), CAST(max(ts) AS BIGINT) FROM samples WHERE tag = {}",
            sql_literal::string(tag)
        );
        let batches = client::query(flight, &sql).await?;
        if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
            let col = |i: usize| {
                arrow::compute::cast(b.column(i), &DataType::Int64)
                    .ok()
                    .and_then(|c| {
                        let c = c.as_primitive::<Int64Type>();
                        c.is_valid(0).then(|| c.value(0))
                    })
            };
            first_ns = col(0).unwrap_or(0);
            last_ns = col(1).unwrap_or(0);
        }
    }
    // The most recently finished lot: finished lots are what quality
    // engineers trace back from (and in the generated plant each has a full
    // genealogy). `production_runs` is small; `genealogy` may hold tens of
    // millions of rows, so it is not scanned here.
    let lot_sql = if names.contains("production_runs") {
        "SELECT lot FROM production_runs WHERE end_ts IS NOT NULL AND lot IS NOT NULL \
         ORDER BY end_ts DESC, lot LIMIT 1"
            .to_string()
    } else {
        match tags.first() {
            Some(t) => format!(
                "SELECT max(lot) FROM samples WHERE tag = {}",
                sql_literal::string(t)
            ),
            None => "SELECT max(lot) FROM samples".to_string(),
        }
    };
    let lot = strings(flight, &lot_sql).await?.into_iter().next();
    Ok(Targets {
        names,
        tags,
        first_ns,
        last_ns,
        lot,
    })
}

/// One query of the mix: what it needs and how to build its i-th SQL.
struct Spec {
    name: &'static str,
    needs: &'static [&'static str],
    runs: usize,
    detail: Option<String>,
    sql: Box<dyn Fn(usize) -> String + Send + Sync>,
    /// Value columns per row, for values/s (bulk export only).
    values_per_row: Option<usize>,
}

fn array_of(tags: &[String]) -> String {
    let items: Vec<String> = tags.iter().map(|t| sql_literal::string(t)).collect();
    format!("[{}]", items.join(", "))
}

fn mix(args: &BenchArgs, t: &Targets) -> Vec<Spec> {
    let tags = t.tags.clone();
    let hour0 = t.first_ns.div_euclid(HOUR_NS) * HOUR_NS;
    let hours = ((t.last_ns - hour0) / HOUR_NS).max(1) as usize;
    let end = (t.last_ns.div_euclid(60_000_000_000) + 1) * 60_000_000_000;
    let hundred = array_of(&tags[..tags.len().min(100)]);
    let hundred2 = hundred.clone();
    let lot = sql_literal::string(t.lot.as_deref().unwrap_or("L-1001"));
    let lot2 = lot.clone();
    let (light, heavy) = (args.queries.max(1), args.heavy_queries.max(1));
    let last_values = t.names.contains("last_values");
    vec![
        Spec {
            name: "last values, all tags",
            needs: &[],
            runs: light,
            detail: Some(if last_values {
                "last_values table".into()
            } else {
                "GROUP BY over samples (last_values not landed)".into()
            }),
            sql: Box::new(move |_| {
                if last_values {
                    "SELECT tag, ts, value, quality FROM last_values".into()
                } else {
                    "SELECT tag, max(ts) AS ts, last_value(value ORDER BY ts) AS value, \
                     last_value(quality ORDER BY ts) AS quality FROM samples GROUP BY tag"
                        .into()
                }
            }),
            values_per_row: None,
        },
        Spec {
            name: "one tag, one hour",
            needs: &[],
            runs: light,
            detail: None,
            sql: Box::new(move |q| {
                let tag = &tags[(q * 7919) % tags.len()];
                let from = hour0 + (q % hours) as i64 * HOUR_NS;
                format!(
                    "SELECT ts, value, quality FROM samples WHERE tag = {} AND ts >= {} AND ts < {}",
                    sql_literal::string(tag),
                    sql_literal::timestamp(from),
                    sql_literal::timestamp(from + HOUR_NS)
                )
            }),
            values_per_row: None,
        },
        Spec {
            name: "interpolated, 100 tags x 7 d at 1 min",
            needs: &["history_interpolated"],
            runs: heavy,
            detail: None,
            sql: Box::new(move |_| {
                format!(
                    "SELECT * FROM history_interpolated({hundred}, {}, {}, '1m')",
                    sql_literal::timestamp(end - 7 * DAY_NS),
                    sql_literal::timestamp(end)
                )
            }),
            values_per_row: None,
        },
        Spec {
            name: "TimeAverage hourly, 100 tags x 30 d",
            needs: &["history_aggregate"],
            runs: heavy,
            detail: None,
            sql: Box::new(move |_| {
                let end = end.div_euclid(HOUR_NS) * HOUR_NS + HOUR_NS;
                format!(
                    "SELECT * FROM history_aggregate({hundred2}, 'TimeAverage', {}, {}, '1h')",
                    sql_literal::timestamp(end - 30 * DAY_NS),
                    sql_literal::timestamp(end)
                )
            }),
            values_per_row: None,
        },
        Spec {
            name: "bulk export (tag, ts, value)",
            needs: &[],
            runs: heavy,
            detail: None,
            sql: Box::new(|_| "SELECT tag, ts, value FROM samples".into()),
            values_per_row: Some(1),
        },
        Spec {
            name: "trace_backward, depth 10",
            needs: &["trace_backward"],
            runs: light,
            detail: None,
            sql: Box::new(move |_| format!("SELECT * FROM trace_backward({lot}, 10)")),
            values_per_row: None,
        },
        Spec {
            name: "genealogy join lot_samples",
            needs: &["trace_backward", "lot_samples"],
            runs: heavy,
            detail: None,
            // The oven temperature of every lot in the backward genealogy of
            // a finished lot (issue 6, test 3).
            sql: Box::new(move |_| {
                format!(
                    "SELECT t.lot, count(*) AS samples, avg(s.value) AS mean \
                     FROM trace_backward({lot2}, 10) t \
                     JOIN lot_samples((SELECT lot FROM trace_backward({lot2}, 10))) s ON s.lot = t.lot \
                     WHERE s.tag LIKE '%.oven.temperature' GROUP BY t.lot"
                )
            }),
            values_per_row: None,
        },
    ]
}

/// Runs the mix; a failing query is reported and the mix goes on.
pub async fn run(args: &BenchArgs, flight: &mut Client) -> Result<Vec<QueryResult>, ClientError> {
    let targets = discover(flight).await?;
    let mut results = Vec::new();
    for spec in mix(args, &targets) {
        let missing: Vec<&str> = spec
            .needs
            .iter()
            .copied()
            .filter(|n| !targets.names.contains(*n))
            .collect();
        if !missing.is_empty() {
            results.push(QueryResult::skipped(spec.name, &missing));
            continue;
        }
        if targets.tags.is_empty() {
            results.push(QueryResult {
                detail: Some("skipped (the server holds no samples)".into()),
                ..QueryResult::skipped(spec.name, &[])
            });
            continue;
        }
        results.push(time_query(flight, &spec).await);
    }
    Ok(results)
}

/// Runs a query and counts its rows as they stream in, keeping no batch:
/// a bulk export of a billion rows must not be held by the bench.
pub(crate) async fn count_rows(flight: &mut Client, sql: &str) -> Result<usize, ClientError> {
    let info = flight
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| ClientError::flight("query failed", e))?;
    let mut rows = 0;
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else {
            continue;
        };
        let fetch = |e| ClientError::flight("fetching results failed", e);
        let mut stream = flight.do_get(ticket).await.map_err(fetch)?;
        while let Some(batch) = stream.try_next().await.map_err(fetch)? {
            rows += batch.num_rows();
        }
    }
    Ok(rows)
}

async fn time_query(flight: &mut Client, spec: &Spec) -> QueryResult {
    let bar = count_bar(spec.runs as u64, spec.name, "runs");
    let mut latencies: Vec<Duration> = Vec::with_capacity(spec.runs);
    let mut rows = 0usize;
    let mut error = None;
    for q in 0..spec.runs {
        let sql = (spec.sql)(q);
        let sent = Instant::now();
        match count_rows(flight, &sql).await {
            Ok(n) => {
                latencies.push(sent.elapsed());
                rows += n;
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let busy: f64 = latencies.iter().map(Duration::as_secs_f64).sum();
    let runs = latencies.len();
    QueryResult {
        name: spec.name.into(),
        status: if error.is_some() {
            Status::Error
        } else {
            Status::Ok
        },
        detail: error.or_else(|| spec.detail.clone()),
        sql: Some((spec.sql)(0)),
        latency: (runs > 0).then(|| Latency::of(latencies)),
        rows_per_run: (runs > 0).then(|| rows as f64 / runs as f64),
        values_per_second: spec
            .values_per_row
            .filter(|_| busy > 0.0)
            .map(|v| (rows * v) as f64 / busy),
    }
}
