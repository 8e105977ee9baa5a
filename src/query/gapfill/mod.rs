//! Gap filling as InfluxDB 3 (IOx) users know it:
//!
//! ```sql
//! SELECT date_bin_gapfill(INTERVAL '1 minute', ts) AS minute, tag,
//!        avg(value) AS v, locf(avg(value)) AS v_locf, interpolate(avg(value)) AS v_interp
//! FROM samples
//! WHERE tag IN ('a', 'b')
//!   AND ts >= TIMESTAMP '2026-01-01T00:00:00Z' AND ts < TIMESTAMP '2026-01-01T01:00:00Z'
//! GROUP BY 1, tag ORDER BY tag, minute;
//! ```
//!
//! Every bucket from the one holding the WHERE clause's lower time bound
//! (aligned to `date_bin`'s origin, the epoch unless a third argument says
//! otherwise) up to the upper bound appears once for every series (the other
//! GROUP BY columns). Buckets without rows have null aggregates (0 for
//! `count`); `locf(agg)` carries the last non-null value forward and
//! `interpolate(agg)` puts missing values on the line between the non-null
//! buckets around them, without extrapolating. Both also fill buckets whose
//! aggregate is null.
//!
//! How it works, one concern per file:
//! - [`functions`]: the marker UDFs the SQL planner resolves;
//! - [`rule`]: the analyzer rule rewriting `Aggregate(date_bin_gapfill)` into
//!   `GapFill(Aggregate(date_bin))` and fill calls into fill columns;
//! - [`node`]: the `GapFill` logical node;
//! - [`planner`]: its physical planning (bounds and interval to buckets);
//! - [`exec`]: `GapFillExec`, which streams the input series by series;
//! - [`fill`]: filling one series.
//!
//! The rows a query may return are capped by `max_history_intervals`.

pub mod exec;
pub mod fill;
pub mod functions;
pub mod node;
pub mod planner;
pub mod rule;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;

/// Adds gap filling to a session being built: the functions, the analyzer
/// rule and the planner. `max_rows` caps the rows of one gap-filling query.
pub fn enable(mut builder: SessionStateBuilder, max_rows: u64) -> SessionStateBuilder {
    builder
        .scalar_functions()
        .get_or_insert_with(Vec::new)
        .extend(functions::all());
    builder
        .with_analyzer_rule(Arc::new(rule::HandleGapFill))
        .with_query_planner(Arc::new(planner::GapFillQueryPlanner { max_rows }))
}

#[cfg(test)]
mod tests;
