//! Flushing: the write buffer goes to Parquet segments, the manifest is
//! switched atomically, the WAL before the rotation point is removed; by
//! size, bytes and age in the background, or on request.

use std::time::Instant;

use super::*;

/// What a flush did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FlushReport {
    pub segments_written: usize,
    pub rows_written: u64,
    pub wal_files_removed: usize,
    /// Buffered samples that got a work order and lot only now (their run
    /// was recorded after them).
    pub rows_stamped: u64,
}

/// Longest wait between attempts of a background job that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Flush outcomes so far, for writers waiting for room and for `/health`.
#[derive(Debug, Default)]
pub(super) struct FlushHealth {
    /// The first failure since the last success.
    failing_since: Option<Instant>,
    /// Failed attempts since the last success.
    attempts: u64,
    error: String,
}

/// Flushes have been failing: for how long, how many attempts, the last error.
#[derive(Debug, Clone)]
pub struct FlushFailure {
    pub failing_for: Duration,
    pub attempts: u64,
    pub error: String,
}

impl Engine {
    /// A buffer's size makes a flush due; so does the age of any buffer, or
    /// rows left frozen by a failed flush, but `audit_log`'s: every flush
    /// appends one audit entry (its segment lineage), and if that alone made
    /// a flush due, each flush would cause the next (even by size, with a
    /// tiny `flush_rows` or `flush_bytes`). Audit entries are durable in the
    /// WAL meanwhile and go out with the next flush of data.
    fn needs_flush(&self) -> bool {
        let state = self.state.read().expect("state lock");
        let audit = write_audit::audit_table_id() as usize;
        state.buffers.iter().enumerate().any(|(id, b)| {
            let by_size = b.active_rows >= self.config.flush_rows
                || b.active_bytes >= self.config.flush_bytes;
            if id == audit {
                return by_size && b.active_rows > 1;
            }
            by_size
                || !b.frozen.is_empty()
                || b.active_since
                    .is_some_and(|t| t.elapsed() >= self.config.flush_age)
        })
    }

