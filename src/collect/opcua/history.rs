//! Backfill and exactly-once: after an outage, or when lotline starts again,
//! the values a historizing OPC UA server recorded while lotline was not
//! listening are read with HistoryRead (raw), from the newest value written
//! per tag to now, so the outage leaves no hole. [`Written`] keeps a sample
//! from being written twice: a value that comes both from history and from
//! the subscription (the server's monitored-item queue, the current value a
//! new subscription starts with) is written once.

use std::collections::VecDeque;
use std::sync::Arc;

use ::opcua::client::{HistoryReadAction, Session};
use ::opcua::types::{
    AccessLevelType, AttributeId, ByteString, DataValue, DateTime, HistoryData, HistoryReadValueId,
    NodeId, ReadRawModifiedDetails, ReadValueId, TimestampsToReturn, Variant,
};

use super::super::Reading;

/// How many recently written timestamps are remembered per point: more than
/// a monitored item's queue (100), which is what a resumed subscription can
/// send again.
const RECENT: usize = 128;

/// Values asked for per node and HistoryRead request; more come through the
/// continuation point.
const VALUES_PER_REQUEST: u32 = 10_000;

/// Nodes per HistoryRead request.
const NODES_PER_REQUEST: usize = 100;

/// What each point has had written: the newest timestamp (where a backfill
/// starts) and the last few (to recognise a value sent again).
#[derive(Debug)]
pub(super) struct Written {
    newest: Vec<Option<i64>>,
    recent: Vec<VecDeque<i64>>,
    /// Per point, the newest timestamp stored before this collector started,
    /// until a newer value is written: the value a first subscription starts
    /// with is stored already when it is not newer (lotline restarted while
    /// the value stayed).
    stored: Vec<Option<i64>>,
}

impl Written {
    /// Starts from the newest timestamp already stored per point (`None`:
    /// nothing stored, so there is no gap to fill).
    pub fn new(stored: Vec<Option<i64>>) -> Self {
        Self {
            newest: stored.clone(),
            recent: vec![VecDeque::new(); stored.len()],
            stored,
        }
    }

    /// The newest timestamp written for each point.
    pub fn newest(&self) -> &[Option<i64>] {
        &self.newest
    }

    /// Whether `reading` is new: `false` for a (point, ts) written recently.
    /// A new reading is remembered.
    pub fn admit(&mut self, reading: &Reading) -> bool {
        let stored = &mut self.stored[reading.point];
        if stored.is_some_and(|ts| reading.ts <= ts) {
            return false;
        }
        *stored = None;
        let recent = &mut self.recent[reading.point];
        if recent.contains(&reading.ts) {
            return false;
        }
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(reading.ts);
        let newest = &mut self.newest[reading.point];
        *newest = Some(newest.map_or(reading.ts, |n| n.max(reading.ts)));
        true
    }
}

/// Which of `nodes` the server keeps history for that this session may read
/// (UserAccessLevel has HistoryRead).
pub(super) async fn historized(
    session: &Arc<Session>,
    nodes: &[Option<NodeId>],
) -> Result<Vec<bool>, String> {
    let reads: Vec<ReadValueId> = nodes
        .iter()
        .flatten()
        .map(|node| ReadValueId {
            node_id: node.clone(),
            attribute_id: AttributeId::UserAccessLevel as u32,
            ..Default::default()
        })
        .collect();
    let mut levels = super::in_slices(&reads, |slice| async move {
        session.read(&slice, TimestampsToReturn::Neither, 0.0).await
    })
    .await
    .map_err(|e| format!("reading access levels: {e}"))?
    .into_iter();
    Ok(nodes
        .iter()
        .map(|node| {
            node.is_some()
                && matches!(
                    levels.next().and_then(|v| v.value),
                    Some(Variant::Byte(level))
                        if AccessLevelType::from_bits_truncate(level)
                            .contains(AccessLevelType::HistoryRead)
                )
        })
        .collect())
}

