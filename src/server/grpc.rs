//! The `lotline.v1` gRPC services (`proto/lotline/v1/`), served on the Flight
//! SQL port beside it:
//!
//! - `IngestService.Write`: a client stream of `WriteRequest`s of samples.
//!   Each request is one atomic batch through [`Engine::write`]: written whole
//!   or rejected whole, a rejected one listed in the response's errors while
//!   the others land. The response comes when the client half-closes and
//!   every accepted request is durable.
//! - `IngestService.WriteContext`: the same for context events, each request
//!   atomic across the context tables it touches (see [`context`]).
//! - `AdminService`: `Flush`, `Compact`, `Stats`, `Health` (the only call that needs no
//!   authentication, like HTTP `/health`).
//!
//! Authentication is Flight SQL's: `authorization: Bearer <token>` from a
//! Flight handshake, or `Basic <base64 user:password>` checked on every call
//! (argon2: fine for a gateway's few calls a second, not for many).

mod context;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::auth::{Auth, Permission};
use super::authenticate::caller;
use super::flight::ingest_status;
use super::metrics::Metrics;
use crate::connect::grpc_samples;
use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model::{self, ValidationError};
use crate::proto::admin_service_server::{AdminService, AdminServiceServer};
use crate::proto::ingest_service_server::{IngestService, IngestServiceServer};
use crate::proto::{
    CompactRequest, CompactResponse, ContextRequest, EventError, FlushRequest, FlushResponse,
    HealthRequest, HealthResponse, RowError, StatsRequest, StatsResponse, TableStats,
    WriteContextResponse, WriteRequest, WriteResponse,
};

/// The `interface` label of gRPC writes in the metrics.
pub const INTERFACE: &str = "grpc";

/// Requests of one `Write` stream written concurrently: they share WAL group
/// commits instead of each waiting for the previous one's fsync, while a
/// fast client still cannot queue unbounded work. (Samples are append-only,
/// so their order does not matter; context requests are written one after
/// the other, see `WriteContext`.)
const IN_FLIGHT: usize = 4;

/// Both services over one engine; cheap to clone.
#[derive(Clone)]
pub struct GrpcServices {
    engine: Arc<Engine>,
    /// `None`: authentication is off (`--without-auth`).
    auth: Option<Arc<Auth>>,
    metrics: Arc<Metrics>,
    started: Instant,
}

/// What became of one request of a write stream; `E` is the response's
/// error entry.
enum Outcome<E> {
    Written(usize),
    Rejected {
        error: E,
        rows: usize,
    },
    /// The server could not write it (WAL, storage): not the client's fault.
    Failed(IngestError),
}

/// The error entry of a rejected request in a write stream's response.
trait RequestError {
    /// Index of the request on the stream.
    fn request(&self) -> u64;
    fn reason(&self) -> &str;
}

