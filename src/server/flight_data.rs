//! The small pieces every Flight SQL handler uses: the boxed stream type of
//! streaming answers, FlightInfo for a ticket that is the command itself,
//! record batches as Flight data, and ingest errors as gRPC statuses.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::ProstMessageExt;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Response, Status};

use crate::ingest::IngestError;

/// A streaming answer of a Flight call.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// An ingest error as the status a client sees: its own fault or ours.
pub fn ingest_status(e: IngestError) -> Status {
    Status::new(ingest_code(&e), e.to_string())
}

/// The gRPC code of a refused write: the server's state (`Unavailable`,
/// `ResourceExhausted`: retry later), the client's request
/// (`InvalidArgument`) or a fault (`Internal`).
pub fn ingest_code(e: &IngestError) -> tonic::Code {
    if e.is_unavailable() {
        tonic::Code::Unavailable
    } else if e.is_resource_exhausted() {
        tonic::Code::ResourceExhausted
    } else if e.is_client_error() {
        tonic::Code::InvalidArgument
    } else {
        tonic::Code::Internal
    }
}

/// A FlightInfo whose single endpoint's ticket is `command` itself.
pub fn info_for(
    command: impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor))
}

/// A single metadata batch as a DoGet stream.
pub(super) fn one_batch(
    schema: Arc<Schema>,
    batch: Result<arrow::array::RecordBatch, FlightError>,
) -> Response<BoxStream<arrow_flight::FlightData>> {
    encode_batches(schema, futures::stream::once(async { batch }))
}

/// Streams record batches as Flight data.
pub fn encode_batches(
    schema: Arc<Schema>,
    batches: impl Stream<Item = Result<arrow::array::RecordBatch, FlightError>> + Send + 'static,
) -> Response<BoxStream<arrow_flight::FlightData>> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}
