//! Historian retrieval in SQL: the table functions
//! `history_interpolated(tags, start, end, interval)` and
//! `history_aggregate(tags, aggregate, start, end, interval)`.
//!
//! Arguments are constant-folded by DataFusion before they reach us: `tags`
//! is a string or an array of strings, `start`/`end` a TIMESTAMP or an
//! RFC 3339 string, `interval` an INTERVAL or a string such as '5s', '1m'.
//! Each call reads the raw samples of its tags around the window (through
//! SQL on `samples`, so segment pruning applies), the per-tag Part 13 settings
//! from `tags`, and runs the kernels of [`super::historian`].

use super::sql_literal;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float64Builder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampNanosecondType, UInt32Type,
};
use async_trait::async_trait;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::Expr;

use super::computed::{ComputeRows, ComputedTable};
use super::historian::{self, Aggregate, Config, Output, RawPoint, Series};
use crate::ingest::Engine;
use crate::model::{self, UTC, is_good};

/// Guards against a typo turning a query into billions of rows.
pub const DEFAULT_MAX_INTERVALS: u64 = 10_000_000;
/// Raw data fetched around the window in one go, before searching further back.
const LOOKAROUND_NS: i64 = 3_600_000_000_000;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

pub(super) fn output_schema(with_actual_ts: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("tag", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("value", DataType::Float64, true),
        Field::new("quality", DataType::UInt32, false),
    ];
    if with_actual_ts {
        fields.push(Field::new("actual_ts", ts_type(), true));
    }
    Arc::new(Schema::new(fields))
}

/// `history_interpolated` (aggregate fixed to Interpolative) or `history_aggregate`.
#[derive(Debug)]
pub struct HistoryFunction {
    engine: Arc<Engine>,
    max_intervals: u64,
    /// `false`: history_interpolated; `true`: history_aggregate.
    takes_aggregate: bool,
}

impl HistoryFunction {
    pub fn interpolated(engine: Arc<Engine>, max_intervals: u64) -> Self {
        Self {
            engine,
            max_intervals,
            takes_aggregate: false,
        }
    }

    pub fn aggregate(engine: Arc<Engine>, max_intervals: u64) -> Self {
        Self {
            engine,
            max_intervals,
            takes_aggregate: true,
        }
    }

    fn usage(&self) -> &'static str {
        if self.takes_aggregate {
            "history_aggregate(tags, aggregate, start, end, interval)"
        } else {
            "history_interpolated(tags, start, end, interval)"
        }
    }
}

impl TableFunctionImpl for HistoryFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let usage = self.usage();
        let expected = if self.takes_aggregate { 5 } else { 4 };
        if exprs.len() != expected {
            return plan_err!(
                "{usage}: expected {expected} arguments, got {}",
                exprs.len()
            );
        }
        let tags = string_list(&exprs[0], usage, "tag")?;
        let rest = if self.takes_aggregate {
            &exprs[2..]
        } else {
            &exprs[1..]
        };
        let aggregate = if self.takes_aggregate {
            let name = string_arg(&exprs[1]).ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "{usage}: the aggregate must be a string such as 'TimeAverage'"
                ))
            })?;
            Aggregate::parse(&name).ok_or_else(|| {
                let valid: Vec<&str> = Aggregate::all().iter().map(Aggregate::name).collect();
                DataFusionError::Plan(format!(
                    "unknown aggregate '{name}'; valid aggregates: {}",
                    valid.join(", ")
                ))
            })?
        } else {
            Aggregate::Interpolative
        };
        let start = time_arg(&rest[0], "start", usage)?;
        let end = time_arg(&rest[1], "end", usage)?;
        let interval = interval_arg(&rest[2], usage)?;
        if end <= start {
            return plan_err!(
                "{usage}: end ({}) must be after start ({})",
                fmt_ns(end),
                fmt_ns(start)
            );
        }
        let intervals = ((end - start) as u64).div_ceil(interval as u64);
        let total = intervals.saturating_mul(tags.len() as u64);
        if total > self.max_intervals {
            return plan_err!(
                "{usage}: {} tag(s) x {intervals} intervals = {total} rows exceeds the limit of {} \
                 (max_history_intervals); use a longer interval or a shorter window",
                tags.len(),
                self.max_intervals
            );
        }
        Ok(ComputedTable::provider(HistoryTable {
            engine: self.engine.clone(),
            tags,
            aggregate,
            start,
            end,
            interval,
            schema: output_schema(self.takes_aggregate),
        }))
    }
}

