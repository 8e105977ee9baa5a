//! Running planned statements for Flight SQL: DoGet result streams, update
//! counts, and how DataFusion errors become gRPC statuses. Shared by plain
//! statements and prepared ones.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::FlightData;
use arrow_flight::error::FlightError;
use arrow_flight::sql::TicketStatementQuery;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout_at};
use tonic::{Response, Status};

use super::flight::{BoxStream, LotlineFlightSql, encode_batches};
use super::metrics::{QueryTimer, StatementGauge};
use crate::model;

impl LotlineFlightSql {
    /// Runs planned statements one after the other as one DoGet result
    /// stream (several for a prepared query bound to several rows).
    pub(super) async fn stream_results(
        &self,
        timer: QueryTimer,
        schema: Arc<Schema>,
        frames: Vec<DataFrame>,
    ) -> Result<Response<BoxStream<FlightData>>, Status> {
        let slot = self.slot().await?;
        let target = frames.first().and_then(dml_target);
        // A write is never cut off halfway: it could land after the client
        // was told it failed.
        let deadline = self.deadline().filter(|_| target.is_none());
        let mut frames = frames.into_iter();
        // The first starts now, so that its failure is the call's status.
        let first = match frames.next() {
            Some(frame) => Some(
                within(deadline, frame.execute_stream())
                    .await
                    .and_then(|started| started.map_err(df_status))
                    .inspect_err(|status| self.metrics.query_failed(status))?,
            ),
            None => None,
        };
        let rest = futures::stream::iter(frames)
            .then(|frame| frame.execute_stream())
            .try_flatten();
        let stream = futures::stream::iter(first).flatten().chain(rest);
        let metrics = self.metrics.clone();
        // Metrics hook: count the query's execution failures; `timer` records
        // the duration when the result stream ends (it lives in it).
        let batches = stream.map(move |batch| {
            let _in_stream = (&timer, &slot);
            // An INSERT run as a query (as ADBC does) reports its rows here.
            if let (Some(def), Ok(Some(rows))) = (target, batch.as_ref().map(dml_count)) {
                metrics.record_write("sql_insert", def.name, &Ok(rows as usize));
            }
            batch.map_err(|e| {
                let status = df_status(e);
                metrics.query_failed(&status);
                FlightError::from(status)
            })
        });
        Ok(encode_batches(schema, until(deadline, batches)))
    }

    /// A place among the statements that run at once (`max_concurrent`):
    /// waits until one is free. Held until the statement's results end.
    async fn slot(&self) -> Result<Slot, Status> {
        let waiting = self.metrics.statement("waiting");
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        drop(waiting);
        Ok(Slot {
            _permit: permit,
            _running: self.metrics.statement("running"),
        })
    }

    /// When a query started now must end (`statement_timeout`).
    fn deadline(&self) -> Option<Deadline> {
        self.query_options.statement_timeout.map(|limit| Deadline {
            at: Instant::now() + limit,
            limit,
        })
    }

    /// Runs planned statements as updates: the rows they affected, or -1
    /// when none is DML (a query run as an update).
    /// Their writer is the session's, set by [`Self::plan`].
    pub(super) async fn run_updates(&self, frames: Vec<DataFrame>) -> Result<i64, Status> {
        let _slot = self.slot().await?;
        let mut total = None;
        for frame in frames {
            let target = dml_target(&frame);
            let batches = frame.collect().await.map_err(df_status)?;
            // DML returns one row with the affected count; other statements return rows, not a count.
            let count = batches.first().and_then(dml_count);
            // Metrics hook: rows an INSERT writes count as ingested through SQL.
            if let (Some(def), Some(rows)) = (target, count) {
                self.metrics
                    .record_write("sql_insert", def.name, &Ok(rows as usize));
            }
            if let Some(rows) = count {
                *total.get_or_insert(0) += rows as i64;
            }
        }
        Ok(total.unwrap_or(-1))
    }
}

/// A statement ticket whose handle starts with this byte carries the result
/// of a write that already ran (SQL text never starts with NUL).
const WRITTEN_MARKER: &[u8] = b"\0lotline-written:";

