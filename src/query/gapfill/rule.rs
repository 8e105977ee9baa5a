//! The analyzer rule that turns a gap-filling query into a plan.
//!
//! ```text
//! Projection: tag, minute, locf(avg(value)), interpolate(avg(value))
//!   Aggregate: groupBy=[date_bin_gapfill(1 minute, ts) AS minute, tag], aggr=[avg(value)]
//!     Filter: ts >= A AND ts < B AND ...
//! ```
//! becomes
//! ```text
//! Projection: tag, minute, "locf(avg(value))", "interpolate(avg(value))"
//!   GapFill: series=[tag], time=minute, range=[>=A, <B], fills=[locf(avg), interpolate(avg)]
//!     Aggregate: groupBy=[date_bin(1 minute, ts) AS minute, tag], aggr=[avg(value)]
//!       Filter: ...
//! ```
//! It is an analyzer rule (it runs once, after type coercion, before the
//! optimizer) because the marker functions must be gone before anything tries
//! to evaluate them, and because the WHERE clause is still a `Filter` right
//! below the aggregate. Every marker the rule cannot place is a planning error.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{
    Column, DFSchema, ExprSchema, Result, ScalarValue, plan_datafusion_err, plan_err,
};
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, Between, BinaryExpr, Cast, Expr, Extension, Filter, LogicalPlan, Operator,
    Projection, TryCast,
};
use datafusion::optimizer::AnalyzerRule;

use super::functions::{FillStrategy, Marker, marker_of};
use super::node::{AggregateColumn, BucketSpec, FilledColumn, GapFill, TimeBound};

#[derive(Debug, Default)]
pub struct HandleGapFill;

impl AnalyzerRule for HandleGapFill {
    fn name(&self) -> &str {
        "handle_gap_fill"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite_node)
            .map(|rewritten| rewritten.data)
    }
}

fn rewrite_node(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let rewritten = match plan {
        LogicalPlan::Aggregate(aggregate) => rewrite_aggregate(aggregate)?,
        LogicalPlan::Projection(projection) => rewrite_projection(projection)?,
        other => Transformed::no(other),
    };
    reject_leftover_markers(&rewritten.data)?;
    Ok(rewritten)
}

/// A marker function call, if `expr` is one.
fn marker_call(expr: &Expr) -> Option<(Marker, &ScalarFunction)> {
    match expr {
        Expr::ScalarFunction(call) => marker_of(&call.func).map(|marker| (marker, call)),
        _ => None,
    }
}

fn contains_date_bin_gapfill(expr: &Expr) -> Result<bool> {
    expr.exists(|e| Ok(matches!(marker_call(e), Some((Marker::DateBinGapfill, _)))))
}

/// Markers that survive the rewrite are used where they mean nothing.
fn reject_leftover_markers(plan: &LogicalPlan) -> Result<()> {
    for expr in plan.expressions() {
        expr.apply(|e| match marker_call(e) {
            Some((Marker::DateBinGapfill, _)) => plan_err!(
                "date_bin_gapfill(interval, ts) can only be used as a GROUP BY expression \
                 of an aggregate query, e.g. SELECT date_bin_gapfill(INTERVAL '1 minute', ts) \
                 AS minute, avg(value) FROM samples WHERE ... GROUP BY 1"
            ),
            Some((Marker::Fill(strategy), _)) => plan_err!(
                "{}() can only be used on an aggregate in the SELECT list of a query that \
                 groups by date_bin_gapfill(interval, ts), e.g. {}(avg(value))",
                strategy.function_name(),
                strategy.function_name()
            ),
            None => Ok(TreeNodeRecursion::Continue),
        })?;
    }
    Ok(())
}

fn unalias(mut expr: &Expr) -> &Expr {
    while let Expr::Alias(alias) = expr {
        expr = &alias.expr;
    }
    expr
}

