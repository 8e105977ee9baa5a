//! Physical planning of `GapFill`: evaluates the interval, origin and WHERE
//! bounds to constants, works out the buckets, refuses more buckets than
//! the row limit allows, and builds a [`GapFillExec`].

use std::sync::Arc;

use arrow::datatypes::{IntervalDayTimeType, IntervalMonthDayNanoType};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result, ScalarValue, internal_err, plan_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use super::exec::GapFillExec;
use super::fill::{Buckets, FillSpec};
use super::node::{GapFill, TimeBound};

const NANOS_PER_DAY: i128 = 86_400_000_000_000;

/// Plans `GapFill` nodes; `max_rows` caps the rows one gap-filling query returns.
#[derive(Debug)]
pub struct GapFillPlanner {
    pub max_rows: u64,
}

#[async_trait]
impl ExtensionPlanner for GapFillPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(gap_fill) = node.as_any().downcast_ref::<GapFill>() else {
            return Ok(None);
        };
        let ([logical_input], [physical_input]) = (logical_inputs, physical_inputs) else {
            return internal_err!("GapFill has one input");
        };
        let constants = Constants {
            planner,
            session,
            planning_ctx,
        };
        let buckets = buckets_of(gap_fill, &constants)?;
        if buckets.count > self.max_rows {
            return plan_err!(
                "date_bin_gapfill would make {} buckets per series, more than the limit of {} \
                 rows (max_history_intervals); narrow the time range or use a longer interval",
                buckets.count,
                self.max_rows
            );
        }
        let input_schema = logical_input.schema();
        let index_of = |expr: &Expr| match expr {
            Expr::Column(column) => input_schema.index_of_column(column),
            other => internal_err!("GapFill expects column references, got {other}"),
        };
        let spec = FillSpec {
            series: gap_fill
                .series
                .iter()
                .map(index_of)
                .collect::<Result<_>>()?,
            time: index_of(&gap_fill.buckets.time)?,
            buckets,
            aggregates: gap_fill
                .aggregates
                .iter()
                .map(|a| Ok((index_of(&a.column)?, a.gap_value.clone())))
                .collect::<Result<_>>()?,
            filled: gap_fill
                .filled
                .iter()
                .map(|f| Ok((index_of(&f.source)?, f.strategy)))
                .collect::<Result<_>>()?,
        };
        let schema = Arc::new(gap_fill.schema().as_arrow().clone());
        let exec = GapFillExec::try_new(physical_input.clone(), spec, schema, self.max_rows)?;
        Ok(Some(Arc::new(exec)))
    }
}

/// Evaluates expressions without columns (literals, casts, `now()`) to values.
struct Constants<'a> {
    planner: &'a dyn PhysicalPlanner,
    session: &'a dyn Session,
    planning_ctx: &'a PhysicalPlanningContext,
}

impl Constants<'_> {
    fn evaluate(&self, expr: &Expr) -> Result<ScalarValue> {
        let empty = DFSchema::empty();
        let physical =
            self.planner
                .create_physical_expr(expr, &empty, self.session, self.planning_ctx)?;
        let one_row = arrow::array::RecordBatch::try_new_with_options(
            Arc::new(empty.as_arrow().clone()),
            vec![],
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        match physical.evaluate(&one_row)? {
            ColumnarValue::Scalar(value) => Ok(value),
            ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0),
        }
    }

    /// A timestamp in nanoseconds since the epoch, whatever its unit.
    fn timestamp_ns(&self, expr: &Expr, what: &str) -> Result<i64> {
        let value = self.evaluate(expr)?;
        let nanos = match value {
            ScalarValue::TimestampNanosecond(Some(v), _) => Some(v),
            ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
            other => {
                return plan_err!("date_bin_gapfill: {what} {expr} is not a timestamp ({other:?})");
            }
        };
        match nanos {
            Some(nanos) => Ok(nanos),
            None => plan_err!("date_bin_gapfill: {what} {expr} is out of the timestamp range"),
        }
    }

    /// A fixed-length interval in nanoseconds (months have no fixed length).
    fn interval_ns(&self, expr: &Expr) -> Result<i64> {
        let nanos = match self.evaluate(expr)? {
            ScalarValue::IntervalMonthDayNano(Some(v)) => {
                let (months, days, nanos) = IntervalMonthDayNanoType::to_parts(v);
                if months != 0 {
                    return plan_err!(
                        "date_bin_gapfill does not support intervals in months or years; \
                         use days, hours, minutes or seconds"
                    );
                }
                i128::from(days) * NANOS_PER_DAY + i128::from(nanos)
            }
            ScalarValue::IntervalDayTime(Some(v)) => {
                let (days, millis) = IntervalDayTimeType::to_parts(v);
                i128::from(days) * NANOS_PER_DAY + i128::from(millis) * 1_000_000
            }
            other => {
                return plan_err!(
                    "date_bin_gapfill's interval {expr} is not an interval ({other:?})"
                );
            }
        };
        match i64::try_from(nanos) {
            Ok(nanos) if nanos > 0 => Ok(nanos),
            _ => plan_err!("date_bin_gapfill needs a positive interval, got {expr}"),
        }
    }
}

/// The buckets from the tightest lower and upper WHERE bounds.
fn buckets_of(gap_fill: &GapFill, constants: &Constants) -> Result<Buckets> {
    let spec = &gap_fill.buckets;
    let stride = constants.interval_ns(&spec.stride)?;
    let origin = match &spec.origin {
        Some(origin) => constants.timestamp_ns(origin, "origin")?,
        None => 0,
    };
    if spec.lower.is_empty() || spec.upper.is_empty() {
        return internal_err!("GapFill without time bounds");
    }
    // The first and last instants the bounds let through: an exclusive
    // bound moves one nanosecond inward.
    let instant = |bound: &TimeBound, what: &str, inward: i64| -> Result<i64> {
        let value = constants.timestamp_ns(&bound.expr, what)?;
        Ok(if bound.inclusive {
            value
        } else {
            value.saturating_add(inward)
        })
    };
    let (mut first, mut last) = (i64::MIN, i64::MAX);
    for bound in &spec.lower {
        first = first.max(instant(bound, "lower bound", 1)?);
    }
    for bound in &spec.upper {
        last = last.min(instant(bound, "upper bound", -1)?);
    }
    Buckets::covering(first, last, stride, origin)
}

/// DataFusion's planner with the gap-filling extension.
#[derive(Debug)]
pub struct GapFillQueryPlanner {
    pub max_rows: u64,
}

#[async_trait]
impl QueryPlanner for GapFillQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner =
            DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(GapFillPlanner {
                max_rows: self.max_rows,
            })]);
        planner.create_physical_plan(logical_plan, session).await
    }
}
