//! Memory for queries: one server-wide budget that every statement draws
//! from, and a share no single statement may exceed. DataFusion's operators
//! reserve memory before they grow (hash tables, sorts, aggregations); where
//! they can spill to disk they do when their reservation is refused, and
//! where they cannot the statement fails with `ResourcesExhausted`, naming
//! the limit, instead of the process growing until it aborts.
//!
//! The server-wide pool is DataFusion's `FairSpillPool` (spilling operators
//! share what unspillable ones leave), tracked so that an error names the
//! largest consumers. Each statement's session gets a [`StatementPool`] over
//! it that also counts the statement's own total.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
};

/// The server's query memory: the shared pool and each statement's share.
#[derive(Debug, Clone)]
pub struct QueryMemory {
    server: Arc<dyn MemoryPool>,
    server_bytes: usize,
    per_statement: usize,
}

impl QueryMemory {
    /// A budget of `server_bytes` for all statements together, of which one
    /// statement may hold at most `per_statement` bytes.
    pub fn new(server_bytes: usize, per_statement: usize) -> Self {
        let pool = FairSpillPool::new(server_bytes);
        let tracked = TrackConsumersPool::new(pool, NonZeroUsize::new(3).expect("3 > 0"));
        Self {
            server: Arc::new(tracked),
            server_bytes,
            per_statement: per_statement.min(server_bytes),
        }
    }

    /// Half of the machine's memory for queries, a quarter of that per
    /// statement (4 GiB and 1 GiB where the machine's size is unknown).
    pub fn default_budget() -> (usize, usize) {
        let total = physical_memory().unwrap_or(8 << 30);
        let server = total / 2;
        (server, server / 4)
    }

    /// The pool one statement's session uses.
    pub fn for_statement(&self) -> Arc<dyn MemoryPool> {
        Arc::new(StatementPool {
            server: self.server.clone(),
            server_bytes: self.server_bytes,
            limit: self.per_statement,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes all running statements hold now.
    pub fn reserved(&self) -> usize {
        self.server.reserved()
    }
}

impl Default for QueryMemory {
    fn default() -> Self {
        let (server, per_statement) = Self::default_budget();
        Self::new(server, per_statement)
    }
}

/// The machine's memory, from `/proc/meminfo` (Linux).
fn physical_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// One statement's view of the server's pool: every reservation is charged
/// to both, and refused when either is full.
#[derive(Debug)]
struct StatementPool {
    server: Arc<dyn MemoryPool>,
    server_bytes: usize,
    limit: usize,
    used: AtomicUsize,
}

impl std::fmt::Display for StatementPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statement pool: {} of {} bytes",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for StatementPool {
    fn name(&self) -> &str {
        "lotline statement pool"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.server.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.server.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.server.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.server.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before + additional > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the statement needs more than its {} bytes of query memory \
                 (query_memory_per_statement; {} asked {additional} more); \
                 narrow it (time range, tags) or raise the limit",
                self.limit,
                reservation.consumer().name()
            )));
        }
        if let Err(e) = self.server.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the server's query memory ({} bytes, query_memory_bytes) is in use by \
                 running statements; try again shortly: {e}",
                self.server_bytes
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_held_to_its_share_and_all_to_the_budget() {
        let memory = QueryMemory::new(1000, 600);
        let first = memory.for_statement();
        let second = memory.for_statement();
        let a = MemoryConsumer::new("a").register(&first);
        let b = MemoryConsumer::new("b").register(&second);
        a.try_grow(500).unwrap();
        let err = a.try_grow(200).unwrap_err().to_string();
        assert!(err.contains("query_memory_per_statement"), "{err}");
        b.try_grow(500).unwrap();
        assert_eq!(memory.reserved(), 1000);
        let err = b.try_grow(50).unwrap_err().to_string();
        assert!(err.contains("query_memory_bytes"), "{err}");
        assert_eq!(first.reserved(), 500, "refused growth is not kept");
        drop(a);
        b.try_grow(50).unwrap();
        assert_eq!(memory.reserved(), 550);
    }
}
