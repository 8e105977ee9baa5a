//! Fuzzes what the server does with the bytes of a gRPC `lotline.v1` write
//! before the engine sees it: protobuf decoding of `WriteRequest` and
//! `ContextRequest` (prost, with the generated types of `proto/`), the
//! mapping of a write request onto `samples`
//! (`src/connect/grpc_samples.rs`) and the validation of that batch
//! (`src/model/`, the files the server compiles).
//!
//! Checked: no panic; every decoded sample becomes one row; validation
//! either accepts the batch with as many rows or refuses it naming a row
//! that exists.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

#[allow(clippy::all, dead_code)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/lotline.v1.rs"));
}

#[path = "../../src/model/mod.rs"]
#[allow(dead_code)]
mod model;

#[path = "../../src/connect/grpc_samples.rs"]
mod grpc_samples;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = proto::WriteRequest::decode(data) {
        let batch = grpc_samples::to_samples(&request);
        assert_eq!(batch.num_rows(), request.samples.len());
        match model::normalize_batch(model::samples(), &batch, 0) {
            Ok(normalized) => assert_eq!(normalized.num_rows(), batch.num_rows()),
            Err(model::ValidationError::BadValue { row, .. } | model::ValidationError::Null { row, .. }) => {
                assert!(row < batch.num_rows(), "row {row} of {}", batch.num_rows())
            }
            Err(_) => {}
        }
    }
    let _ = proto::ContextRequest::decode(data);
});
