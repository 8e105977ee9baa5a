//! The writer's side of the group commit: a request's parts and audit
//! events go to the WAL thread ([`super::commit`]) after the free-space and
//! buffer-room checks (and, for the table kept to one row per key, the key
//! guard's admission, under the same lock as the send); once durable, its
//! rows reach the caches (last values, genealogy, corrections, stamping)
//! in a task that outlives the caller.

use std::sync::Arc;

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use super::wal::WalError;
use super::{Engine, IngestError, commit, corrections, unique_keys};
use crate::model::{self, Cache};

impl Engine {
    /// Appends an encoded record of `batches` (stored schema) to the WAL and,
    /// once durable, to the buffer and the caches.
    /// `event` gives the audit entry of the write from its row count.
    pub(super) async fn commit(
        &self,
        id: usize,
        normalized: Vec<RecordBatch>,
        record: Vec<u8>,
        event: impl FnOnce(usize) -> crate::audit::Event,
    ) -> Result<usize, IngestError> {
        let rows = normalized.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(0);
        }
        let part = commit::Part::new(id, record, normalized);
        self.commit_parts(vec![part], vec![event(rows)]).await?;
        Ok(rows)
    }

    /// Appends the encoded records of `parts` and the audit `events` to the
    /// WAL as one group record (after a crash all of it is there or none)
    /// and, once durable, the parts' rows to their buffers (under one state
    /// lock) and to the caches.
    pub(super) async fn commit_parts(
        &self,
        parts: Vec<commit::Part>,
        events: Vec<crate::audit::Event>,
    ) -> Result<(), IngestError> {
        self.commit_admitted(parts, events, None).await.map(|_| ())
    }

    /// [`Engine::commit_parts`] of a write of the table with a key guard,
    /// whose `keys` the guard admits right before the WAL append. Returns
    /// `false` if it does not admit them (then nothing was sent).
    ///
    /// Once sent, the write runs to its end in a task of its own (its rows
    /// reach the caches even if the caller goes away): the key guard and
    /// the corrections map must see every row the WAL holds.
    pub(super) async fn commit_admitted(
        &self,
        parts: Vec<commit::Part>,
        events: Vec<crate::audit::Event>,
        keys: Option<&unique_keys::KeySpan>,
    ) -> Result<bool, IngestError> {
        self.check_free_space()?;
        self.wait_for_buffer_room().await?;
        let gate = self.merge_gate.clone().read_owned().await;
        let applied: Vec<(usize, Vec<RecordBatch>)> =
            parts.iter().map(|p| (p.table, p.batches.clone())).collect();
        let (reply, done) = oneshot::channel();
        {
            // Admitted and sent under one lock: WAL order is admission order.
            let _admitted = match (keys, &self.keys) {
                (Some(span), Some(guard)) => match guard.admit(span) {
                    unique_keys::Admission::New(held) => Some(held),
                    unique_keys::Admission::Late => return Ok(false),
                },
                _ => None,
            };
            self.wal
                .send(commit::Command::Append {
                    parts,
                    events,
                    reply,
                })
                .map_err(|_| WalError::Closed)?;
        }
        let engine = self.me.upgrade().expect("the engine outlives its calls");
        tokio::spawn(async move {
            let _gate = gate;
            done.await.map_err(|_| WalError::Closed)??;
            for (id, normalized) in applied {
                engine.merge_caches(id, &normalized)?;
            }
            Ok(true)
        })
        .await
        .map_err(|e| IngestError::Internal(format!("commit task: {e}")))?
    }

    /// Waits until every write sent to the WAL before is in the buffers (or refused).
    pub(super) async fn wal_barrier(&self) -> Result<(), IngestError> {
        let (reply, done) = oneshot::channel();
        self.wal
            .send(commit::Command::Barrier { reply })
            .map_err(|_| WalError::Closed)?;
        done.await.map_err(|_| WalError::Closed)?;
        Ok(())
    }

    /// Feeds durable rows of table `id` (stored schema) to its caches.
    pub(super) fn merge_caches(
        &self,
        id: usize,
        normalized: &[RecordBatch],
    ) -> Result<(), IngestError> {
        if let Some(cache) = &self.last_values[id] {
            let mut cache = cache.lock().expect("last values lock");
            for batch in normalized {
                cache.merge(batch);
            }
        }
        if let Some((_, index)) = self.genealogy.as_ref().filter(|(t, _)| *t == id) {
            let mut index = index.write().expect("genealogy index lock");
            for batch in normalized {
                index.merge(batch)?;
            }
        }
        if let Some((_, map)) = self.corrections.as_ref().filter(|(t, _)| *t == id) {
            // Copy on write: queries hold the previous map while they run.
            let mut map = map.write().expect("corrections lock");
            let map = Arc::make_mut(&mut map);
            for batch in normalized {
                corrections::merge(map, batch)?;
            }
        }
        let def = model::tables()[id];
        if def.has_cache(Cache::Stamping) {
            let mut index = self.stamp_index.write().expect("stamp index lock");
            for batch in normalized {
                index.merge(def, batch)?;
            }
        }
        Ok(())
    }
}
