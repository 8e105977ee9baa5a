//! SQL over versioned tables (`model::versioned`): `X` shows the current
//! version of each key, `X_history` every version with `recorded_at`,
//! `recorded_by`, `reason` and `op`; `UPDATE` and `DELETE` on `X` append
//! new versions and tombstones through [`Engine::change`].
//!
//! Who changes and why reaches the sinks as the session's write context
//! ([`super::sink::write_context`]), set by the server for each statement.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};

use crate::ingest::{ChangeFn, Engine, IngestError};
use crate::model::{self, Op, TableDef};

fn external(e: IngestError) -> DataFusionError {
    DataFusionError::External(e.into())
}

/// The current rows of a versioned table as a scan.
pub async fn scan_current(
    engine: &Arc<Engine>,
    def: &'static TableDef,
    projection: Option<&Vec<usize>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let current = engine.current_rows(def).await.map_err(external)?;
    Ok(MemorySourceConfig::try_new_exec(
        &[vec![current]],
        def.schema.clone(),
        projection.cloned(),
    )?)
}

/// `X_history`: every stored version of a versioned table.
#[derive(Debug)]
pub struct HistoryTable {
    def: &'static TableDef,
    engine: Arc<Engine>,
}

impl HistoryTable {
    pub fn new(def: &'static TableDef, engine: Arc<Engine>) -> Self {
        assert!(def.is_versioned(), "{} has no history", def.name);
        Self { def, engine }
    }

    pub fn name(&self) -> String {
        format!("{}{}", self.def.name, model::HISTORY_SUFFIX)
    }
}

#[async_trait]
impl TableProvider for HistoryTable {
    fn schema(&self) -> SchemaRef {
        model::stored_schema(self.def)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let all = self.engine.all_versions(self.def).await.map_err(external)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[all],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

/// The plan of `UPDATE def SET assignments WHERE filters` (or `DELETE` when
/// `assignments` is `None`): a sink that, when run, appends the new versions.
pub fn change_plan(
    state: &dyn Session,
    def: &'static TableDef,
    engine: Arc<Engine>,
    assignments: Option<Vec<(String, Expr)>>,
    filters: Vec<Expr>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let df_schema = DFSchema::try_from(def.schema.as_ref().clone())?;
    let predicate = conjunction(filters)
        .map(|p| state.create_physical_expr(p, &df_schema))
        .transpose()?;
    let mut sets = Vec::new();
    for (column, expr) in assignments.iter().flatten() {
        let Some(index) = def.column_index(column) else {
            return plan_err!("{} has no column '{column}'", def.name);
        };
        if def.key.contains(&column.as_str()) {
            return plan_err!(
                "UPDATE cannot change '{column}': it is part of the key of {} ({}); \
                 DELETE the record and INSERT it under the new key instead",
                def.name,
                def.key.join(", ")
            );
        }
        sets.push((index, state.create_physical_expr(expr.clone(), &df_schema)?));
    }
    let sink = ChangeSink {
        def,
        engine,
        op: if assignments.is_some() {
            Op::Update
        } else {
            Op::Delete
        },
        predicate,
        sets,
        schema: def.schema.clone(),
    };
    let input = Arc::new(EmptyExec::new(def.schema.clone()));
    Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
}

/// Selects the rows `predicate` holds for (all when `None`; null is false)
/// and applies `sets` to them: the rows an `UPDATE`/`DELETE` appends.
fn apply_change(
    current: &RecordBatch,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    sets: &[(usize, Arc<dyn PhysicalExpr>)],
) -> DfResult<RecordBatch> {
    let selected = match predicate {
        Some(p) => {
            let mask = p.evaluate(current)?.into_array(current.num_rows())?;
            let mask = mask.as_boolean();
            // SQL: a row the predicate is null for is not selected.
            let mask = match mask.nulls() {
                Some(_) => arrow::compute::prep_null_mask_filter(mask),
                None => mask.clone(),
            };
            filter_record_batch(current, &mask)?
        }
        None => current.clone(),
    };
    if sets.is_empty() || selected.num_rows() == 0 {
        return Ok(selected);
    }
    let mut columns: Vec<ArrayRef> = selected.columns().to_vec();
    for (index, expr) in sets {
        let value = expr.evaluate(&selected)?.into_array(selected.num_rows())?;
        let target = selected.schema().field(*index).data_type().clone();
        columns[*index] = cast(&value, &target)?;
    }
    // Nullability and rules are checked by the write path's validation.
    Ok(RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::new(
            selected
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        )),
        columns,
        &Default::default(),
    )?)
}

struct ChangeSink {
    def: &'static TableDef,
    engine: Arc<Engine>,
    op: Op,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    sets: Vec<(usize, Arc<dyn PhysicalExpr>)>,
    schema: SchemaRef,
}

impl fmt::Debug for ChangeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeSink")
            .field("table", &self.def.name)
            .field("op", &self.op)
            .finish()
    }
}

impl DisplayAs for ChangeSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChangeSink: table={} op={}",
            self.def.name,
            self.op.as_str()
        )
    }
}

#[async_trait]
impl DataSink for ChangeSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        _data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let who = super::sink::write_context(context.session_config());
        let predicate = self.predicate.clone();
        let sets = self.sets.clone();
        let change: ChangeFn = Box::new(move |current| {
            apply_change(&current, predicate.as_ref(), &sets).map_err(|e| e.to_string())
        });
        let verb = if self.op == Op::Delete {
            "DELETE FROM"
        } else {
            "UPDATE"
        };
        let rows = self
            .engine
            .change(&who, self.def, self.op, change)
            .await
            .map_err(|e| DataFusionError::Execution(format!("{verb} {}: {e}", self.def.name)))?;
        Ok(rows as u64)
    }
}
