//! A collector's writes on a task of their own, for protocols that push
//! (Sparkplug B): the protocol's loop hands readings over and goes on
//! reading (an MQTT session must answer its keep-alives), while the writer
//! task writes what arrived, in order, and everything that arrived during
//! one durable write goes into the next one. Under a load the sink cannot
//! take, the bounded queue makes the protocol loop wait.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::mapping::{Point, TagMeta};
use super::{Reading, Session};

/// Messages queued before the protocol loop waits.
const QUEUE: usize = 1024;
/// Readings one write takes at most.
const MAX_READINGS_PER_WRITE: usize = 200_000;

enum Batch {
    /// Tags of points added since the last message (points only grow).
    Tags(Vec<TagMeta>),
    Readings(Vec<Reading>),
}

/// The protocol loop's end of the writer task. Dropping it (the collector
/// stopped) stops the task: nothing is written after the collector stops.
pub(crate) struct Batched {
    queue: mpsc::Sender<Batch>,
    tags_sent: usize,
    writer: JoinHandle<()>,
}

impl Session {
    /// Starts the writer task of this collector.
    pub(crate) fn batched(&self) -> Batched {
        let (queue, mut received) = mpsc::channel::<Batch>(QUEUE);
        let session = self.clone();
        let writer = tokio::spawn(async move {
            let mut tags: Vec<TagMeta> = Vec::new();
            while let Some(first) = received.recv().await {
                let mut readings = Vec::new();
                let mut next = Some(first);
                while let Some(batch) = next.take() {
                    match batch {
                        Batch::Tags(new) => tags.extend(new),
                        Batch::Readings(more) => readings.extend(more),
                    }
                    if readings.len() < MAX_READINGS_PER_WRITE {
                        next = received.try_recv().ok();
                    }
                }
                session.write_tagged(|i| &tags[i], readings).await;
            }
        });
        Batched {
            queue,
            tags_sent: 0,
            writer,
        }
    }
}

impl Batched {
    /// Queues `readings` of `points` for the writer task; waits only while
    /// the queue is full.
    pub async fn write<A>(&mut self, points: &[Point<A>], readings: Vec<Reading>) {
        if points.len() > self.tags_sent {
            let new = points[self.tags_sent..]
                .iter()
                .map(|p| p.tag.clone())
                .collect();
            self.tags_sent = points.len();
            // The task ends only when this end is dropped.
            let _ = self.queue.send(Batch::Tags(new)).await;
        }
        if !readings.is_empty() {
            let _ = self.queue.send(Batch::Readings(readings)).await;
        }
    }
}

impl Drop for Batched {
    fn drop(&mut self) {
        self.writer.abort();
    }
}