fn fmt_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub(super) fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

pub(super) fn string_arg(expr: &Expr) -> Option<String> {
    match literal(expr)? {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A string or an array of strings (`noun` names them in errors), deduplicated
/// where repeated in a row.
pub(super) fn string_list(expr: &Expr, usage: &str, noun: &str) -> DfResult<Vec<String>> {
    if let Some(tag) = string_arg(expr) {
        return Ok(vec![tag]);
    }
    let list = match literal(expr) {
        Some(ScalarValue::List(list)) => list.value(0),
        Some(ScalarValue::LargeList(list)) => list.value(0),
        Some(ScalarValue::FixedSizeList(list)) => list.value(0),
        _ => {
            return plan_err!(
                "{usage}: {noun}s must be a {noun} name or an array of {noun} names, got {expr}"
            );
        }
    };
    let strings = arrow::compute::cast(&list, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    let mut tags: Vec<String> = strings.iter().flatten().map(str::to_string).collect();
    tags.dedup();
    if tags.is_empty() {
        return plan_err!("{usage}: the {noun} list is empty");
    }
    Ok(tags)
}

fn time_arg(expr: &Expr, name: &str, usage: &str) -> DfResult<i64> {
    let ns = match literal(expr) {
        Some(ScalarValue::TimestampNanosecond(Some(v), _)) => Some(*v),
        Some(ScalarValue::TimestampMicrosecond(Some(v), _)) => v.checked_mul(1_000),
        Some(ScalarValue::TimestampMillisecond(Some(v), _)) => v.checked_mul(1_000_000),
        Some(ScalarValue::TimestampSecond(Some(v), _)) => v.checked_mul(1_000_000_000),
        _ => string_arg(expr).and_then(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
        }),
    };
    ns.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{usage}: {name} must be a TIMESTAMP or an RFC 3339 string such as '2026-01-01T08:00:00Z', got {expr}"
        ))
    })
}

/// Parses '250ms', '5s', '1m', '2h', '1d' (also '1 minute' forms via INTERVAL).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_ns = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "sec" | "second" | "seconds" => 1e9,
        "m" | "min" | "minute" | "minutes" => 60e9,
        "h" | "hour" | "hours" => 3600e9,
        "d" | "day" | "days" => 86_400e9,
        _ => return None,
    };
    let ns = number * unit_ns;
    (ns.is_finite() && ns < i64::MAX as f64).then_some(ns.round() as i64)
}

fn interval_arg(expr: &Expr, usage: &str) -> DfResult<i64> {
    let ns = match literal(expr) {
        Some(ScalarValue::IntervalMonthDayNano(Some(v))) if v.months == 0 => {
            Some(v.days as i64 * 86_400_000_000_000 + v.nanoseconds)
        }
        Some(ScalarValue::IntervalDayTime(Some(v))) => {
            Some(v.days as i64 * 86_400_000_000_000 + v.milliseconds as i64 * 1_000_000)
        }
        Some(ScalarValue::DurationNanosecond(Some(v))) => Some(*v),
        _ => string_arg(expr).and_then(|s| parse_duration(&s)),
    };
    match ns {
        Some(ns) if ns > 0 => Ok(ns),
        Some(_) => plan_err!("{usage}: the interval must be positive, got {expr}"),
        None => plan_err!(
            "{usage}: the interval must be an INTERVAL without months or a string such as '5s', '1m', '1h', got {expr}"
        ),
    }
}

#[derive(Debug)]
struct HistoryTable {
    engine: Arc<Engine>,
    tags: Vec<String>,
    aggregate: Aggregate,
    start: i64,
    end: i64,
    interval: i64,
    schema: SchemaRef,
}

