//! The prepared-statement handle on the wire: a protobuf message with the
//! SQL text, the bound parameters as an Arrow IPC stream, and the
//! statement's random id. Clients hand it back on every call, so decoding
//! treats it as hostile: the IPC stream passes [`super::ipc_guard`] before
//! Arrow reads it. No server state here, so the fuzz target `ipc_guard`
//! compiles this file as it is.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use prost::Message;

use super::ipc_guard;

/// Bumped when the handle's layout changes, so an old handle is refused
/// clearly instead of being misread.
const HANDLE_VERSION: u32 = 1;

/// Bound query parameters travel in the handle, through every client call;
/// bulk data belongs in ingest or in a prepared INSERT's own DoPut.
pub const MAX_HANDLE_PARAMETER_BYTES: usize = 4 << 20;

/// Why bytes are not a handle lotline made.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("not a lotline prepared statement handle ({0}); prepare the statement again")]
    BadHandle(String),
    #[error("bound parameters: {0}")]
    Arrow(#[from] ArrowError),
}

/// The handle's wire form (protobuf, like the rest of Flight SQL).
#[derive(Clone, PartialEq, prost::Message)]
struct HandleMessage {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(string, tag = "2")]
    sql: String,
    /// An Arrow IPC stream; empty when nothing is bound.
    #[prost(bytes = "bytes", tag = "3")]
    parameters: Bytes,
    /// The statement's identity, under which the server keeps what was last
    /// bound to it ([`super::bound_parameters`]); 16 bytes, big-endian.
    #[prost(bytes = "bytes", tag = "4")]
    id: Bytes,
}

/// A prepared statement: its SQL and the parameters bound for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Handle {
    pub sql: String,
    pub parameters: Option<RecordBatch>,
    /// Random, given when the statement is prepared; 0 in handles made
    /// before there were ids.
    pub id: u128,
}

impl Handle {
    pub fn encode(&self) -> Result<Bytes, HandleError> {
        let parameters = match &self.parameters {
            None => Bytes::new(),
            Some(batch) => {
                let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
                writer.write(batch)?;
                Bytes::from(writer.into_inner()?)
            }
        };
        let message = HandleMessage {
            version: HANDLE_VERSION,
            sql: self.sql.clone(),
            parameters,
            id: Bytes::copy_from_slice(&self.id.to_be_bytes()),
        };
        Ok(message.encode_to_vec().into())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, HandleError> {
        let message =
            HandleMessage::decode(bytes).map_err(|e| HandleError::BadHandle(e.to_string()))?;
        if message.version != HANDLE_VERSION {
            return Err(HandleError::BadHandle(format!(
                "version {} instead of {HANDLE_VERSION}",
                message.version
            )));
        }
        let parameters = if message.parameters.is_empty() {
            None
        } else {
            // Client bytes: lengths are checked before Arrow allocates by them.
            ipc_guard::check_stream(&message.parameters, MAX_HANDLE_PARAMETER_BYTES)
                .map_err(|e| HandleError::BadHandle(e.to_string()))?;
            Some(read_parameters(message.parameters)?)
        };
        let id = match message.id.len() {
            0 => 0,
            16 => u128::from_be_bytes(message.id[..].try_into().expect("16 bytes")),
            n => return Err(HandleError::BadHandle(format!("an id of {n} bytes"))),
        };
        Ok(Self {
            sql: message.sql,
            parameters,
            id,
        })
    }
}

/// The bound parameters' IPC stream as one batch. The guard checks what
/// Arrow's decoder is known to panic on; should it still panic on something,
/// that is a refusal too.
fn read_parameters(stream: Bytes) -> Result<RecordBatch, HandleError> {
    let decode = || -> Result<RecordBatch, HandleError> {
        let reader = StreamReader::try_new(Cursor::new(stream), None)?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        Ok(concat_batches(&schema, &batches)?)
    };
    std::panic::catch_unwind(decode).unwrap_or_else(|_| {
        Err(HandleError::BadHandle(
            "the bound parameters are not a well-formed Arrow IPC stream".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_arrow_cannot_decode_are_refused_not_a_panic() {
        // Found by the fuzz target: a validity buffer shorter than its rows.
        let stream = include_bytes!("../../fuzz/seeds/ipc_guard/short-validity-buffer.arrows");
        let message = HandleMessage {
            version: HANDLE_VERSION,
            sql: "SELECT $1".into(),
            parameters: Bytes::from_static(stream),
            id: Bytes::new(),
        };
        assert!(Handle::decode(&message.encode_to_vec()).is_err());
    }
}
