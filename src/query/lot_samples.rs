//! `lot_samples(lots)`: the samples recorded on each equipment while a lot
//! ran there, found through `production_runs` — never through the
//! `lot`/`work_order` stamped on samples, so it is right before stamping
//! has converged.
//!
//! `lots` is a lot id, an array of lot ids, or a subquery returning lot ids
//! in its first column, e.g. `lot_samples((SELECT lot FROM
//! trace_backward('F-1')))`: DataFusion 55 cannot feed a table function
//! from a LATERAL column, so the subquery is how the genealogy and the
//! process data of its lots become one query. The subquery runs when the
//! scan is planned.
//!
//! For every run of those lots (`equipment`, `start_ts`, `end_ts` or now
//! while running) the result holds the samples with `samples.equipment` =
//! the run's equipment — or, for samples without equipment, whose tag has
//! that equipment in `tags` — and `start_ts <= ts < end_ts`. Each run is
//! its own filtered scan of `samples`, so segments are pruned by time and
//! Parquet by statistics; filters on `tag`, `ts`, `value`, `text` and
//! `quality` are pushed into those scans. Columns: the sample's `tag`, `ts`,
//! `value`, `text`, `quality`, then the run's `equipment`, `work_order`,
//! `lot` and `operation`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, TableProviderFilterPushDown, TableType, col, lit,
};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr, collect};

use super::retrieval::{literal, string_list};
use super::table::LotlineTable;
use crate::ingest::Engine;
use crate::model::{self, UTC};

const USAGE: &str = "lot_samples(lot | [lots] | (SELECT lot FROM ...))";
/// Sample columns passed through (and the only ones filters are pushed on).
const SAMPLE_COLUMNS: [&str; 5] = ["tag", "ts", "value", "text", "quality"];