#[async_trait]
impl ComputeRows for HistoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn compute(&self) -> DfResult<RecordBatch> {
        let configs = tag_configs(&self.engine, &self.tags).await?;
        let mut windows = fetch_windows(&self.engine, &self.tags, self.start, self.end).await?;
        let mut outputs: Vec<(&str, Vec<Output>)> = Vec::with_capacity(self.tags.len());
        for tag in &self.tags {
            let window = windows.remove(tag.as_str()).unwrap_or_default();
            let fetched = fetch_series(&self.engine, tag, window, self.start, self.end).await?;
            let config = configs.get(tag).copied();
            if fetched.points.is_empty() && config.is_none() {
                return plan_err!("unknown tag '{tag}': it has no samples and no row in tags");
            }
            let series = Series {
                points: &fetched.points,
                data_starts_at_first: fetched.starts_at_first,
                data_ends_at_last: fetched.ends_at_last,
            };
            let config = config.unwrap_or_default();
            outputs.push((
                tag,
                historian::aggregate(
                    self.aggregate,
                    &series,
                    self.start,
                    self.end,
                    self.interval,
                    &config,
                ),
            ));
        }
        to_batch(&self.schema, &outputs)
    }
}

fn to_batch(schema: &SchemaRef, outputs: &[(&str, Vec<Output>)]) -> DfResult<RecordBatch> {
    let rows: usize = outputs.iter().map(|(_, o)| o.len()).sum();
    let mut tag = StringBuilder::with_capacity(rows, rows * 16);
    let mut ts = TimestampNanosecondBuilder::with_capacity(rows).with_timezone(UTC);
    let mut value = Float64Builder::with_capacity(rows);
    let mut quality = UInt32Builder::with_capacity(rows);
    let mut actual = TimestampNanosecondBuilder::with_capacity(rows).with_timezone(UTC);
    for (name, rows) in outputs {
        for o in rows {
            tag.append_value(name);
            ts.append_value(o.ts);
            value.append_option(o.value);
            quality.append_value(o.status);
            actual.append_option(o.actual_ts);
        }
    }
    let mut columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(tag.finish()),
        Arc::new(ts.finish()),
        Arc::new(value.finish()),
        Arc::new(quality.finish()),
    ];
    if schema.fields().len() == 5 {
        columns.push(Arc::new(actual.finish()));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

async fn run(engine: &Arc<Engine>, sql: &str) -> DfResult<Vec<RecordBatch>> {
    super::session(engine).sql(sql).await?.collect().await
}

/// Per-tag Part 13 settings from `tags`; defaults for missing columns.
async fn tag_configs(engine: &Arc<Engine>, tags: &[String]) -> DfResult<HashMap<String, Config>> {
    let list = tags
        .iter()
        .map(|t| sql_literal::string(t))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT tag, interpolation, treat_uncertain_as_bad, percent_data_good, percent_data_bad, \
         use_sloped_extrapolation, value_type FROM tags WHERE tag IN ({list})"
    );
    let defaults = Config::default();
    let mut configs = HashMap::new();
    for batch in run(engine, &sql).await? {
        let tag = batch.column(0).as_string::<i32>();
        let interpolation = batch.column(1).as_string::<i32>();
        let uncertain_bad = batch.column(2).as_boolean();
        let good = batch
            .column(3)
            .as_primitive::<arrow::datatypes::UInt8Type>();
        let bad = batch
            .column(4)
            .as_primitive::<arrow::datatypes::UInt8Type>();
        let sloped = batch.column(5).as_boolean();
        let value_type = batch.column(6).as_string::<i32>();
        for i in 0..batch.num_rows() {
            let config = Config {
                // Booleans are always stepped (Part 13 A.1.4); otherwise the tag says.
                stepped: value_type.is_valid(i) && value_type.value(i) == "bool"
                    || interpolation.is_valid(i) && interpolation.value(i) == "step"
                    || defaults.stepped && interpolation.is_null(i),
                treat_uncertain_as_bad: uncertain_bad
                    .is_valid(i)
                    .then(|| uncertain_bad.value(i))
                    .unwrap_or(defaults.treat_uncertain_as_bad),
                percent_data_good: good
                    .is_valid(i)
                    .then(|| good.value(i))
                    .unwrap_or(defaults.percent_data_good),
                percent_data_bad: bad
                    .is_valid(i)
                    .then(|| bad.value(i))
                    .unwrap_or(defaults.percent_data_bad),
                use_sloped_extrapolation: sloped
                    .is_valid(i)
                    .then(|| sloped.value(i))
                    .unwrap_or(defaults.use_sloped_extrapolation),
            };
            configs.insert(tag.value(i).to_string(), config);
        }
    }
    Ok(configs)
}