impl RequestError for RowError {
    fn request(&self) -> u64 {
        self.request
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

impl RequestError for EventError {
    fn request(&self) -> u64 {
        self.request
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

/// What a write stream did, for its response.
struct Tally<E> {
    requests: u64,
    accepted_requests: u64,
    accepted_rows: u64,
    rejected_rows: u64,
    /// In request order.
    errors: Vec<E>,
}

impl GrpcServices {
    pub fn new(engine: Arc<Engine>, auth: Option<Arc<Auth>>, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            auth,
            metrics,
            started: Instant::now(),
        }
    }

    /// The tonic services, decoding messages of up to `message_limit` bytes.
    pub fn into_servers(
        self,
        message_limit: usize,
    ) -> (
        IngestServiceServer<GrpcServices>,
        AdminServiceServer<GrpcServices>,
    ) {
        let ingest = IngestServiceServer::new(self.clone())
            .max_decoding_message_size(message_limit)
            .max_encoding_message_size(usize::MAX);
        (ingest, AdminServiceServer::new(self))
    }

    /// Runs a write stream for its authenticated caller, who needs
    /// `permission`: up to `in_flight` requests at a time through
    /// `write_one` (given the writer, audited as `interface`, and each
    /// request's index), every outcome awaited even after a failure (a write
    /// handed to the WAL finishes, and the counts stay true). A server
    /// failure or a broken stream ends the call with an error status saying
    /// how many requests (and `rows`, e.g. "samples") were written durably.
    async fn drive<M, E, Fut>(
        &self,
        request: Request<Streaming<M>>,
        interface: &'static str,
        permission: Permission<'_>,
        in_flight: usize,
        rows: &str,
        write_one: impl Fn(WriteContext, u64, M) -> Fut,
    ) -> Result<Tally<E>, Status>
    where
        Fut: Future<Output = Outcome<E>>,
        E: RequestError,
    {
        let principal = &caller(&request)?;
        let who = &super::reason::write_context(principal, interface, request.metadata())?;
        super::actions::require(&self.metrics, INTERFACE, principal, permission)?;
        let write_one = &write_one;
        // tonic's stream yields a decode error again on every poll (the bad
        // bytes stay in its buffer): it ends at its first error.
        let messages = futures::stream::unfold(Some(request.into_inner()), |stream| async move {
            let mut stream = stream?;
            let message = stream.next().await?;
            let readable = message.is_ok();
            Some((message, readable.then_some(stream)))
        });
        let mut outcomes = std::pin::pin!(
            messages
                .zip(futures::stream::iter(0u64..))
                .map(|(message, index)| async move {
                    match message {
                        Ok(request) => Ok(write_one(who.clone(), index, request).await),
                        Err(status) => Err(unreadable(index, status)),
                    }
                })
                .buffer_unordered(in_flight)
        );
        let mut tally = Tally {
            requests: 0,
            accepted_requests: 0,
            accepted_rows: 0,
            rejected_rows: 0,
            errors: Vec::new(),
        };
        let (mut broken, mut failed) = (None, None);
        while let Some(outcome) = outcomes.next().await {
            tally.requests += 1;
            match outcome {
                Ok(Outcome::Written(written)) => {
                    tally.accepted_requests += 1;
                    tally.accepted_rows += written as u64;
                }
                Ok(Outcome::Rejected { error, rows }) => {
                    tally.rejected_rows += rows as u64;
                    tally.errors.push(error);
                }
                Ok(Outcome::Failed(e)) => {
                    failed.get_or_insert(e);
                }
                Err(status) => {
                    tally.requests -= 1;
                    broken.get_or_insert(status);
                }
            }
        }
        tally.errors.sort_by_key(E::request);
        let written = format!(
            "{} of the stream's {} request(s) ({} {rows}) were written durably",
            tally.accepted_requests, tally.requests, tally.accepted_rows
        );
        if let Some(e) = failed {
            tracing::error!("gRPC write by {} failed: {e}", principal.user);
            let status = ingest_status(e);
            return Err(Status::new(
                status.code(),
                format!("{}; {written}", status.message()),
            ));
        }
        if let Some(status) = broken {
            warn!("gRPC write stream of {} broke: {status}", principal.user);
            return Err(Status::new(
                status.code(),
                format!("{}; {written}", status.message()),
            ));
        }
        if let Some(first) = tally.errors.first() {
            warn!(
                "gRPC write by {}: rejected {} of {} request(s); first: {}",
                principal.user,
                tally.errors.len(),
                tally.requests,
                first.reason()
            );
        }
        Ok(tally)
    }

    /// Validates and writes one request of a stream.
    async fn write_one(
        &self,
        who: WriteContext,
        index: u64,
        request: WriteRequest,
    ) -> Outcome<RowError> {
        let rows = request.samples.len();
        if rows == 0 {
            return Outcome::Written(0);
        }
        let request_id = Some(request.request_id.clone()).filter(|id| !id.is_empty());
        let who = match who.with_request_id(request_id) {
            Ok(who) => who,
            Err(e) => {
                return Outcome::Rejected {
                    error: row_error(index, &e),
                    rows,
                };
            }
        };
        // Building columns of many samples is CPU work: off the async workers.
        let batch =
            match tokio::task::spawn_blocking(move || grpc_samples::to_samples(&request)).await {
                Ok(batch) => batch,
                Err(e) => return Outcome::Failed(IngestError::Internal(e.to_string())),
            };
        let samples = model::samples();
        let result = self.engine.write_as(&who, samples, vec![batch]).await;
        self.metrics.record_write(INTERFACE, samples.name, &result);
        match result {
            Ok(written) => Outcome::Written(written),
            Err(e) if e.is_client_error() => Outcome::Rejected {
                error: row_error(index, &e),
                rows,
            },
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// The status that ends a call whose request `index` could not be read.
/// tonic reports a message that does not decode (a string that is not
/// UTF-8, a bad field) as Internal and one over the size limit as
/// OutOfRange; both are the client's bytes, not a fault of the server.
fn unreadable(index: u64, status: Status) -> Status {
    let code = match status.code() {
        Code::Internal => Code::InvalidArgument,
        Code::OutOfRange => Code::ResourceExhausted,
        code => code,
    };
    Status::new(
        code,
        format!(
            "request {index} of the stream could not be read: {}",
            status.message()
        ),
    )
}

/// The error entry of a rejected request: row, column and value when the
/// validation names them.
fn row_error(request: u64, e: &IngestError) -> RowError {
    let mut error = RowError {
        request,
        reason: e.to_string(),
        ..Default::default()
    };
    match e {
        IngestError::Invalid(ValidationError::BadValue {
            row,
            column,
            value,
            problem,
        }) => {
            error.row = Some(*row as u64);
            error.column = column.clone();
            error.value = value.clone();
            error.reason = format!("{column} {value} {problem}");
        }
        IngestError::Invalid(ValidationError::Null { row, column }) => {
            error.row = Some(*row as u64);
            error.column = column.clone();
        }
        _ => {}
    }
    error
}

#[tonic::async_trait]
impl IngestService for GrpcServices {
    async fn write(
        &self,
        request: Request<Streaming<WriteRequest>>,
    ) -> Result<Response<WriteResponse>, Status> {
        let table = model::samples().name;
        let tally = self
            .drive(
                request,
                "grpc.ingest",
                Permission::Write { table },
                IN_FLIGHT,
                "samples",
                |who, index, request| self.write_one(who, index, request),
            )
            .await?;
        Ok(Response::new(WriteResponse {
            requests: tally.requests,
            accepted_requests: tally.accepted_requests,
            accepted_rows: tally.accepted_rows,
            rejected_rows: tally.rejected_rows,
            errors: tally.errors,
        }))
    }

    async fn write_context(
        &self,
        request: Request<Streaming<ContextRequest>>,
    ) -> Result<Response<WriteContextResponse>, Status> {
        let tally = self
            .drive(
                request,
                context::AUDIT_INTERFACE,
                Permission::WriteContext,
                // In order: a later event about a key (the run ended)
                // must not be overtaken by an earlier one (it started).
                1,
                "events",
                |who, index, request| self.write_context_one(who, index, request),
            )
            .await?;
        Ok(Response::new(WriteContextResponse {
            requests: tally.requests,
            accepted_requests: tally.accepted_requests,
            accepted_events: tally.accepted_rows,
            rejected_events: tally.rejected_rows,
            errors: tally.errors,
        }))
    }
}

#[tonic::async_trait]
impl AdminService for GrpcServices {
    async fn flush(
        &self,
        request: Request<FlushRequest>,
    ) -> Result<Response<FlushResponse>, Status> {
        let principal = caller(&request)?;
        super::actions::require(&self.metrics, INTERFACE, &principal, Permission::Flush)?;
        let report = self
            .engine
            .run_to_completion(|e| async move { e.flush().await })
            .await
            .map_err(ingest_status)?;
        info!(
            "flush requested by {} over gRPC: {report:?}",
            principal.user
        );
        Ok(Response::new(FlushResponse {
            segments_written: report.segments_written as u64,
            rows_written: report.rows_written,
            wal_files_removed: report.wal_files_removed as u64,
        }))
    }

    async fn compact(
        &self,
        request: Request<CompactRequest>,
    ) -> Result<Response<CompactResponse>, Status> {
        let principal = caller(&request)?;
        super::actions::require(&self.metrics, INTERFACE, &principal, Permission::Compact)?;
        let r = self
            .engine
            .run_to_completion(|e| async move { e.compact().await })
            .await
            .map_err(ingest_status)?;
        info!(
            "compaction requested by {} over gRPC: {r:?}",
            principal.user
        );
        Ok(Response::new(CompactResponse {
            partitions: r.partitions as u64,
            segments_before: r.segments_before as u64,
            segments_after: r.segments_after as u64,
            segments_merged: r.segments_merged as u64,
            segments_written: r.segments_written as u64,
            rows: r.rows,
            bytes_before: r.bytes_before,
            bytes_after: r.bytes_after,
            rows_stamped: r.rows_stamped,
            seconds: r.seconds,
        }))
    }

    async fn stats(
        &self,
        request: Request<StatsRequest>,
    ) -> Result<Response<StatsResponse>, Status> {
        caller(&request)?;
        let manifest = self.engine.manifest();
        let tables = self
            .engine
            .buffer_usage()
            .into_iter()
            .map(|usage| {
                let live = manifest.segments(usage.table);
                let segment_rows = manifest.total_rows(usage.table);
                TableStats {
                    table: usage.table.to_string(),
                    buffered_rows: usage.rows as u64,
                    buffered_bytes: usage.bytes as u64,
                    segments: live.len() as u64,
                    segment_rows,
                    segment_bytes: live.iter().map(|s| s.bytes).sum(),
                    rows: segment_rows + usage.rows as u64,
                }
            })
            .collect();
        let (wal_files, wal_bytes) = self.engine.wal_usage().map_err(ingest_status)?;
        Ok(Response::new(StatsResponse {
            tables,
            wal_bytes,
            wal_files: wal_files as u64,
            uptime_secs: self.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn health(
        &self,
        _request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            authentication: self.auth.is_some(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_name_row_column_and_value() {
        let e = IngestError::Invalid(ValidationError::BadValue {
            row: 3,
            column: "value".into(),
            value: "NaN".into(),
            problem: "is not finite".into(),
        });
        let error = row_error(2, &e);
        assert_eq!((error.request, error.row), (2, Some(3)));
        assert_eq!(
            (error.column.as_str(), error.value.as_str()),
            ("value", "NaN")
        );
        let too_large = row_error(
            0,
            &IngestError::TooLarge {
                bytes: 10,
                limit: 5,
            },
        );
        assert_eq!(too_large.row, None);
        assert!(too_large.reason.contains("limit"), "{}", too_large.reason);
    }
}
