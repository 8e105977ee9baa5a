//! Tables whose rows are computed when a query plans its scan, as one
//! in-memory batch: the results of the table functions (`trace_*`,
//! `history_*`, `verify_audit()`) and the `last_values` cache. Each says
//! what its rows are ([`ComputeRows`]); [`ComputedTable`] is the one
//! `TableProvider` that serves them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// The rows of a computed table.
#[async_trait]
pub trait ComputeRows: std::fmt::Debug + Send + Sync + 'static {
    fn schema(&self) -> SchemaRef;

    /// A table function's result is `Temporary`; a standing table a `View`.
    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    /// Every row, in [`Self::schema`]; computed once per scan, when the
    /// query is planned.
    async fn compute(&self) -> DfResult<RecordBatch>;
}

/// Serves a [`ComputeRows`] as a table: the computed batch, projected.
#[derive(Debug)]
pub struct ComputedTable<T>(pub T);

impl<T: ComputeRows> ComputedTable<T> {
    pub fn provider(rows: T) -> Arc<dyn TableProvider> {
        Arc::new(Self(rows))
    }
}

#[async_trait]
impl<T: ComputeRows> TableProvider for ComputedTable<T> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self.0.compute().await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}
