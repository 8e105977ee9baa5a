//! The `GapFill` logical plan node: sits on an `Aggregate` grouped by
//! `date_bin(...)` (rewritten from `date_bin_gapfill`) and the series
//! columns, and stands for "every bucket of the time range for every series".
//!
//! Its output is the aggregate's columns (aggregates null, or their default
//! such as 0 for `count`, in the buckets that had no rows) followed by one
//! column per distinct `locf(...)` / `interpolate(...)` call of the query,
//! named like the call, so that `locf(avg(v))` and `interpolate(avg(v))` can
//! both be asked of the same aggregate.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::Field;
use datafusion::common::{
    Column, DFSchema, DFSchemaRef, ExprSchema, Result, ScalarValue, internal_err,
};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::functions::FillStrategy;

/// One comparison of the time column with a constant in the WHERE clause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct TimeBound {
    pub expr: Expr,
    pub inclusive: bool,
}

/// An aggregate column and what a bucket without rows gets in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct AggregateColumn {
    pub column: Expr,
    pub gap_value: ScalarValue,
}

/// An output column computed from an aggregate column by a fill function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct FilledColumn {
    pub source: Expr,
    pub strategy: FillStrategy,
    /// The output column's name: the name of the call it replaces.
    pub name: String,
}

/// Where the buckets come from: `date_bin_gapfill`'s arguments and the
/// WHERE clause's bounds on its time column. Bound expressions are kept as
/// expressions (they may be `now() - INTERVAL ...`) and evaluated when the
/// physical plan is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct BucketSpec {
    /// The bucket column of the aggregate's output.
    pub time: Expr,
    pub stride: Expr,
    pub origin: Option<Expr>,
    pub lower: Vec<TimeBound>,
    pub upper: Vec<TimeBound>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GapFill {
    pub input: Arc<LogicalPlan>,
    /// The GROUP BY columns other than the bucket: one series per distinct value.
    pub series: Vec<Expr>,
    pub buckets: BucketSpec,
    pub aggregates: Vec<AggregateColumn>,
    pub filled: Vec<FilledColumn>,
    schema: DFSchemaRef,
}

impl GapFill {
    pub fn try_new(
        input: Arc<LogicalPlan>,
        series: Vec<Expr>,
        buckets: BucketSpec,
        aggregates: Vec<AggregateColumn>,
        filled: Vec<FilledColumn>,
    ) -> Result<Self> {
        let schema = output_schema(&input, &aggregates, &filled)?;
        Ok(Self {
            input,
            series,
            buckets,
            aggregates,
            filled,
            schema,
        })
    }

    /// This node with more fill-function columns (those it has already are kept once).
    pub fn with_filled(&self, more: Vec<FilledColumn>) -> Result<Self> {
        let mut filled = self.filled.clone();
        for column in more {
            if !filled.iter().any(|f| f.name == column.name) {
                filled.push(column);
            }
        }
        Self::try_new(
            self.input.clone(),
            self.series.clone(),
            self.buckets.clone(),
            self.aggregates.clone(),
            filled,
        )
    }

    /// Whether `column` (of this node's input) is one of the aggregates.
    pub fn is_aggregate(&self, column: &Column) -> bool {
        let schema = self.input.schema();
        let Some(index) = schema.maybe_index_of_column(column) else {
            return false;
        };
        self.aggregates.iter().any(|aggregate| {
            matches!(&aggregate.column, Expr::Column(c) if schema.maybe_index_of_column(c) == Some(index))
        })
    }
}

fn output_schema(
    input: &LogicalPlan,
    aggregates: &[AggregateColumn],
    filled: &[FilledColumn],
) -> Result<DFSchemaRef> {
    let input_schema = input.schema();
    let mut fields: Vec<_> = input_schema
        .iter()
        .map(|(qualifier, field)| (qualifier.cloned(), field.clone()))
        .collect();
    for aggregate in aggregates {
        let Expr::Column(column) = &aggregate.column else {
            return internal_err!("GapFill aggregate {} is not a column", aggregate.column);
        };
        let index = input_schema.index_of_column(column)?;
        if aggregate.gap_value.is_null() {
            // Gaps make any aggregate nullable, even count-like ones declared not null.
            let field = fields[index].1.as_ref().clone().with_nullable(true);
            fields[index].1 = Arc::new(field);
        }
    }
    for column in filled {
        let Expr::Column(source) = &column.source else {
            return internal_err!("GapFill fill source {} is not a column", column.source);
        };
        let source = input_schema.field_from_column(source)?;
        let field = Field::new(&column.name, source.data_type().clone(), true);
        fields.push((None, Arc::new(field)));
    }
    let schema = DFSchema::new_with_metadata(fields, DFSchema::metadata(input_schema).clone())?
        .with_functional_dependencies(input_schema.functional_dependencies().clone())?;
    Ok(Arc::new(schema))
}