pub(super) fn output_schema() -> SchemaRef {
    let samples = &model::samples().schema;
    let mut fields: Vec<Field> = SAMPLE_COLUMNS
        .iter()
        .map(|c| samples.field_with_name(c).expect("samples column").clone())
        .collect();
    fields.extend([
        Field::new("equipment", DataType::Utf8, false),
        Field::new("work_order", DataType::Utf8, true),
        Field::new("lot", DataType::Utf8, false),
        Field::new("operation", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// Where the lots come from.
#[derive(Debug, Clone)]
enum Lots {
    Listed(Vec<String>),
    Query(Arc<LogicalPlan>),
}

#[derive(Debug)]
pub struct LotSamplesFunction {
    engine: Arc<Engine>,
}

impl LotSamplesFunction {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl TableFunctionImpl for LotSamplesFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 1 {
            return plan_err!("{USAGE}: expected 1 argument, got {}", exprs.len());
        }
        let lots = match &exprs[0] {
            Expr::ScalarSubquery(sub) => Lots::Query(sub.subquery.clone()),
            e if literal(e).is_some() => Lots::Listed(string_list(e, USAGE, "lot")?),
            e => {
                return plan_err!(
                    "{USAGE}: the argument must be a lot id, an array of lot ids or a subquery \
                     such as (SELECT lot FROM trace_backward('F-1')); columns of other tables \
                     (LATERAL) are not supported, got {e}"
                );
            }
        };
        Ok(Arc::new(LotSamplesTable {
            engine: self.engine.clone(),
            lots,
        }))
    }
}

#[derive(Debug)]
struct LotSamplesTable {
    engine: Arc<Engine>,
    lots: Lots,
}

/// One `production_runs` row of a wanted lot.
struct Run {
    equipment: String,
    work_order: Option<String>,
    lot: String,
    operation: Option<String>,
    start: i64,
    /// Exclusive.
    end: i64,
}

#[async_trait]
impl TableProvider for LotSamplesTable {
    fn schema(&self) -> SchemaRef {
        output_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if on_sample_columns(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let lots = match &self.lots {
            Lots::Listed(lots) => lots.clone(),
            Lots::Query(plan) => {
                let plan = state.create_physical_plan(plan).await?;
                first_column_strings(&collect(plan, state.task_ctx()).await?)?
            }
        };
        let now = state
            .execution_props()
            .query_execution_start_time
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(i64::MAX);
        let runs = runs_of(&self.engine, state, &lots, now).await?;
        let tags_by_equipment = tags_by_equipment(&self.engine, state).await?;
        let samples = LotlineTable::new(model::samples(), self.engine.clone());
        let samples_schema = DFSchema::try_from(model::samples().schema.as_ref().clone())?;
        let pushed: Vec<Expr> = filters
            .iter()
            .filter(|f| on_sample_columns(f))
            .cloned()
            .collect();
        let schema = output_schema();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(runs.len());
        for run in &runs {
            let mut run_filters = vec![
                col("ts").gt_eq(lit(ts(run.start))),
                col("ts").lt(lit(ts(run.end))),
                on_equipment(&run.equipment, tags_by_equipment.get(&run.equipment)),
            ];
            run_filters.extend(pushed.iter().cloned());
            let scan = samples.scan(state, None, &run_filters, None).await?;
            let predicate = conjunction(run_filters).expect("at least the time bounds");
            let predicate = state.create_physical_expr(predicate, &samples_schema)?;
            let filtered = Arc::new(FilterExec::try_new(predicate, scan)?);
            let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
            for (i, field) in schema.fields().iter().enumerate() {
                if projection.is_some_and(|p| !p.contains(&i)) {
                    continue;
                }
                let expr = match field.name().as_str() {
                    "equipment" => lit(run.equipment.as_str()),
                    "work_order" => lit(ScalarValue::Utf8(run.work_order.clone())),
                    "lot" => lit(run.lot.as_str()),
                    "operation" => lit(ScalarValue::Utf8(run.operation.clone())),
                    column => col(column),
                };
                exprs.push((
                    state.create_physical_expr(expr, &samples_schema)?,
                    field.name().clone(),
                ));
            }
            inputs.push(Arc::new(ProjectionExec::try_new(exprs, filtered)?));
        }
        match inputs.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(schema.project(p)?),
                    None => schema,
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            1 => Ok(inputs.pop().expect("one input")),
            _ => UnionExec::try_new(inputs),
        }
    }
}

fn ts(ns: i64) -> ScalarValue {
    ScalarValue::TimestampNanosecond(Some(ns), Some(UTC.into()))
}

fn on_sample_columns(filter: &Expr) -> bool {
    filter
        .column_refs()
        .iter()
        .all(|c| SAMPLE_COLUMNS.contains(&c.name.as_str()))
}

/// Samples of `equipment`: stamped with it, or without equipment and with
/// one of its tags.
fn on_equipment(equipment: &str, tags: Option<&Vec<String>>) -> Expr {
    let stamped = col("equipment").eq(lit(equipment));
    match tags {
        Some(tags) if !tags.is_empty() => stamped.or(col("equipment")
            .is_null()
            .and(col("tag").in_list(tags.iter().map(|t| lit(t.as_str())).collect(), false))),
        _ => stamped,
    }
}

fn first_column_strings(batches: &[RecordBatch]) -> DfResult<Vec<String>> {
    let mut seen = HashSet::new();
    let mut lots = Vec::new();
    for batch in batches {
        if batch.num_columns() == 0 {
            return plan_err!("{USAGE}: the subquery returns no column");
        }
        let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        for lot in column.as_string::<i32>().iter().flatten() {
            if seen.insert(lot.to_string()) {
                lots.push(lot.to_string());
            }
        }
    }
    Ok(lots)
}

/// Reads a whole (small, latest-wins) table through its provider.
async fn read_table(
    engine: &Arc<Engine>,
    state: &dyn Session,
    def: &'static model::TableDef,
) -> DfResult<Vec<RecordBatch>> {
    let plan = LotlineTable::new(def, engine.clone())
        .scan(state, None, &[], None)
        .await?;
    collect(plan, state.task_ctx()).await
}

/// The runs of `lots`, with running runs ending at `now`; empty ranges dropped.
async fn runs_of(
    engine: &Arc<Engine>,
    state: &dyn Session,
    lots: &[String],
    now: i64,
) -> DfResult<Vec<Run>> {
    let wanted: HashSet<&str> = lots.iter().map(String::as_str).collect();
    let mut runs = Vec::new();
    for batch in read_table(engine, state, model::production_runs()).await? {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .expect("runs column")
                .as_string::<i32>()
                .clone()
        };
        let time = |name: &str| {
            batch
                .column_by_name(name)
                .expect("runs column")
                .as_primitive::<TimestampNanosecondType>()
                .clone()
        };
        let (equipment, work_order, lot, operation) = (
            text("equipment"),
            text("work_order"),
            text("lot"),
            text("operation"),
        );
        let (start, end) = (time("start_ts"), time("end_ts"));
        let optional = |a: &arrow::array::StringArray, row: usize| {
            a.is_valid(row).then(|| a.value(row).to_string())
        };
        for row in 0..batch.num_rows() {
            if !lot.is_valid(row) || !wanted.contains(lot.value(row)) {
                continue;
            }
            let end = if end.is_valid(row) {
                end.value(row)
            } else {
                now
            };
            if end <= start.value(row) {
                continue;
            }
            runs.push(Run {
                equipment: equipment.value(row).to_string(),
                work_order: optional(&work_order, row),
                lot: lot.value(row).to_string(),
                operation: optional(&operation, row),
                start: start.value(row),
                end,
            });
        }
    }
    // Deterministic plan shape: by lot, then equipment and start.
    runs.sort_by(|a, b| (&a.lot, &a.equipment, a.start).cmp(&(&b.lot, &b.equipment, b.start)));
    Ok(runs)
}

/// Tags per equipment, from `tags.equipment`.
async fn tags_by_equipment(
    engine: &Arc<Engine>,
    state: &dyn Session,
) -> DfResult<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for batch in read_table(engine, state, model::tags()).await? {
        let tag = batch
            .column_by_name("tag")
            .expect("tags.tag")
            .as_string::<i32>();
        let equipment = batch
            .column_by_name("equipment")
            .expect("tags.equipment")
            .as_string::<i32>();
        for row in 0..batch.num_rows() {
            if equipment.is_valid(row) {
                map.entry(equipment.value(row).to_string())
                    .or_default()
                    .push(tag.value(row).to_string());
            }
        }
    }
    Ok(map)
}
