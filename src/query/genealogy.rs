//! Traceability in SQL: the table functions `trace_backward(lot [, max_depth])`
//! (everything that went into `lot`) and `trace_forward(lot [, max_depth])`
//! (everything made from it), served from the write path's in-memory
//! genealogy index ([`crate::ingest::genealogy_index`]), never from Parquet.
//!
//! One row per reached lot: `lot`, `depth` (0 for the start lot itself),
//! `path` (the lots from the start lot to this one), and `quantity`,
//! `work_order`, `equipment` of the genealogy edge it was reached through
//! (null at depth 0). Each lot appears once, at its smallest depth; ties
//! between parents are broken by the smallest parent lot id, then the
//! earliest edge `ts`. Rows are ordered by (depth, lot). A lot that appears
//! in no genealogy row gives an empty result, `max_depth` (a non-negative
//! integer) limits the walk, the default is unlimited.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Result as DfResult, ScalarValue, plan_err};
use datafusion::datasource::TableProvider;

use super::computed::{ComputeRows, ComputedTable};
use super::retrieval::{literal, string_arg};
use crate::ingest::Engine;
use crate::ingest::genealogy_index::{Direction, GenealogyIndex};

pub(super) fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("lot", DataType::Utf8, false),
        Field::new("depth", DataType::Int32, false),
        Field::new(
            "path",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("quantity", DataType::Float64, true),
        Field::new("work_order", DataType::Utf8, true),
        Field::new("equipment", DataType::Utf8, true),
    ]))
}

/// `trace_backward` or `trace_forward`.
#[derive(Debug)]
pub struct TraceFunction {
    engine: Arc<Engine>,
    direction: Direction,
}

impl TraceFunction {
    pub fn new(engine: Arc<Engine>, direction: Direction) -> Self {
        Self { engine, direction }
    }

    pub fn name(&self) -> &'static str {
        match self.direction {
            Direction::Backward => "trace_backward",
            Direction::Forward => "trace_forward",
        }
    }
}

impl TableFunctionImpl for TraceFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let name = self.name();
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 2 {
            return plan_err!(
                "{name}(lot [, max_depth]): expected 1 or 2 arguments, got {}",
                exprs.len()
            );
        }
        let Some(lot) = string_arg(&exprs[0]) else {
            return plan_err!("{name}: the lot must be a string, got {}", exprs[0]);
        };
        let max_depth = match exprs.get(1).map(|e| (e, literal(e))) {
            None | Some((_, Some(ScalarValue::Null))) => None,
            Some((e, Some(v))) => Some(depth_arg(v).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "{name}: max_depth must be a non-negative integer, got {e}"
                ))
            })?),
            Some((e, None)) => {
                return plan_err!("{name}: max_depth must be a constant integer, got {e}");
            }
        };
        Ok(ComputedTable::provider(TraceTable {
            engine: self.engine.clone(),
            direction: self.direction,
            lot,
            max_depth,
        }))
    }
}

fn depth_arg(value: &ScalarValue) -> Option<u32> {
    // Integers only: a cast of 2.5 would silently truncate.
    if !value.data_type().is_integer() {
        return None;
    }
    match value.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(n)) => u32::try_from(n).ok(),
        _ => None,
    }
}

#[derive(Debug)]
struct TraceTable {
    engine: Arc<Engine>,
    direction: Direction,
    lot: String,
    max_depth: Option<u32>,
}

#[async_trait]
impl ComputeRows for TraceTable {
    fn schema(&self) -> SchemaRef {
        output_schema()
    }

    async fn compute(&self) -> DfResult<RecordBatch> {
        match self.engine.genealogy() {
            Some(index) => {
                let index = index.read().expect("genealogy index lock");
                trace_batch(&index, &self.lot, self.direction, self.max_depth)
            }
            None => Ok(RecordBatch::new_empty(output_schema())),
        }
    }
}

/// The trace of `lot` as one batch of [`output_schema`].
pub fn trace_batch(
    index: &GenealogyIndex,
    lot: &str,
    direction: Direction,
    max_depth: Option<u32>,
) -> DfResult<RecordBatch> {
    let steps = index.trace(lot, direction, max_depth);
    let n = steps.len();
    let mut lots = StringBuilder::with_capacity(n, n * 12);
    let mut depth = Int32Builder::with_capacity(n);
    let mut path = ListBuilder::new(StringBuilder::new());
    let mut quantity = Float64Builder::with_capacity(n);
    let mut work_order = StringBuilder::new();
    let mut equipment = StringBuilder::new();
    for (i, step) in steps.iter().enumerate() {
        lots.append_value(index.lot(step.lot));
        depth.append_value(i32::try_from(step.depth).unwrap_or(i32::MAX));
        for p in index.path(&steps, i) {
            path.values().append_value(p);
        }
        path.append(true);
        let edge = step.via.map(|(_, e)| index.edge(e));
        quantity.append_option(edge.and_then(|e| index.quantity(e)));
        work_order.append_option(edge.and_then(|e| index.work_order(e)));
        equipment.append_option(edge.and_then(|e| index.equipment(e)));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(lots.finish()),
        Arc::new(depth.finish()),
        Arc::new(path.finish()),
        Arc::new(quantity.finish()),
        Arc::new(work_order.finish()),
        Arc::new(equipment.finish()),
    ];
    Ok(RecordBatch::try_new(output_schema(), columns)?)
}