    /// Applies backpressure: returns once the buffers hold fewer than
    /// `max_buffered_rows` rows and `max_buffered_bytes` bytes (the
    /// background flusher drains them). Refuses after `max_write_wait`,
    /// naming the flush error if flushes are failing, so a writer is never
    /// left without an answer.
    pub(super) async fn wait_for_buffer_room(&self) -> Result<(), IngestError> {
        let started = Instant::now();
        loop {
            let (rows, bytes) = self.total_buffered();
            if rows < self.config.max_buffered_rows && bytes < self.config.max_buffered_bytes {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.config.max_write_wait {
                let cause = match self.flush_failure() {
                    Some(f) => format!(
                        "flushing has failed for {} s ({} attempts): {}",
                        f.failing_for.as_secs(),
                        f.attempts,
                        f.error
                    ),
                    None => format!("flushes freed no room within {} s", waited.as_secs()),
                };
                return Err(IngestError::BufferFull { rows, bytes, cause });
            }
            if waited.is_zero() {
                tracing::debug!("write buffer full; writer waits for a flush");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Refuses a write up front when the WAL's or the segments' filesystem
    /// has less free space than `min_free_bytes` ([`IngestError::DiskFull`]).
    pub fn check_free_space(&self) -> Result<(), IngestError> {
        let reserve = self.config.min_free_bytes;
        if reserve == 0 {
            return Ok(());
        }
        let dir = &self.config.data_dir;
        for path in [dir.join("wal"), dir.join("tables")] {
            let free = storage::free_bytes(&path).map_err(|source| StorageError::Io {
                path: path.clone(),
                source,
            })?;
            if free < reserve {
                return Err(IngestError::DiskFull {
                    path,
                    free,
                    reserve,
                });
            }
        }
        Ok(())
    }

    /// Whether flushes are failing: since when, how often, the last error.
    pub fn flush_failure(&self) -> Option<FlushFailure> {
        let health = self.flush_health.lock().expect("flush health lock");
        health.failing_since.map(|since| FlushFailure {
            failing_for: since.elapsed(),
            attempts: health.attempts,
            error: health.error.clone(),
        })
    }

    fn note_flush<T>(&self, result: &Result<T, IngestError>) {
        let mut health = self.flush_health.lock().expect("flush health lock");
        match result {
            Ok(_) => {
                if health.failing_since.take().is_some() {
                    info!(
                        "flushing works again after {} failed attempt(s)",
                        health.attempts
                    );
                }
                health.attempts = 0;
            }
            Err(e) => {
                health.failing_since.get_or_insert_with(Instant::now);
                health.attempts += 1;
                health.error = e.to_string();
            }
        }
    }

    /// Writes every buffered row to segments, commits the manifest and
    /// truncates the WAL. Rows stay visible throughout; on error nothing
    /// becomes live and the rows stay buffered and in the WAL for a retry.
    pub async fn flush(&self) -> Result<FlushReport, IngestError> {
        let guard = self.flush_lock.lock().await;
        self.flush_locked(guard).await
    }

    /// [`Self::flush`] if one is still due once the flush lock is ours (a
    /// flush that ran meanwhile may have written everything).
    async fn flush_if_due(&self) -> Result<(), IngestError> {
        let guard = self.flush_lock.lock().await;
        if self.needs_flush() {
            self.flush_locked(guard).await?;
        }
        Ok(())
    }

    /// Every flush, on request or in the background: its outcome is noted
    /// for writers waiting for room and for `/health`.
    async fn flush_locked(
        &self,
        guard: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<FlushReport, IngestError> {
        let result = self.write_out(guard).await;
        self.note_flush(&result);
        result
    }

    async fn write_out(
        &self,
        guard: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<FlushReport, IngestError> {
        let gate = self.merge_gate.write().await;
        let (reply, rotated) = oneshot::channel();
        self.wal
            .send(commit::Command::Rotate { reply })
            .map_err(|_| WalError::Closed)?;
        let replay_from = rotated.await.map_err(|_| WalError::Closed)??;
        let snapshots: Vec<Option<RecordBatch>> = self
            .last_values
            .iter()
            .map(|c| {
                c.as_ref()
                    .map(|c| c.lock().expect("last values lock").batch())
            })
            .collect();
        drop(gate);
        let (mut manifest, frozen) = {
            let state = self.state.read().expect("state lock");
            let frozen: Vec<Vec<RecordBatch>> =
                state.buffers.iter().map(|b| b.frozen.clone()).collect();
            (state.manifest.clone(), frozen)
        };
        let before = manifest.clone();
        let data_dir = self.config.data_dir.clone();
        let disk = self.config.disk.clone();
        let options = self.config.segment.clone();
        let stamp_index = self.config.stamping.then(|| self.stamp_index.clone());
        let (manifest, report) = tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
            let mut report = FlushReport::default();
            let mut written: Vec<SegmentMeta> = Vec::new();
            let result = (|| {
                for (def, batches) in model::tables().iter().zip(frozen) {
                    // Samples written before their run was recorded: the
                    // flush rewrites them anyway, so stamp them now.
                    let batches = match &stamp_index {
                        Some(index) if def.name == model::samples().name => {
                            let index = index.read().expect("stamp index lock");
                            let (stamped, counts) = index.stamp_all(batches)?;
                            report.rows_stamped += counts.stamped;
                            stamped
                        }
                        _ => batches,
                    };
                    let metas = segment::write_segments(
                        &data_dir,
                        def,
                        &batches,
                        &mut manifest.next_segment_id,
                        &options,
                    )?;
                    written.extend(metas.iter().cloned());
                    manifest
                        .tables
                        .entry(def.name.to_string())
                        .or_default()
                        .extend(metas);
                }
                for (def, snapshot) in model::tables().iter().zip(&snapshots) {
                    if let Some(batch) = snapshot.as_ref().filter(|b| b.num_rows() > 0) {
                        let file = last_value_cache::snapshot_file(def.name, replay_from);
                        last_value_cache::store_snapshot(&*disk, &data_dir, &file, batch)?;
                        manifest.last_values.insert(def.name.to_string(), file);
                    }
                }
                manifest.wal_replay_from = replay_from;
                manifest.store(&*disk, &data_dir).map_err(IngestError::from)
            })();
            if let Err(e) = result {
                storage::remove_uncommitted(&*disk, &data_dir, &written);
                return Err(e);
            }
            report.segments_written = written.len();
            report.rows_written = written.iter().map(|m| m.rows).sum();
            Ok((manifest, report))
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))??;
        {
            let mut state = self.state.write().expect("state lock");
            let retired = state.set_manifest(manifest.clone(), &self.config.data_dir);
            assert!(retired.is_empty(), "a flush only adds segments");
            for buffer in &mut state.buffers {
                buffer.clear_frozen();
            }
        }
        storage::crash_point("segments-committed");
        let graveyard = self.state.read().expect("state lock").graveyard.clone();
        graveyard.sweep();
        self.record_segments(&before, &manifest, "flush").await;
        let mut report = report;
        let disk = &*self.config.disk;
        last_value_cache::remove_stale_snapshots(disk, &self.config.data_dir, &self.manifest())?;
        let wal_dir = self.config.data_dir.join("wal");
        report.wal_files_removed = remove_wal_before(&*self.config.disk, &wal_dir, replay_from)?;
        if report.rows_written > 0 {
            info!(
                "flushed {} rows into {} segment(s); removed {} WAL file(s)",
                report.rows_written, report.segments_written, report.wal_files_removed
            );
            // The buffer just written is free now; without this the resident
            // size keeps the peak of every flush (see `memory`). Outside the
            // flush lock: the trim walks every arena and need not hold up a
            // compaction's switch.
            drop(guard);
            if let Ok(Some(took)) = tokio::task::spawn_blocking(memory::release_after_flush).await {
                tracing::debug!("released free memory to the OS in {took:?}");
            }
        }
        Ok(report)
    }

    /// Flushes in the background whenever a table's buffer reaches
    /// `flush_rows` or `flush_bytes`, or its oldest row `flush_age`.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_periodic(
            Duration::from_millis(200),
            Engine::needs_flush,
            |e| async move { e.flush_if_due().await },
            "background flush failed (rows stay in the WAL and buffer)",
        )
    }

    /// Every `every`, runs `job` to completion if `due` says so, until the
    /// engine is dropped; a failure is logged as `failed` and retried at
    /// the next tick that finds the job due.
    pub(super) fn spawn_periodic<T, Fut>(
        self: &Arc<Self>,
        every: Duration,
        due: fn(&Engine) -> bool,
        job: fn(Arc<Engine>) -> Fut,
        failed: &'static str,
    ) -> tokio::task::JoinHandle<()>
    where
        Fut: std::future::Future<Output = Result<T, IngestError>> + Send + 'static,
        T: Send + 'static,
    {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // After a failure, wait twice as long as before (up to
            // MAX_BACKOFF) before the next attempt: a full disk is not hammered
            // and does not fill the log.
            let mut backoff = Duration::ZERO;
            loop {
                tick.tick().await;
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                if due(&engine) {
                    match engine.run_to_completion(job).await {
                        Ok(_) => backoff = Duration::ZERO,
                        Err(e) => {
                            backoff = (backoff * 2).clamp(every, MAX_BACKOFF);
                            tracing::error!("{failed}: {e} (next attempt in {backoff:?})");
                            drop(engine);
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
        })
    }
}