/// `Aggregate(date_bin_gapfill)` → `GapFill(Aggregate(date_bin))`.
fn rewrite_aggregate(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let mut positions = Vec::new();
    for (index, expr) in aggregate.group_expr.iter().enumerate() {
        if contains_date_bin_gapfill(expr)? {
            positions.push(index);
        }
    }
    let bucket_index = match positions.as_slice() {
        [] => return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate))),
        [index] => *index,
        _ => return plan_err!("date_bin_gapfill can appear only once in GROUP BY"),
    };
    let original = &aggregate.group_expr[bucket_index];
    let Some((Marker::DateBinGapfill, call)) = marker_call(unalias(original)) else {
        return plan_err!(
            "date_bin_gapfill must be a GROUP BY expression of its own, not part of {original}"
        );
    };
    let args = call.args.clone();
    let (stride, time_arg, origin) = match args.as_slice() {
        [stride, time] => (stride.clone(), time, None),
        [stride, time, origin] => (stride.clone(), time, Some(origin.clone())),
        _ => return plan_err!("date_bin_gapfill expects (interval, ts [, origin])"),
    };
    if !is_constant(&stride)? || !origin.as_ref().map_or(Ok(true), is_constant)? {
        return plan_err!("date_bin_gapfill's interval and origin must be constants");
    }
    let Some(time_column) = time_column_of(time_arg) else {
        return plan_err!(
            "date_bin_gapfill needs a time column as its second argument, got {time_arg}"
        );
    };
    let range = find_time_range(&aggregate.input, time_column)?;
    if range.lower.is_empty() || range.upper.is_empty() {
        let missing = match (range.lower.is_empty(), range.upper.is_empty()) {
            (true, true) => "both are missing",
            (true, false) => "the lower bound is missing",
            _ => "the upper bound is missing",
        };
        let ts = &time_column.name;
        return plan_err!(
            "date_bin_gapfill requires a WHERE clause with lower and upper bounds on {ts} \
             ({missing}), e.g. WHERE {ts} >= TIMESTAMP '2026-01-01T00:00:00Z' AND {ts} < \
             TIMESTAMP '2026-01-01T01:00:00Z'"
        );
    }

    // date_bin under the original name, so the aggregate's schema is unchanged.
    let name = original.schema_name().to_string();
    let date_bin = Expr::ScalarFunction(ScalarFunction::new_udf(
        datafusion::functions::datetime::date_bin(),
        args,
    ))
    .alias(name);
    let mut group_expr = aggregate.group_expr.clone();
    group_expr[bucket_index] = date_bin;
    let schema = aggregate.schema.clone();
    let group_count = group_expr.len();
    let aggregates = aggregate
        .aggr_expr
        .iter()
        .enumerate()
        .map(|(offset, expr)| {
            let (qualifier, field) = schema.qualified_field(group_count + offset);
            Ok(AggregateColumn {
                column: Expr::Column(Column::from((qualifier, field))),
                gap_value: gap_value_of(expr, field.data_type())?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let new_aggregate = Aggregate::try_new_with_schema(
        aggregate.input,
        group_expr,
        aggregate.aggr_expr,
        schema.clone(),
    )?;
    let group_column = |index: usize| Expr::Column(Column::from(schema.qualified_field(index)));
    let series = (0..group_count)
        .filter(|&index| index != bucket_index)
        .map(group_column)
        .collect();
    let buckets = BucketSpec {
        time: group_column(bucket_index),
        stride,
        origin,
        lower: range.lower,
        upper: range.upper,
    };
    let gap_fill = GapFill::try_new(
        Arc::new(LogicalPlan::Aggregate(new_aggregate)),
        series,
        buckets,
        aggregates,
        Vec::new(),
    )?;
    Ok(Transformed::yes(LogicalPlan::Extension(Extension {
        node: Arc::new(gap_fill),
    })))
}

/// What an aggregate is in a bucket without rows: its value over no rows
/// (0 for `count`), which is null for most.
fn gap_value_of(expr: &Expr, data_type: &DataType) -> Result<ScalarValue> {
    match unalias(expr) {
        Expr::AggregateFunction(AggregateFunction { func, .. }) => {
            func.default_value(data_type)?.cast_to(data_type)
        }
        _ => ScalarValue::try_from(data_type),
    }
}

/// The column under `date_bin_gapfill`'s time argument (through casts).
fn time_column_of(expr: &Expr) -> Option<&Column> {
    match unalias(expr) {
        Expr::Column(column) => Some(column),
        Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. }) => time_column_of(expr),
        _ => None,
    }
}

/// Whether `expr` can be evaluated once at planning time.
fn is_constant(expr: &Expr) -> Result<bool> {
    let refers_elsewhere = expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::Column(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
        ))
    })?;
    Ok(!refers_elsewhere && !expr.is_volatile())
}

#[derive(Debug, Default)]
struct TimeRange {
    lower: Vec<TimeBound>,
    upper: Vec<TimeBound>,
}

