//! `INSERT INTO` as a DataFusion [`DataSink`] that hands the rows to the
//! ingest engine: the same validation, WAL and acknowledgement as any other
//! writer. The statement's rows form one request, accepted or rejected whole.
//!
//! Who writes comes from the session: the server puts the caller's
//! [`WriteContext`] into the session config ([`set_write_context`]) and the
//! sink hands it to the engine, so the audit entry names them.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::TryStreamExt;

use datafusion::execution::config::SessionConfig;
use datafusion::execution::context::SessionContext;

use crate::ingest::{Engine, WriteContext};
use crate::model::TableDef;

#[derive(Debug)]
pub struct IngestSink {
    def: &'static TableDef,
    engine: Arc<Engine>,
}

impl IngestSink {
    pub fn new(def: &'static TableDef, engine: Arc<Engine>) -> Self {
        Self { def, engine }
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
        context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let batches: Vec<_> = data.try_collect().await?;
        let who = write_context(context.session_config());
        let rows = self
            .engine
            .write_as(&who, self.def, batches)
            .await
            .map_err(|e| {
                DataFusionError::Execution(format!("INSERT INTO {}: {e}", self.def.name))
            })?;
        Ok(rows as u64)
    }
}

/// The writer of a session's statements (INSERT, UPDATE, DELETE): who,
/// over which interface and why. A session without a caller is a local one
/// (tests, tools): anonymous, without a reason.
pub fn write_context(config: &SessionConfig) -> Arc<WriteContext> {
    config
        .get_extension::<WriteContext>()
        .unwrap_or_else(|| Arc::new(WriteContext::new("anonymous", "sql")))
}

/// Makes `who` the writer of every INSERT that `ctx` plans from now on.
pub fn set_write_context(ctx: &SessionContext, who: WriteContext) {
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(who));
}
