//! Parameters bound to a prepared statement, kept for a short time under the
//! statement's original handle. Flight SQL answers a binding DoPut with a new
//! handle that carries the values ([`super::prepared`]), and current clients
//! use it; older ones (flightsql-dbapi, used by SQLAlchemy) ignore it and
//! execute the handle they prepared. For them the server remembers the last
//! values bound to each handle, per user, within a memory budget and for
//! [`KEEP_FOR`]; what expires or is evicted must be bound again, and the
//! error says so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

/// How long bound values are kept after they were bound.
pub const KEEP_FOR: Duration = Duration::from_secs(10 * 60);

/// Memory all kept values may take together; the oldest go first.
pub const BUDGET_BYTES: usize = 64 << 20;

/// One statement of one user: `(handle id, user)`.
type Key = (u128, String);

struct Kept {
    values: RecordBatch,
    bytes: usize,
    bound_at: Instant,
}

/// The values last bound to each prepared statement that asked for it.
#[derive(Default)]
pub struct BoundParameters {
    kept: Mutex<HashMap<Key, Kept>>,
}

impl std::fmt::Debug for BoundParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundParameters")
            .field("statements", &self.lock().len())
            .finish()
    }
}

impl BoundParameters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Kept>> {
        self.kept.lock().expect("bound parameters lock poisoned")
    }

    /// Keeps `values` as what `user` last bound to statement `id`, replacing
    /// what was there. Values larger than the whole budget are not kept.
    pub fn keep(&self, id: u128, user: &str, values: RecordBatch) {
        self.keep_at(id, user, values, Instant::now());
    }

    fn keep_at(&self, id: u128, user: &str, values: RecordBatch, now: Instant) {
        let bytes = values.get_array_memory_size();
        let mut kept = self.lock();
        kept.retain(|_, k| now.duration_since(k.bound_at) < KEEP_FOR);
        kept.remove(&(id, user.to_string()));
        if bytes > BUDGET_BYTES {
            return;
        }
        let mut total: usize = kept.values().map(|k| k.bytes).sum();
        while total + bytes > BUDGET_BYTES {
            let oldest = kept
                .iter()
                .min_by_key(|(_, k)| k.bound_at)
                .map(|(key, _)| key.clone())
                .expect("over budget means something is kept");
            total -= kept.remove(&oldest).map_or(0, |k| k.bytes);
        }
        kept.insert(
            (id, user.to_string()),
            Kept {
                values,
                bytes,
                bound_at: now,
            },
        );
    }

    /// What `user` last bound to statement `id`, if still kept.
    pub fn get(&self, id: u128, user: &str) -> Option<RecordBatch> {
        self.get_at(id, user, Instant::now())
    }

    fn get_at(&self, id: u128, user: &str, now: Instant) -> Option<RecordBatch> {
        let kept = self.lock();
        kept.get(&(id, user.to_string()))
            .filter(|k| now.duration_since(k.bound_at) < KEEP_FOR)
            .map(|k| k.values.clone())
    }

    /// Forgets statement `id` of `user` (ClosePreparedStatement).
    pub fn forget(&self, id: u128, user: &str) {
        self.lock().remove(&(id, user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    fn values(text: &str) -> RecordBatch {
        RecordBatch::try_from_iter([("0", Arc::new(StringArray::from(vec![text])) as _)]).unwrap()
    }

    #[test]
    fn values_are_kept_per_statement_and_user_until_they_expire() {
        let bound = BoundParameters::default();
        let start = Instant::now();
        bound.keep_at(1, "ann", values("a"), start);
        bound.keep_at(2, "ann", values("b"), start);
        assert_eq!(bound.get_at(1, "ann", start), Some(values("a")));
        assert_eq!(bound.get_at(1, "bob", start), None, "another user's");
        bound.keep_at(1, "ann", values("c"), start);
        assert_eq!(bound.get_at(1, "ann", start), Some(values("c")), "rebound");
        assert_eq!(bound.get_at(2, "ann", start + KEEP_FOR), None, "expired");
        bound.forget(1, "ann");
        assert_eq!(bound.get_at(1, "ann", start), None, "closed");
    }

    #[test]
    fn the_oldest_values_go_when_the_budget_is_full() {
        let bound = BoundParameters::default();
        let big = |n: i64| {
            let rows = BUDGET_BYTES / 8 / 3;
            let column = Int64Array::from(vec![n; rows]);
            RecordBatch::try_from_iter([("0", Arc::new(column) as _)]).unwrap()
        };
        let start = Instant::now();
        for n in 0..4 {
            bound.keep_at(
                n as u128,
                "ann",
                big(n),
                start + Duration::from_secs(n as u64),
            );
        }
        let later = start + Duration::from_secs(5);
        assert!(bound.get_at(0, "ann", later).is_none(), "evicted");
        assert!(bound.get_at(3, "ann", later).is_some());
        let total: usize = bound.lock().values().map(|k| k.bytes).sum();
        assert!(total <= BUDGET_BYTES);
    }
}
