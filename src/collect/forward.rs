//! `lotline collect`: collectors at the edge. Samples go first to the
//! durable [`Queue`] ([`QueueSink`]), and a forwarder sends them in order to
//! a server's gRPC `IngestService.Write`, one queued batch per request, with
//! the request id `<queue instance>-<record number>`: a batch resent after a
//! lost acknowledgement (a network cut, the collector killed before it
//! recorded the acknowledgement) is not written twice. A batch leaves the
//! queue only when the server acknowledged it durably; while the server is
//! unreachable the forwarder retries with a backoff up to 30 s.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};
use async_trait::async_trait;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::queue::Queue;
use super::status::StatusBoard;
use super::{SampleSink, mapping::Mapping};
use crate::audit::Event;
use crate::model;
use crate::proto::ingest_service_client::IngestServiceClient;
use crate::proto::{Context, Sample, WriteRequest};

/// The queue as the collectors' sink: durable on the edge when `write`
/// returns.
pub struct QueueSink(pub Arc<Queue>);

#[async_trait]
impl SampleSink for QueueSink {
    async fn write(&self, _name: &str, samples: RecordBatch) -> Result<usize, String> {
        let rows = samples.num_rows();
        let queue = self.0.clone();
        tokio::task::spawn_blocking(move || queue.push(&samples))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(rows)
    }

    async fn audit(&self, event: Event) {
        // The edge has no audit trail of its own: its events go to the log.
        tracing::info!(
            "{} {}: {}",
            event.actor,
            event.action,
            event.detail.unwrap_or_default()
        );
    }
}

/// A `samples` batch as one gRPC write request.
fn to_request(batch: &RecordBatch, request_id: String) -> Result<WriteRequest, String> {
    let table = model::samples().name;
    let column =
        |name: &'static str| model::columns::strings(batch, table, name).map_err(|e| e.to_string());
    let tag = column("tag")?;
    let text = column("text")?;
    let equipment = column("equipment")?;
    let ts = batch
        .column_by_name("ts")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or("a queued batch without ts")?;
    let value = batch
        .column_by_name("value")
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .ok_or("a queued batch without value")?;
    let quality = batch
        .column_by_name("quality")
        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
        .ok_or("a queued batch without quality")?;
    let samples = (0..batch.num_rows())
        .map(|i| Sample {
            tag: tag.value(i).to_string(),
            ts_ns: ts.value(i),
            value: value.is_valid(i).then(|| value.value(i)),
            text: text.is_valid(i).then(|| text.value(i).to_string()),
            quality: quality.value(i),
            context: equipment.is_valid(i).then(|| Context {
                equipment: Some(equipment.value(i).to_string()),
                ..Default::default()
            }),
        })
        .collect();
    Ok(WriteRequest {
        samples,
        context: None,
        request_id,
    })
}

/// Sends the queue's batches to the server in order, for ever.
pub async fn forward(
    queue: Arc<Queue>,
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
) {
    let mut client = IngestServiceClient::new(channel).max_encoding_message_size(usize::MAX);
    let mut backoff = Duration::from_millis(200);
    let mut reachable = true;
    loop {
        let next = {
            let queue = queue.clone();
            tokio::task::spawn_blocking(move || queue.peek()).await
        };
        let (seq, batch) = match next {
            Ok(Ok(Some(next))) => next,
            Ok(Ok(None)) => {
                queue.pushed().await;
                continue;
            }
            Ok(Err(e)) => {
                tracing::error!("reading the store-and-forward queue: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => panic!("queue reader task failed: {e}"),
        };
        let request = match to_request(&batch, format!("{}-{seq}", queue.instance)) {
            Ok(request) => request,
            Err(e) => {
                tracing::error!("dropping queued batch {seq}, which is not samples: {e}");
                ack(&queue, seq).await;
                continue;
            }
        };
        let mut call = tonic::Request::new(futures::stream::iter([request]));
        if let Some(auth) = &authorization {
            call.metadata_mut().insert("authorization", auth.clone());
        }
        tracing::debug!("forwarding queued batch {seq}");
        match client.write(call).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                tracing::debug!("batch {seq}: {reply:?}");
                if let Some(error) = reply.errors.first() {
                    // The server will refuse it again: it is dropped, loudly.
                    tracing::error!(
                        "the server refused queued batch {seq} ({} rows): {}",
                        batch.num_rows(),
                        error.reason
                    );
                }
                if !reachable {
                    let (waiting, dropped) = queue.backlog();
                    tracing::info!(
                        "server reachable again: forwarding {waiting} queued batch(es) ({dropped} dropped while full)"
                    );
                    reachable = true;
                }
                backoff = Duration::from_millis(200);
                ack(&queue, seq).await;
            }
            Err(status) => {
                if reachable {
                    tracing::warn!(
                        "server unreachable, samples wait in the queue: {}",
                        status.message()
                    );
                    reachable = false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn ack(queue: &Arc<Queue>, seq: u64) {
    let queue = queue.clone();
    match tokio::task::spawn_blocking(move || queue.ack(seq)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("recording an acknowledgement in the queue: {e}"),
        Err(e) => panic!("queue task failed: {e}"),
    }
}

/// Runs `mapping`'s collectors into `queue` and forwards it; returns the
/// collectors' status board (the forwarder and collectors run as tasks).
pub fn run_edge(
    mapping: &Mapping,
    queue: Arc<Queue>,
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
) -> Arc<StatusBoard> {
    tokio::spawn(forward(queue.clone(), channel, authorization));
    super::Collectors::spawn(mapping, Arc::new(QueueSink(queue))).board()
}