/// One node's gap: the point, its node, and the time after which values
/// are missing.
pub(super) struct Gap {
    pub point: usize,
    pub node: NodeId,
    pub after_ns: i64,
}

/// The raw values of every gap after its start up to `until_ns`, in time
/// order per point, converted by `reading`.
pub(super) async fn read_raw(
    session: &Arc<Session>,
    gaps: &[Gap],
    until_ns: i64,
    reading: impl Fn(usize, &DataValue) -> Reading,
) -> Result<Vec<Reading>, String> {
    let mut readings = Vec::new();
    for chunk in gaps.chunks(NODES_PER_REQUEST) {
        let start = chunk.iter().map(|g| g.after_ns).min().expect("a chunk");
        let details = ReadRawModifiedDetails {
            is_read_modified: false,
            start_time: date_time(start),
            end_time: date_time(until_ns),
            num_values_per_node: VALUES_PER_REQUEST,
            return_bounds: false,
        };
        // Each node is read until the server has no continuation point left.
        let mut pending: Vec<(&Gap, ByteString)> =
            chunk.iter().map(|g| (g, ByteString::null())).collect();
        while !pending.is_empty() {
            let ids: Vec<HistoryReadValueId> = pending
                .iter()
                .map(|(gap, continuation)| HistoryReadValueId {
                    node_id: gap.node.clone(),
                    continuation_point: continuation.clone(),
                    ..Default::default()
                })
                .collect();
            let action = HistoryReadAction::ReadRawModifiedDetails(details.clone());
            let results = session
                .history_read(action, TimestampsToReturn::Both, false, &ids)
                .await
                .map_err(|e| format!("HistoryRead: {e}"))?;
            let mut next = Vec::new();
            for ((gap, _), result) in pending.iter().zip(results) {
                if result.status_code.is_bad() {
                    return Err(format!(
                        "HistoryRead of {}: {}",
                        gap.node, result.status_code
                    ));
                }
                let values = result
                    .history_data
                    .inner_as::<HistoryData>()
                    .and_then(|d| d.data_values.as_ref());
                readings.extend(
                    values
                        .into_iter()
                        .flatten()
                        .map(|v| Reading {
                            historical: true,
                            ..reading(gap.point, v)
                        })
                        // The request starts at the earliest gap of the chunk
                        // and a server may return the start itself.
                        .filter(|r| r.ts > gap.after_ns && r.ts <= until_ns),
                );
                if !result.continuation_point.is_null_or_empty() {
                    next.push((*gap, result.continuation_point));
                }
            }
            pending = next;
        }
    }
    readings.sort_by_key(|r| (r.point, r.ts));
    Ok(readings)
}

fn date_time(ns: i64) -> DateTime {
    DateTime::from(chrono::DateTime::from_timestamp_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sent_again_is_not_admitted_and_the_newest_moves_forward() {
        let mut written = Written::new(vec![Some(100), None]);
        // The current value a first subscription starts with: stored before
        // lotline restarted, with a BadNoCommunication sample after it.
        assert!(!written.admit(&Reading::good(0, 90, 1.0)));
        assert!(!written.admit(&Reading::good(0, 100, 1.0)));
        assert!(written.admit(&Reading::good(0, 200, 2.0)));
        assert!(!written.admit(&Reading::good(0, 200, 2.0)));
        // An older source time is a new sample, not a repeat.
        assert!(written.admit(&Reading::good(0, 50, 0.5)));
        assert!(written.admit(&Reading::good(1, 200, 2.0)));
        assert_eq!(written.newest(), &[Some(200), Some(200)]);
    }

    #[test]
    fn only_the_last_few_timestamps_are_remembered() {
        let mut written = Written::new(vec![None]);
        for ts in 0..RECENT as i64 + 10 {
            assert!(written.admit(&Reading::good(0, ts, 0.0)));
        }
        assert!(!written.admit(&Reading::good(0, RECENT as i64 + 9, 0.0)));
        assert!(written.admit(&Reading::good(0, 0, 0.0)), "forgotten");
        assert_eq!(written.recent[0].len(), RECENT);
    }
}
