//! lotline: a factory historian and traceability query engine.
//!
//! Writers send tag samples and production context through [`ingest::Engine`]
//! (durable WAL, write buffer, Parquet segments); readers ask SQL through
//! DataFusion ([`query`]) over Arrow Flight SQL ([`server`]).

pub mod audit;
pub mod bench;
pub mod client;
pub mod collect;
pub mod config;
pub mod connect;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod inspect;
pub mod integrate;
pub mod model;
pub mod proto;
pub mod query;
pub mod server;
pub mod storage;
