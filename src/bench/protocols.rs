//! The three ways `lotline bench` ingests the same samples, each one durable
//! acknowledged request per batch: Flight SQL bulk ingest
//! (`CommandStatementIngest`), the gRPC `lotline.v1` `IngestService.Write`
//! (one call of one request), and InfluxDB line protocol over HTTP
//! (`POST /api/v2/write`). Payloads are encoded before the clock starts, so
//! what is measured is the network and the server.

use std::fmt::Write as _;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};
use arrow_flight::sql::CommandStatementIngest;
use arrow_flight::sql::client::FlightSqlServiceClient;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::client::{self, ClientError, ConnectArgs};
use crate::generate::output::ingest_batch;
use crate::proto::ingest_service_client::IngestServiceClient;
use crate::proto::{Sample, WriteRequest};

/// An ingest interface of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Arrow Flight SQL bulk ingest (CommandStatementIngest)
    Flight,
    /// gRPC lotline.v1 IngestService.Write
    Grpc,
    /// InfluxDB line protocol, POST /api/v2/write on the HTTP listener
    Line,
}

impl Protocol {
    /// The name `--protocols` takes.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Flight => "flight",
            Protocol::Grpc => "grpc",
            Protocol::Line => "line",
        }
    }
}

/// One request, encoded for its protocol.
pub enum Payload {
    Flight(RecordBatch),
    Grpc(WriteRequest),
    Line(Bytes),
}

/// Encodes a bench batch (columns tag, ts, value, quality) for `protocol`.
pub fn encode(protocol: Protocol, batch: RecordBatch) -> Payload {
    let tag = batch.column(0).as_string::<i32>();
    let ts = batch.column(1).as_primitive::<TimestampNanosecondType>();
    let value = batch.column(2).as_primitive::<Float64Type>();
    let quality = batch.column(3).as_primitive::<UInt32Type>();
    let rows = 0..batch.num_rows();
    match protocol {
        Protocol::Flight => Payload::Flight(batch),
        Protocol::Grpc => Payload::Grpc(WriteRequest {
            samples: rows
                .map(|i| Sample {
                    tag: tag.value(i).to_string(),
                    ts_ns: ts.value(i),
                    value: Some(value.value(i)),
                    quality: quality.value(i),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        Protocol::Line => {
            // Field `value` names no suffix: the tag is the measurement, as in
            // the other protocols. The bench's qualities are all Good (0).
            let mut body = String::with_capacity(batch.num_rows() * 48);
            for i in rows {
                let _ = writeln!(
                    body,
                    "{} value={} {}",
                    tag.value(i),
                    value.value(i),
                    ts.value(i)
                );
            }
            Payload::Line(Bytes::from(body))
        }
    }
}

/// One writer's connection, speaking one protocol.
pub enum Writer {
    Flight {
        flight: FlightSqlServiceClient<Channel>,
        command: CommandStatementIngest,
    },
    Grpc {
        ingest: IngestServiceClient<Channel>,
        bearer: Option<MetadataValue<Ascii>>,
    },
    Line {
        http: HttpClient<HttpConnector, Full<Bytes>>,
        url: String,
        bearer: Option<String>,
    },
}

impl Writer {
    /// Opens a connection (and logs in) for `protocol`; `token` is a bearer
    /// token from a handshake, for gRPC and HTTP.
    pub async fn open(
        protocol: Protocol,
        connect: &ConnectArgs,
        http_endpoint: &str,
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        Ok(match protocol {
            Protocol::Flight => Writer::Flight {
                flight: client::connect(connect).await?,
                command: client::ingest_command("samples"),
            },
            Protocol::Grpc => Writer::Grpc {
                ingest: IngestServiceClient::new(client::channel(connect).await?)
                    .max_encoding_message_size(usize::MAX),
                bearer: token
                    .map(|t| format!("Bearer {t}").parse())
                    .transpose()
                    .map_err(|_| ClientError::Usage("token is not header text".into()))?,
            },
            Protocol::Line => Writer::Line {
                http: HttpClient::builder(TokioExecutor::new()).build_http(),
                url: format!("{}/api/v2/write", http_endpoint.trim_end_matches('/')),
                bearer: token.map(|t| format!("Bearer {t}")),
            },
        })
    }

    /// Sends one request and waits for its durable acknowledgement.
    pub async fn send(&mut self, payload: Payload) -> Result<(), ClientError> {
        match (self, payload) {
            (Writer::Flight { flight, command }, Payload::Flight(batch)) => {
                ingest_batch(flight, command, batch).await
            }
            (Writer::Grpc { ingest, bearer }, Payload::Grpc(request)) => {
                let rows = request.samples.len() as u64;
                let mut call = tonic::Request::new(futures::stream::iter([request]));
                if let Some(bearer) = bearer {
                    call.metadata_mut().insert("authorization", bearer.clone());
                }
                let reply = ingest
                    .write(call)
                    .await
                    .map_err(|s| ClientError::status("gRPC write", &s))?
                    .into_inner();
                match reply.errors.first() {
                    None if reply.accepted_rows == rows => Ok(()),
                    first => Err(ClientError::Usage(format!(
                        "gRPC write: {} of {rows} samples accepted: {}",
                        reply.accepted_rows,
                        first.map_or("", |e| e.reason.as_str())
                    ))),
                }
            }
            (Writer::Line { http, url, bearer }, Payload::Line(body)) => {
                let mut request = hyper::Request::post(url.as_str())
                    .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8");
                if let Some(bearer) = bearer {
                    request = request.header(hyper::header::AUTHORIZATION, bearer.as_str());
                }
                let request = request
                    .body(Full::new(body))
                    .map_err(|e| ClientError::Usage(format!("line protocol request: {e}")))?;
                let fail = |message: String| ClientError::Flight {
                    context: format!("POST {url}"),
                    message,
                };
                let response = http
                    .request(request)
                    .await
                    .map_err(|e| fail(client::error_chain(&e)))?;
                let status = response.status();
                // Read the body even on success, so the connection is reused.
                let text = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .to_bytes();
                if status == hyper::StatusCode::NO_CONTENT {
                    Ok(())
                } else {
                    Err(fail(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&text)
                    )))
                }
            }
            _ => Err(ClientError::Usage(
                "a payload was sent to a writer of another protocol".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ingest::{START_NS, bench_batch};

    #[test]
    fn every_protocol_carries_the_same_samples() {
        let batch = bench_batch(1, 3, 2, START_NS);
        let Payload::Grpc(request) = encode(Protocol::Grpc, batch.clone()) else {
            panic!("not a gRPC payload")
        };
        let Payload::Line(body) = encode(Protocol::Line, batch.clone()) else {
            panic!("not a line payload")
        };
        let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
        assert_eq!(lines.len(), 3);
        for (sample, line) in request.samples.iter().zip(&lines) {
            let value = sample.value.unwrap();
            assert_eq!(
                *line,
                format!("{} value={value} {}", sample.tag, sample.ts_ns)
            );
        }
        // Row 3 of the run: tag 1 at second 1.
        assert_eq!(request.samples[0].tag, "bench.t00001");
        assert_eq!(request.samples[0].ts_ns, START_NS + 1_000_000_000);
    }
}