// DFSchema has no ordering; the schema follows from the other fields anyway.
impl PartialOrd for GapFill {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (
            &self.input,
            &self.series,
            &self.buckets,
            &self.aggregates,
            &self.filled,
        )
            .partial_cmp(&(
                &other.input,
                &other.series,
                &other.buckets,
                &other.aggregates,
                &other.filled,
            ))
    }
}

fn joined(exprs: impl IntoIterator<Item = impl fmt::Display>) -> String {
    exprs
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl UserDefinedLogicalNodeCore for GapFill {
    fn name(&self) -> &str {
        "GapFill"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![self.input.as_ref()]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// In this order: series, time, stride, origin (if any), lower bounds,
    /// upper bounds, aggregate columns, fill sources.
    fn expressions(&self) -> Vec<Expr> {
        let buckets = &self.buckets;
        let mut exprs = self.series.clone();
        exprs.push(buckets.time.clone());
        exprs.push(buckets.stride.clone());
        exprs.extend(buckets.origin.iter().cloned());
        exprs.extend(buckets.lower.iter().map(|b| b.expr.clone()));
        exprs.extend(buckets.upper.iter().map(|b| b.expr.clone()));
        exprs.extend(self.aggregates.iter().map(|a| a.column.clone()));
        exprs.extend(self.filled.iter().map(|f| f.source.clone()));
        exprs
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let buckets = &self.buckets;
        let bound = |b: &TimeBound| format!("{}{}", if b.inclusive { "=" } else { "" }, b.expr);
        let lower = buckets.lower.iter().map(|b| format!(">{}", bound(b)));
        let upper = buckets.upper.iter().map(|b| format!("<{}", bound(b)));
        write!(
            f,
            "GapFill: series=[{}], time={}, stride={}",
            joined(&self.series),
            buckets.time,
            buckets.stride
        )?;
        if let Some(origin) = &buckets.origin {
            write!(f, ", origin={origin}")?;
        }
        let fills = self
            .filled
            .iter()
            .map(|c| format!("{}({})", c.strategy.function_name(), c.source));
        write!(
            f,
            ", range=[{}], aggregates=[{}], fills=[{}]",
            joined(lower.chain(upper)),
            joined(self.aggregates.iter().map(|a| &a.column)),
            joined(fills)
        )
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 || exprs.len() != self.expressions().len() {
            return internal_err!(
                "GapFill expects 1 input and {} expressions, got {} and {}",
                self.expressions().len(),
                inputs.len(),
                exprs.len()
            );
        }
        let mut exprs = exprs.into_iter();
        let mut next = |n: usize| exprs.by_ref().take(n).collect::<Vec<_>>();
        let series = next(self.series.len());
        let mut time_and_stride = next(2).into_iter();
        let (time, stride) = (time_and_stride.next(), time_and_stride.next());
        let origin = next(usize::from(self.buckets.origin.is_some())).pop();
        let buckets = &self.buckets;
        let lower = with_new_exprs(&buckets.lower, next(buckets.lower.len()), |old, expr| {
            TimeBound {
                expr,
                ..old.clone()
            }
        });
        let upper = with_new_exprs(&buckets.upper, next(buckets.upper.len()), |old, expr| {
            TimeBound {
                expr,
                ..old.clone()
            }
        });
        let aggregates = with_new_exprs(
            &self.aggregates,
            next(self.aggregates.len()),
            |old, column| AggregateColumn {
                column,
                ..old.clone()
            },
        );
        let filled = with_new_exprs(&self.filled, next(self.filled.len()), |old, source| {
            FilledColumn {
                source,
                ..old.clone()
            }
        });
        let (Some(time), Some(stride)) = (time, stride) else {
            return internal_err!("GapFill lost its time and stride expressions");
        };
        let buckets = BucketSpec {
            time,
            stride,
            origin,
            lower,
            upper,
        };
        Self::try_new(
            Arc::new(inputs.remove(0)),
            series,
            buckets,
            aggregates,
            filled,
        )
    }
}

/// `old` with their expressions replaced by `new`, in order.
fn with_new_exprs<T>(old: &[T], new: Vec<Expr>, replace: impl Fn(&T, Expr) -> T) -> Vec<T> {
    old.iter()
        .zip(new)
        .map(|(item, expr)| replace(item, expr))
        .collect()
}
