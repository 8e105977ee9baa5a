//! Connectors: protocols that writers already speak, translated into lotline
//! tables. Each connector is a pure translation (bytes in, Arrow batches
//! out); the network side that receives the bytes lives in `server`.
//!
//! - [`line_protocol`]: InfluxDB line protocol (Telegraf, Node-RED, PLC
//!   gateways), parsed into [`line_protocol::Point`]s;
//! - [`line_samples`]: those points mapped onto the `samples` table;
//! - [`grpc_samples`]: gRPC `WriteRequest`s mapped onto the `samples` table.

pub mod grpc_samples;
pub mod line_protocol;
pub mod line_samples;