impl TimeRange {
    /// Records `conjunct` if it bounds `time` by a constant.
    fn add(&mut self, conjunct: &Expr, time: &Column, schema: &DFSchema) -> Result<()> {
        let is_time = |e: &Expr| refers_to_column(e, time, schema);
        match conjunct {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, bound) = if is_time(left) && is_constant(right)? {
                    (*op, right.as_ref())
                } else if is_time(right) && is_constant(left)? {
                    match op.swap() {
                        Some(swapped) => (swapped, left.as_ref()),
                        None => return Ok(()),
                    }
                } else {
                    return Ok(());
                };
                let bound = |inclusive| TimeBound {
                    expr: bound.clone(),
                    inclusive,
                };
                match op {
                    Operator::Lt => self.upper.push(bound(false)),
                    Operator::LtEq => self.upper.push(bound(true)),
                    Operator::Gt => self.lower.push(bound(false)),
                    Operator::GtEq => self.lower.push(bound(true)),
                    Operator::Eq => {
                        self.lower.push(bound(true));
                        self.upper.push(bound(true));
                    }
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_time(expr) && is_constant(low)? && is_constant(high)? => {
                let inclusive = |expr: &Expr| TimeBound {
                    expr: expr.clone(),
                    inclusive: true,
                };
                self.lower.push(inclusive(low));
                self.upper.push(inclusive(high));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether `expr` is `column` (of `schema`), possibly cast to another timestamp type.
fn refers_to_column(expr: &Expr, column: &Column, schema: &DFSchema) -> bool {
    match unalias(expr) {
        Expr::Column(c) => {
            let index = schema.maybe_index_of_column(c);
            index.is_some() && index == schema.maybe_index_of_column(column)
        }
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if matches!(field.data_type(), DataType::Timestamp(_, _)) =>
        {
            refers_to_column(expr, column, schema)
        }
        _ => false,
    }
}

/// The constant bounds on `time` in the filters below an aggregate, following
/// the column through projections and subquery aliases.
fn find_time_range(plan: &LogicalPlan, time: &Column) -> Result<TimeRange> {
    let mut range = TimeRange::default();
    let mut plan = plan;
    let mut time = time.clone();
    loop {
        match plan {
            LogicalPlan::Filter(filter) => {
                for conjunct in split_conjunction(&filter.predicate) {
                    range.add(conjunct, &time, filter.input.schema())?;
                }
                plan = &filter.input;
            }
            LogicalPlan::Projection(projection) => {
                let Some(index) = projection.schema.maybe_index_of_column(&time) else {
                    break;
                };
                let Expr::Column(below) = unalias(&projection.expr[index]) else {
                    break;
                };
                time = below.clone();
                plan = &projection.input;
            }
            LogicalPlan::SubqueryAlias(alias) => {
                let Some(index) = alias.schema.maybe_index_of_column(&time) else {
                    break;
                };
                time = Column::from(alias.input.schema().qualified_field(index));
                plan = &alias.input;
            }
            // Rows are only dropped or reordered: bounds below still hold.
            LogicalPlan::Sort(sort) => plan = &sort.input,
            LogicalPlan::Limit(limit) => plan = &limit.input,
            LogicalPlan::Repartition(repartition) => plan = &repartition.input,
            _ => break,
        }
    }
    Ok(range)
}

/// The `GapFill` at `plan` or below it through HAVING filters.
fn find_gap_fill(plan: &LogicalPlan) -> Option<&GapFill> {
    match plan {
        LogicalPlan::Extension(Extension { node }) => node.as_any().downcast_ref::<GapFill>(),
        LogicalPlan::Filter(filter) => find_gap_fill(&filter.input),
        _ => None,
    }
}

/// `plan` with its `GapFill` (see [`find_gap_fill`]) replaced by `gap_fill`.
fn replace_gap_fill(plan: &LogicalPlan, gap_fill: GapFill) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::Filter(filter) => Ok(LogicalPlan::Filter(Filter::try_new(
            filter.predicate.clone(),
            Arc::new(replace_gap_fill(&filter.input, gap_fill)?),
        )?)),
        _ => Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(gap_fill),
        })),
    }
}

/// `locf(agg)` / `interpolate(agg)` in the projection over a `GapFill` become
/// references to fill columns that the `GapFill` adds.
fn rewrite_projection(projection: Projection) -> Result<Transformed<LogicalPlan>> {
    let Some(gap_fill) = find_gap_fill(&projection.input) else {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    };
    let mut requested = Vec::new();
    let exprs = projection
        .expr
        .iter()
        .map(|expr| {
            expr.clone()
                .transform_up(|e| fill_call_to_column(e, gap_fill, &mut requested))
                .map(|rewritten| rewritten.data)
        })
        .collect::<Result<Vec<_>>>()?;
    if requested.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    }
    let input = replace_gap_fill(&projection.input, gap_fill.with_filled(requested)?)?;
    let projection = Projection::try_new(exprs, Arc::new(input))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

fn fill_call_to_column(
    expr: Expr,
    gap_fill: &GapFill,
    requested: &mut Vec<FilledColumn>,
) -> Result<Transformed<Expr>> {
    let Some((Marker::Fill(strategy), call)) = marker_call(&expr) else {
        return Ok(Transformed::no(expr));
    };
    let function = strategy.function_name();
    let source = match call.args.as_slice() {
        [Expr::Column(column)] if gap_fill.is_aggregate(column) => column,
        _ => {
            return plan_err!(
                "{function}() must be applied to an aggregate of the query, e.g. \
                 {function}(avg(value)); got {expr}"
            );
        }
    };
    if strategy == FillStrategy::Interpolate {
        let data_type = gap_fill
            .input
            .schema()
            .field_from_column(source)?
            .data_type();
        if !data_type.is_numeric() {
            return Err(plan_datafusion_err!(
                "interpolate() needs a numeric aggregate; {source} is {data_type}"
            ));
        }
    }
    let name = expr.schema_name().to_string();
    requested.push(FilledColumn {
        source: Expr::Column(source.clone()),
        strategy,
        name: name.clone(),
    });
    Ok(Transformed::yes(Expr::Column(Column::from_name(name))))
}
