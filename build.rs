//! Compiles `proto/lotline/v1/*.proto` into the gRPC services of
//! [`lotline::proto`], and the Sparkplug B payload (messages only) that the
//! Sparkplug collector decodes, with protox (a protobuf compiler in Rust), so
//! building lotline needs no system `protoc`.

use std::path::Path;

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &["lotline/v1/ingest.proto", "lotline/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let files: Vec<_> = PROTOS
        .iter()
        .map(|p| Path::new(PROTO_ROOT).join(p))
        .collect();
    let descriptors = protox::compile(&files, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    let sparkplug = protox::compile(["proto/sparkplug_b/payload.proto"], [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(sparkplug)?;
    Ok(())
}
