//! The `last_values` table: the newest sample of every tag, served from the
//! write path's last-value cache — never from segments.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::ingest::Engine;
use crate::model::TableDef;

pub const TABLE_NAME: &str = "last_values";

#[derive(Debug)]
pub struct LastValuesTable {
    def: &'static TableDef,
    engine: Arc<Engine>,
}

impl LastValuesTable {
    pub fn new(def: &'static TableDef, engine: Arc<Engine>) -> Self {
        Self { def, engine }
    }
}

#[async_trait]
impl TableProvider for LastValuesTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
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
        let batch = self
            .engine
            .last_values(self.def)
            .unwrap_or_else(|| arrow::array::RecordBatch::new_empty(self.def.schema.clone()));
        // The cache holds raw rows; show corrected ones, as `samples` does.
        let batch = crate::ingest::corrections::apply(&self.engine.corrections(), &batch)
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.def.schema.clone(),
            projection.cloned(),
        )?)
    }
}
