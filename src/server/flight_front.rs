//! The Flight service the server listens with: arrow-flight's Flight SQL
//! dispatch ([`LotlineFlightSql`]) plus what that dispatch leaves out.
//! `GetSchema` plans a statement and answers with its result schema (ADBC's
//! `execute_schema`) without running it; a `DoGet` ticket that is not a Flight
//! SQL command (influxdb3-python sends JSON) is refused saying what lotline
//! takes instead of with a protobuf decoding error. Every other call goes to
//! the Flight SQL service unchanged. Callers are verified before any of
//! this, by [`super::authenticate`].

use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{Any, Command};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::authenticate::caller;
use super::flight::{BoxStream, LotlineFlightSql};
use super::prepared::Handle;
use super::reason;

/// What a foreign ticket is told.
const TICKETS: &str = "lotline's DoGet takes the Flight SQL tickets its GetFlightInfo returns \
     (send SQL as a Flight SQL CommandStatementQuery, e.g. with ADBC, the Flight SQL JDBC \
     driver or pyarrow's Flight SQL client); InfluxDB 3's JSON tickets and other \
     non-Flight-SQL tickets are not supported";

/// lotline's Flight service; see the module documentation.
#[derive(Clone)]
pub struct FlightFront(pub LotlineFlightSql);

impl FlightFront {
    /// The result schema of the statement or command `descriptor` names.
    async fn schema_of(&self, request: Request<FlightDescriptor>) -> Result<Schema, Status> {
        let principal = caller(&request)?;
        let command = Any::decode(&*request.get_ref().cmd)
            .ok()
            .and_then(|any| Command::try_from(any).ok())
            .ok_or_else(|| {
                Status::invalid_argument(
                    "GetSchema takes a Flight SQL command (CommandStatementQuery, \
                     CommandPreparedStatementQuery or a catalog command) as the descriptor's cmd",
                )
            })?;
        // Statements are planned, never run: a write is not made by asking its schema.
        match command {
            Command::CommandStatementQuery(query) => {
                let who = reason::dml(&principal, &request)?;
                let frame = self.0.plan(&query.query, &principal, who).await?;
                Ok(frame.schema().as_arrow().clone())
            }
            Command::CommandPreparedStatementQuery(query) => {
                let who = reason::dml(&principal, &request)?;
                let handle = Handle::decode(&query.prepared_statement_handle)?;
                let (schema, _) = self.0.prepared_schema(&handle.sql, &principal, who).await?;
                Ok(schema)
            }
            _ => {
                // Catalog commands have no effect: their FlightInfo holds the schema.
                let info = FlightService::get_flight_info(&self.0, request).await?;
                info.into_inner()
                    .try_decode_schema()
                    .map_err(|e| Status::internal(e.to_string()))
            }
        }
    }
}

#[tonic::async_trait]
impl FlightService for FlightFront {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;
    type DoExchangeStream = BoxStream<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.0, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(
            "lotline lists no flights; ask for tables with Flight SQL GetTables",
        ))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&self.0, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        caller(&request)?;
        Err(Status::unimplemented(
            "lotline answers GetFlightInfo directly; call GetFlightInfo instead of PollFlightInfo",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let schema = self.schema_of(request).await?;
        let result = SchemaResult::try_from(SchemaAsIpc::new(&schema, &IpcWriteOptions::default()))
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        caller(&request)?;
        if Any::decode(&*request.get_ref().ticket).is_err() {
            return Err(Status::invalid_argument(format!(
                "the ticket is not a Flight SQL ticket: {TICKETS}"
            )));
        }
        FlightService::do_get(&self.0, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        // The token first: the Flight SQL dispatch reads the first message
        // (up to a whole request) to learn the command.
        caller(&request)?;
        FlightService::do_put(&self.0, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        caller(&request)?;
        FlightService::do_exchange(&self.0, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&self.0, request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        caller(&request)?;
        FlightService::list_actions(&self.0, request).await
    }
}
