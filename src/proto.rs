//! The `lotline.v1` gRPC API, generated at build time from
//! `proto/lotline/v1/*.proto` (see `build.rs`): `IngestService` (client-streaming
//! writes of samples and of context events) and `AdminService` (flush, stats, health), with their
//! tonic clients and servers. The server side lives in [`crate::server::grpc`].

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("lotline.v1");
