//! `INSERT INTO` as a DataFusion [`DataSink`] that hands the rows to the
//! ingest engine: the same validation, WAL and acknowledgement as any other
//! writer. The statement's rows form one request, accepted or rejected whole.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::TryStreamExt;

use crate::ingest::{ChangeMeta, Engine};
use crate::model::TableDef;

#[derive(Debug)]
pub struct IngestSink {
    def: &'static TableDef,
    engine: Arc<Engine>,
    /// Who inserts and why (versioned tables record it).
    meta: ChangeMeta,
}

impl IngestSink {
    pub fn new(def: &'static TableDef, engine: Arc<Engine>, meta: ChangeMeta) -> Self {
        Self { def, engine, meta }
    }
}

impl DisplayAs for IngestSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IngestSink: table={}", self.def.name)
    }
}

#[async_trait]
impl DataSink for IngestSink {
    fn schema(&self) -> &SchemaRef {
        &self.def.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let batches: Vec<_> = data.try_collect().await?;
        let rows = self
            .engine
            .write_as(self.def, batches, &self.meta)
            .await
            .map_err(|e| {
                DataFusionError::Execution(format!("INSERT INTO {}: {e}", self.def.name))
            })?;
        Ok(rows as u64)
    }
}