impl LotlineFlightSql {
    /// A write sent as a query (GetFlightInfo, as ADBC's `execute` does) runs
    /// here, durably, before GetFlightInfo answers: the client may never call
    /// DoGet, or cancel it. The ticket then carries the affected-row count, so
    /// DoGet answers without running anything again. `None` for a query.
    pub(super) async fn write_now(
        &self,
        frames: &[DataFrame],
    ) -> Result<Option<TicketStatementQuery>, Status> {
        if frames.first().and_then(dml_target).is_some() {
            // Counted and timed as the query the client sent.
            let _timer = self.metrics.query_started();
            let rows = self.run_updates(frames.to_vec()).await?.max(0);
            let mut handle = WRITTEN_MARKER.to_vec();
            handle.extend_from_slice(rows.to_string().as_bytes());
            return Ok(Some(TicketStatementQuery {
                statement_handle: handle.into(),
            }));
        }
        if frames.iter().any(|f| Writes::of(f.logical_plan()).any()) {
            return Err(Status::invalid_argument(
                "EXPLAIN ANALYZE runs the write it explains; on the query path it would run \
                 before its result is read. Send it as an update (ExecuteUpdate), or use \
                 EXPLAIN without ANALYZE",
            ));
        }
        Ok(None)
    }
}

/// The affected-row count a [`LotlineFlightSql::write_now`] ticket carries,
/// as the one-row result DataFusion gives for DML.
pub(super) fn written_result(handle: &[u8]) -> Option<Result<RecordBatch, Status>> {
    let count = handle.strip_prefix(WRITTEN_MARKER)?;
    let count = std::str::from_utf8(count)
        .ok()
        .and_then(|c| c.parse::<u64>().ok());
    Some(match count {
        None => Err(Status::invalid_argument(
            "malformed result ticket of a write; run the statement again",
        )),
        Some(rows) => RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "count",
                DataType::UInt64,
                false,
            )])),
            vec![Arc::new(arrow::array::UInt64Array::from(vec![rows]))],
        )
        .map_err(|e| Status::internal(e.to_string())),
    })
}

/// A running statement's place among `max_concurrent`, counted in the metrics.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _running: StatementGauge,
}

/// The end of a query's time (`statement_timeout`).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    fn exceeded(self) -> Status {
        Status::deadline_exceeded(format!(
            "the statement ran longer than its {} s (statement_timeout_secs) and was cancelled",
            self.limit.as_secs_f64()
        ))
    }
}

/// `work`, cancelled with an error at `deadline`.
async fn within<T>(deadline: Option<Deadline>, work: impl Future<Output = T>) -> Result<T, Status> {
    match deadline {
        None => Ok(work.await),
        Some(d) => timeout_at(d.at, work).await.map_err(|_| d.exceeded()),
    }
}

/// `batches`, ending with an error at `deadline` (the statement is dropped,
/// which stops it).
fn until<S>(
    deadline: Option<Deadline>,
    batches: S,
) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static
where
    S: Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
{
    futures::stream::unfold(Some(Box::pin(batches)), move |state| async move {
        let mut batches = state?;
        match within(deadline, batches.next()).await {
            Ok(Some(batch)) => Some((batch, Some(batches))),
            Ok(None) => None,
            Err(status) => Some((Err(FlightError::from(status)), None)),
        }
    })
}

/// What a plan writes, anywhere in it, subqueries included (`EXPLAIN
/// ANALYZE INSERT …` runs its insert too): the tables of its DML, and
/// whether it has a `COPY ... TO`. The one walk both the role check and the
/// query path use.
#[derive(Debug, Default)]
pub(super) struct Writes {
    pub tables: Vec<String>,
    pub copies: bool,
}

impl Writes {
    pub fn of(plan: &LogicalPlan) -> Self {
        let mut writes = Self::default();
        let _ = plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::Dml(dml) => writes.tables.push(dml.table_name.table().to_string()),
                LogicalPlan::Copy(_) => writes.copies = true,
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        writes
    }

    fn any(&self) -> bool {
        self.copies || !self.tables.is_empty()
    }
}

/// Maps a DataFusion error to a status: problems with the statement are the
/// caller's (InvalidArgument), I/O and the like are ours (Internal).
pub fn df_status(e: DataFusionError) -> Status {
    if let DataFusionError::External(inner) = e.find_root() {
        if let Some(ingest) = inner.downcast_ref::<crate::ingest::IngestError>() {
            let code = super::flight_data::ingest_code(ingest);
            if matches!(
                code,
                tonic::Code::Unavailable | tonic::Code::ResourceExhausted
            ) {
                return Status::new(code, e.to_string());
            }
        }
    }
    match e.find_root() {
        DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::ResourcesExhausted(_) => Status::internal(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

/// The lotline table a planned statement writes to, if it is DML.
fn dml_target(frame: &DataFrame) -> Option<&'static model::TableDef> {
    match frame.logical_plan() {
        LogicalPlan::Dml(dml) => model::table(dml.table_name.table()),
        _ => None,
    }
}

/// The affected-row count of a DML result batch (one row, column `count`).
fn dml_count(batch: &RecordBatch) -> Option<u64> {
    batch
        .column_by_name("count")?
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .filter(|c| !c.is_empty())
        .map(|c| c.value(0))
}
