//! Generates the `lotline.v1` message types (no gRPC services) from the
//! repository's `proto/`, as the server's build does, for the
//! `grpc_messages` target.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("../proto");
    println!("cargo:rerun-if-changed=../proto");
    let files = ["lotline/v1/ingest.proto", "lotline/v1/admin.proto"].map(|f| root.join(f));
    let descriptors = protox::compile(files, [root])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
