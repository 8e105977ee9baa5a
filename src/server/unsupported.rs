//! What lotline's Flight SQL service does not do, answered clearly: each
//! refusal says what is not supported and what to do instead, so a client's
//! user sees more than "not implemented". Also CancelFlightInfo, which
//! stateless tickets cannot honour (see [`cancel_flight_info`]).

use arrow_flight::sql::ActionCancelQueryResult;
use arrow_flight::{ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use bytes::Bytes;
use prost::Message;
use tonic::Status;
use tracing::info;

/// The Flight RPC action that asks to cancel a FlightInfo's statement.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// `ActionCancelQueryResult.CancelResult.CANCEL_RESULT_NOT_CANCELLABLE`
/// (arrow-flight does not export the enum).
const CANCEL_RESULT_NOT_CANCELLABLE: i32 = 3;

pub fn transactions() -> Status {
    Status::unimplemented(
        "transactions and savepoints are not supported: lotline commits every statement and \
         every ingest request on its own, each atomically (all its rows or none); run without \
         a transaction (autocommit)",
    )
}

/// Refuses a request that names a transaction (see [`transactions`]).
pub fn no_transaction(id: &Option<Bytes>) -> Result<(), Status> {
    match id {
        Some(_) => Err(transactions()),
        None => Ok(()),
    }
}

pub fn substrait() -> Status {
    Status::unimplemented(
        "Substrait plans are not supported: send SQL text instead (CommandStatementQuery, \
         CommandStatementUpdate, or CreatePreparedStatement for parameters)",
    )
}

pub fn exchange() -> Status {
    Status::unimplemented(
        "DoExchange is not supported: query with GetFlightInfo/DoGet and write with DoPut \
         (CommandStatementIngest, CommandStatementUpdate or a prepared statement)",
    )
}

/// A Flight SQL command lotline does not know for this call.
pub fn command(call: &str, type_url: &str) -> Status {
    Status::unimplemented(format!(
        "{call} with {type_url} is not supported by lotline; see the Flight SQL section of \
         docs/INTERFACES.md for the commands it serves"
    ))
}

pub fn cancel_flight_info_type() -> ActionType {
    ActionType {
        r#type: CANCEL_FLIGHT_INFO.into(),
        description: "Answers NOT_CANCELLABLE: statements run only while their DoGet stream is \
                      open; cancel that call to stop one"
            .into(),
    }
}

/// CancelFlightInfo. Tickets carry the statement itself, so a FlightInfo
/// holds nothing on the server and any replica may be running its DoGet:
/// there is nothing this call could stop. A statement runs only while its
/// DoGet stream is open, and ends when the client cancels that call, so the
/// answer is NOT_CANCELLABLE (retrying will not help).
pub fn cancel_flight_info(body: &[u8]) -> Result<Bytes, Status> {
    let request = CancelFlightInfoRequest::decode(body)
        .map_err(|e| Status::invalid_argument(format!("CancelFlightInfoRequest: {e}")))?;
    let endpoints = request.info.map_or(0, |i| i.endpoint.len());
    info!(
        "CancelFlightInfo ({endpoints} endpoint(s)): not cancellable; the client stops a \
         statement by cancelling its DoGet call"
    );
    let result = CancelFlightInfoResult {
        status: CancelStatus::NotCancellable as i32,
    };
    Ok(result.encode_to_vec().into())
}

/// The deprecated CancelQuery action, answered like CancelFlightInfo.
pub fn cancel_query() -> ActionCancelQueryResult {
    info!("CancelQuery: not cancellable; the client stops a statement by cancelling its DoGet");
    ActionCancelQueryResult {
        result: CANCEL_RESULT_NOT_CANCELLABLE,
    }
}