/// The raw points of one tag around a window, as [`Series`] needs them.
struct Fetched {
    points: Vec<RawPoint>,
    starts_at_first: bool,
    ends_at_last: bool,
}

fn points_of(batches: &[RecordBatch]) -> Vec<RawPoint> {
    let mut points = Vec::new();
    for batch in batches {
        let ts = batch.column(0).as_primitive::<TimestampNanosecondType>();
        let value = batch.column(1).as_primitive::<Float64Type>();
        let quality = batch.column(2).as_primitive::<UInt32Type>();
        for i in 0..batch.num_rows() {
            points.push(RawPoint {
                ts: ts.value(i),
                value: value.is_valid(i).then(|| value.value(i)),
                status: quality.value(i),
            });
        }
    }
    points
}

/// [`usable`] in SQL over `samples`.
const USABLE: &str = "value IS NOT NULL AND quality < 1073741824";

/// Usable samples before `start` in `points` (sorted by time).
fn usable_before(points: &[RawPoint], start: i64) -> usize {
    points
        .iter()
        .take_while(|p| p.ts < start)
        .filter(|p| usable(p))
        .count()
}

/// The first column of `batches` as timestamps (ns).
fn points_of_ts(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

/// A sample that can bound an interval whatever the tag's
/// TreatUncertainAsBad says: a value with Good severity.
fn usable(p: &RawPoint) -> bool {
    p.value.is_some() && is_good(p.status)
}

/// The raw data window [start - LOOKAROUND, end + LOOKAROUND) around the
/// call's time range.
fn window_bounds(start: i64, end: i64) -> (i64, i64) {
    (
        start.saturating_sub(LOOKAROUND_NS),
        end.saturating_add(LOOKAROUND_NS),
    )
}

/// The window's raw points of every tag, in one statement (one scan, one
/// plan) rather than one per tag; each tag's points sorted by time.
async fn fetch_windows(
    engine: &Arc<Engine>,
    tags: &[String],
    start: i64,
    end: i64,
) -> DfResult<HashMap<String, Vec<RawPoint>>> {
    let (lo, hi) = window_bounds(start, end);
    let list = tags
        .iter()
        .map(|t| sql_literal::string(t))
        .collect::<Vec<_>>();
    // No ORDER BY: segments are already sorted by (tag, ts), so sorting each
    // tag's points below is cheaper than a sort of the whole result.
    let sql = format!(
        "SELECT ts, value, quality, tag FROM samples WHERE tag IN ({}) AND ts >= {} AND ts < {}",
        list.join(", "),
        sql_literal::timestamp(lo),
        sql_literal::timestamp(hi)
    );
    let mut windows: HashMap<String, Vec<RawPoint>> = HashMap::new();
    for batch in run(engine, &sql).await? {
        let tag = batch.column(3).as_string::<i32>();
        let points = points_of(std::slice::from_ref(&batch));
        for (i, point) in points.into_iter().enumerate() {
            match windows.get_mut(tag.value(i)) {
                Some(series) => series.push(point),
                None => {
                    windows.insert(tag.value(i).to_string(), vec![point]);
                }
            }
        }
    }
    for series in windows.values_mut() {
        series.sort_by_key(|p| p.ts);
    }
    Ok(windows)
}

/// Completes one tag's window with the bounding values Part 13 needs:
/// searches before the window for two usable values and after it for one.
async fn fetch_series(
    engine: &Arc<Engine>,
    tag: &str,
    window: Vec<RawPoint>,
    start: i64,
    end: i64,
) -> DfResult<Fetched> {
    let tag_sql = sql_literal::string(tag);
    let (lo, hi) = window_bounds(start, end);
    let mut points = window;
    // Two usable values before `start`: one bounds the first interval, two
    // give the slope for sloped extrapolation. Find where the second-last
    // usable one lies (a cheap filtered top-k), then fetch every sample from
    // there, so the kernels see the Bad or Uncertain samples in between. A
    // tag without two usable values gets its whole history before the window.
    let usable_before = usable_before(&points, start);
    let mut starts_at_first = false;
    if usable_before < 2 {
        let sql = format!(
            "SELECT ts FROM samples WHERE tag = {tag_sql} AND ts < {} AND {USABLE} ORDER BY ts DESC LIMIT {}",
            sql_literal::timestamp(lo),
            2 - usable_before
        );
        let found = points_of_ts(&run(engine, &sql).await?);
        let from = match found.get(1 - usable_before) {
            Some(&ts) => format!("ts >= {} AND ", sql_literal::timestamp(ts)),
            None => {
                starts_at_first = true;
                String::new()
            }
        };
        let sql = format!(
            "SELECT ts, value, quality FROM samples WHERE tag = {tag_sql} AND {from}ts < {}",
            sql_literal::timestamp(lo)
        );
        let mut earlier = points_of(&run(engine, &sql).await?);
        earlier.sort_by_key(|p| p.ts);
        earlier.append(&mut points);
        points = earlier;
    }
    // And one usable value at or after `end`, unless the last-value cache
    // says the tag has nothing at or after `hi` (the usual "up to now" query).
    let newest = engine.newest_ts(model::samples(), tag);
    let mut ends_at_last = newest.is_none_or(|ts| ts < hi);
    if !ends_at_last && !points.iter().any(|p| p.ts >= end && usable(p)) {
        let sql = format!(
            "SELECT ts FROM samples WHERE tag = {tag_sql} AND ts >= {} AND {USABLE} ORDER BY ts LIMIT 1",
            sql_literal::timestamp(hi)
        );
        let until = match points_of_ts(&run(engine, &sql).await?).first() {
            Some(&ts) => format!(" AND ts <= {}", sql_literal::timestamp(ts)),
            None => {
                ends_at_last = true;
                String::new()
            }
        };
        let sql = format!(
            "SELECT ts, value, quality FROM samples WHERE tag = {tag_sql} AND ts >= {}{until}",
            sql_literal::timestamp(hi)
        );
        let mut later = points_of(&run(engine, &sql).await?);
        later.sort_by_key(|p| p.ts);
        points.extend(later);
    }
    // One value per timestamp (the contract of the kernels).
    points.dedup_by_key(|p| p.ts);
    debug_assert!(points.windows(2).all(|w| w[0].ts < w[1].ts));
    Ok(Fetched {
        points,
        starts_at_first,
        ends_at_last,
    })
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_MAX_INTERVALS, parse_duration};

    #[test]
    fn sql_docs_state_the_default_limit() {
        let docs = include_str!("../../docs/SQL.md");
        let flag = "`--max-history-intervals`";
        let stated: Vec<u64> = docs
            .match_indices(flag)
            .map(|(at, _)| {
                let after = &docs[at + flag.len()..];
                let number = &after[after.find("default ").expect("a default") + 8..];
                let digits: String = number
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == ' ')
                    .filter(char::is_ascii_digit)
                    .collect();
                digits.parse().expect("a number")
            })
            .collect();
        assert!(!stated.is_empty());
        assert!(
            stated.iter().all(|&n| n == DEFAULT_MAX_INTERVALS),
            "{stated:?}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1m"), Some(60_000_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("2 days"), Some(172_800_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3 fortnights"), None);
    }
}
