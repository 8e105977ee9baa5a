//! The times admitted for one tag, as a few disjoint closed intervals that
//! cover every admitted reading of it. A request whose times for the tag
//! fall outside all of them cannot repeat a key, whatever order concurrent
//! writers arrive in (four loaders writing interleaved seconds of the same
//! tags never collide). Keeping the count small merges the closest
//! neighbours, which only widens what is covered: a later reading in a
//! merged gap takes the slow path, which is correct, only slower.

/// Most intervals kept per tag.
const MAX_SPANS: usize = 8;

/// Sorted, disjoint, closed intervals of nanosecond times, kept inline (one
/// per tag in a map that every request reads: no pointer to chase).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(smallvec::SmallVec<[(i64, i64); MAX_SPANS + 1]>);

impl Spans {
    /// Everything up to `newest` (what a restart knows of a tag: its newest
    /// time, not which older times it has).
    pub fn up_to(newest: i64) -> Self {
        let mut spans = Self::default();
        spans.0.push((i64::MIN, newest));
        spans
    }

    /// Whether `low..=high` meets an admitted interval.
    pub fn overlaps(&self, low: i64, high: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= high && low <= b)
    }

    /// Admits `low..=high`.
    pub fn add(&mut self, low: i64, high: i64) {
        assert!(low <= high, "an interval runs forward");
        let mut joined = (low, high);
        self.0.retain(|&mut (a, b)| {
            let meets = a <= joined.1 && joined.0 <= b;
            if meets {
                joined = (joined.0.min(a), joined.1.max(b));
            }
            !meets
        });
        let at = self.0.partition_point(|&(a, _)| a < joined.0);
        self.0.insert(at, joined);
        if self.0.len() > MAX_SPANS {
            let closest = (0..self.0.len() - 1)
                .min_by_key(|&i| self.0[i + 1].0.saturating_sub(self.0[i].1))
                .expect("more than one interval");
            self.0[closest].1 = self.0[closest + 1].1;
            self.0.remove(closest + 1);
        }
        debug_assert!(
            self.0.windows(2).all(|w| w[0].1 < w[1].0),
            "sorted, disjoint"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_requests_stay_apart_and_resends_meet() {
        let mut spans = Spans::default();
        for second in [3, 1, 4, 0, 2] {
            assert!(!spans.overlaps(second * 10, second * 10), "{spans:?}");
            spans.add(second * 10, second * 10);
        }
        assert!(spans.overlaps(20, 20) && !spans.overlaps(25, 25));
        spans.add(15, 35);
        assert_eq!(spans.0.as_slice(), [(0, 0), (10, 10), (15, 35), (40, 40)]);
    }

    #[test]
    fn too_many_intervals_merge_the_closest_and_only_widen() {
        let mut spans = Spans::default();
        for i in 0..MAX_SPANS as i64 {
            spans.add(i * 100, i * 100);
        }
        spans.add(10_000, 10_000);
        spans.add(10_001 + 5, 10_001 + 5);
        assert_eq!(spans.0.len(), MAX_SPANS);
        for i in 0..MAX_SPANS as i64 {
            assert!(spans.overlaps(i * 100, i * 100));
        }
        assert!(
            spans.overlaps(10_000, 10_000)
                && spans.overlaps(10_006, 10_006)
                && spans.overlaps(10_003, 10_003)
        );
        assert!(Spans::up_to(7).overlaps(i64::MIN, i64::MIN) && !Spans::up_to(7).overlaps(8, 8));
    }
}
