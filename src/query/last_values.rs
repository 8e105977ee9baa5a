//! The `last_values` table: the newest sample of every tag, served from the
//! write path's last-value cache — never from segments.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::TableType;

use super::computed::{ComputeRows, ComputedTable};
use crate::ingest::Engine;
use crate::model::TableDef;

pub const TABLE_NAME: &str = "last_values";

#[derive(Debug)]
pub struct LastValuesTable {
    def: &'static TableDef,
    engine: Arc<Engine>,
}

impl LastValuesTable {
    pub fn provider(def: &'static TableDef, engine: Arc<Engine>) -> Arc<dyn TableProvider> {
        ComputedTable::provider(Self { def, engine })
    }
}

#[async_trait]
impl ComputeRows for LastValuesTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn compute(&self) -> DfResult<RecordBatch> {
        let batch = self
            .engine
            .last_values(self.def)
            .unwrap_or_else(|| RecordBatch::new_empty(self.def.schema.clone()));
        // The cache holds raw rows; show corrected ones, as `samples` does.
        crate::ingest::corrections::apply(&self.engine.corrections(), &batch)
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))
    }
}
