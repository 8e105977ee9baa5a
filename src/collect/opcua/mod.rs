//! OPC UA collector (async-opcua, client only): one session per collector,
//! one subscription with a monitored item per mapped node. Every data change
//! is stored as it comes: the value (numbers and booleans in `value`, scaled
//! as mapped; strings in `text`), the **source timestamp** (the server's when
//! the source gives none), and the StatusCode itself as `quality`.
//!
//! Addresses are NodeIds or browse paths ([`address`]). Security policy
//! `None` or `Basic256Sha256` (mode `SignAndEncrypt` or `Sign`), anonymous
//! or user and password; the client's certificate is created in `pki_dir`
//! on first use and server certificates are trusted on first contact.
//!
//! A lost connection writes one BadNoCommunication sample per tag at the
//! time it was seen; the session reconnects with backoff (0.5 s doubling up
//! to 30 s) and subscribes again on every new session. On every connect the
//! values a historizing server recorded since the newest sample written per
//! tag (at most `backfill_max` back) are read with HistoryRead
//! ([`history`]); no (tag, ts) is written twice. A node that cannot be
//! resolved or monitored gets one sample with the server's status code and
//! an error in `collector_status`; the others go on.

pub mod address;
mod history;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::opcua::client::{
    ClientBuilder, DataChangeCallback, IdentityToken, Session, SessionConnectMode,
    SessionPollResult,
};
use ::opcua::types::{
    DataValue, EndpointDescription, MessageSecurityMode, MonitoredItemCreateRequest,
    MonitoringMode, MonitoringParameters, NodeId, ReadValueId, TimestampsToReturn, UserTokenPolicy,
    Variant,
};
use futures::StreamExt;
use tokio::sync::mpsc;

pub use address::Address;
use history::{Gap, Written};

use super::mapping::Point;
use super::{BAD_NO_COMMUNICATION, Reading, Session as Collector};

/// Settings of one OPC UA collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub publishing_interval: Duration,
    /// How far back a backfill reads at most; zero: no backfill.
    pub backfill_max: Duration,
    /// `None` or `Basic256Sha256`.
    pub security_policy: String,
    pub security_mode: MessageSecurityMode,
    /// User and password; anonymous without.
    pub user: Option<(String, String)>,
    /// Where the client's certificate and trusted server certificates live.
    pub pki_dir: PathBuf,
}

type Points = Arc<Vec<Point<Address>>>;

/// Operations per service call: servers bound what one call may carry
/// (MaxNodesPerRead, MaxMonitoredItemsPerCall, ...), commonly at 1000 or more.
const PER_CALL: usize = 1000;

/// Calls `call` with `items` in slices of at most [`PER_CALL`], in order,
/// and joins the results.
async fn in_slices<T: Clone, R, E, F>(
    items: &[T],
    mut call: impl FnMut(Vec<T>) -> F,
) -> Result<Vec<R>, E>
where
    F: std::future::Future<Output = Result<Vec<R>, E>>,
{
    let mut results = Vec::with_capacity(items.len());
    for slice in items.chunks(PER_CALL) {
        results.extend(call(slice.to_vec()).await?);
    }
    Ok(results)
}

/// Notifications per publish response: the server sends more in further
/// responses, and no message outgrows what the client decodes.
const NOTIFICATIONS_PER_PUBLISH: u32 = 10_000;

/// A data change, as the subscription's callback hands it over.
type Change = (usize, DataValue);

/// `value` of `point` as a sample: scaled, at its source time.
fn reading(point: &Point<Address>, index: usize, value: &DataValue) -> Reading {
    let ts = value
        .source_timestamp
        .or(value.server_timestamp)
        .and_then(|t| t.as_chrono().timestamp_nanos_opt())
        .unwrap_or_else(super::now_ns);
    let quality = value.status.map_or(0, |s| s.bits());
    let (number, text) = match &value.value {
        None | Some(Variant::Empty) => (None, None),
        Some(Variant::Boolean(b)) => (Some(f64::from(u8::from(*b))), None),
        Some(Variant::String(s)) => (None, s.value().clone()),
        Some(Variant::LocalizedText(t)) => (None, t.text.value().clone()),
        Some(other) => match other.as_f64() {
            Some(n) => (Some(point.scaled(n)), None),
            None => (None, Some(format!("{other:?}"))),
        },
    };
    Reading {
        point: index,
        ts,
        value: number,
        quality,
        text,
        historical: false,
    }
}

/// Collects from `endpoint` until the runtime stops.
pub(crate) async fn run(
    endpoint: String,
    settings: Settings,
    points: Points,
    collector: Collector,
) {
    // A backfill after lotline itself was away starts at what is stored.
    let mut newest = Vec::with_capacity(points.len());
    for point in points.iter() {
        newest.push(collector.newest_ts(&point.tag.name).await);
    }
    let mut link = Link {
        settings,
        points,
        collector,
        written: Written::new(newest),
        held: Vec::new(),
        failed: false,
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        match session(&endpoint, &link.settings).await {
            Ok((session, events)) => {
                backoff = Duration::from_millis(500);
                link.serve(&session, events).await;
                let _ = session.disconnect().await;
            }
            Err(e) => {
                link.lost().await;
                link.collector.disconnected(&e).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

type Events =
    futures::stream::BoxStream<'static, Result<SessionPollResult, ::opcua::types::StatusCode>>;

async fn session(endpoint: &str, settings: &Settings) -> Result<(Arc<Session>, Events), String> {
    let mut client = ClientBuilder::new()
        .application_name("lotline collector")
        .application_uri("urn:lotline:collector")
        .product_uri("urn:lotline")
        .pki_dir(settings.pki_dir.clone())
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_limit(-1)
        .session_retry_initial(Duration::from_millis(500))
        .session_retry_max(Duration::from_secs(30))
        // The defaults (arrays of 1000, messages of 320 KiB) break a
        // subscription of more than 1000 items at the first large publish
        // response: room for a full one.
        .max_array_length(4 * NOTIFICATIONS_PER_PUBLISH as usize)
        .max_message_size(64 << 20)
        .max_chunk_count(1024)
        .recreate_subscriptions(false)
        .client()
        .map_err(|e| format!("OPC UA client: {}", e.join("; ")))?;
    let token_policy = match &settings.user {
        None => UserTokenPolicy::anonymous(),
        Some(_) => UserTokenPolicy {
            token_type: ::opcua::types::UserTokenType::UserName,
            ..Default::default()
        },
    };
    let description: EndpointDescription = (
        endpoint,
        settings.security_policy.as_str(),
        settings.security_mode,
        token_policy,
    )
        .into();
    let identity = match &settings.user {
        None => IdentityToken::Anonymous,
        Some((user, password)) => IdentityToken::new_user_name(user, password.as_str()),
    };
    let connecting = client.connect_to_matching_endpoint(description, identity);
    let (session, event_loop) = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| format!("connecting to {endpoint}: no answer within 10 s"))?
        .map_err(|e| format!("connecting to {endpoint}: {e}"))?;
    Ok((session, event_loop.enter().boxed()))
}

/// A collector's state across sessions.
struct Link {
    settings: Settings,
    points: Points,
    collector: Collector,
    written: Written,
    /// Changes received and not yet written; while the connection is lost
    /// they wait for the backfill, which may hold them too.
    held: Vec<Reading>,
    /// Whether the tags are marked Bad (the connection is lost).
    failed: bool,
}

/// What a session found of the mapped nodes.
struct Monitored {
    subscription: u32,
    /// The node of each point; `None` where it could not be resolved or
    /// monitored.
    nodes: Vec<Option<NodeId>>,
    /// Whether the server keeps history of each point's node.
    historized: Vec<bool>,
}

impl Link {
    /// Writes the held changes that were not written before.
    async fn flush(&mut self) {
        let mut fresh = std::mem::take(&mut self.held);
        fresh.retain(|r| self.written.admit(r));
        self.collector.write(&self.points, fresh).await;
    }

    /// The connection is lost: what was received is written, then one
    /// BadNoCommunication sample per tag, once per outage.
    async fn lost(&mut self) {
        if !std::mem::replace(&mut self.failed, true) {
            self.flush().await;
            let now = super::now_ns();
            let bad = (0..self.points.len())
                .map(|i| Reading::bad(i, now, BAD_NO_COMMUNICATION))
                .collect();
            self.collector.write(&self.points, bad).await;
        }
    }

    /// Subscribes and stores every change until the session gives up.
    async fn serve(&mut self, session: &Arc<Session>, mut events: Events) {
        let (changes, mut received) = mpsc::unbounded_channel::<Change>();
        // The session's event loop must run while requests are made (they go
        // through it): it is driven by a task of its own.
        let (event_tx, mut event_rx) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let last = event.is_err();
                if event_tx.send(event).is_err() || last {
                    break;
                }
            }
        });
        let _stop_driver = AbortOnDrop(driver);
        let mut monitored: Option<Monitored> = None;
        loop {
            tokio::select! {
                event = event_rx.recv() => match event {
                    Some(Ok(SessionPollResult::Reconnected(mode))) => {
                        self.collector.connected().await;
                        // Subscribe anew on every reconnect: a new session
                        // (the server restarted, or forgot ours) has no
                        // subscription, and servers do not all publish a
                        // reactivated session's subscription on the new
                        // connection. What comes twice is written once.
                        if let (Some(old), SessionConnectMode::ReactivatedSession(_)) = (&monitored, &mode) {
                            let _ = session.delete_subscription(old.subscription).await;
                        }
                        let found = match self.subscribe(session, changes.clone()).await {
                            Ok(found) => monitored.insert(found),
                            Err(e) => {
                                self.collector.error(&e);
                                return;
                            }
                        };
                        self.backfill(session, found).await;
                        self.failed = false;
                        self.flush().await;
                    }
                    Some(Ok(SessionPollResult::ConnectionLost(status))) => {
                        self.lost().await;
                        self.collector.disconnected(&format!("connection lost: {status}")).await;
                    }
                    Some(Ok(SessionPollResult::ReconnectFailed(status))) => {
                        self.collector.disconnected(&format!("reconnecting: {status}")).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(status)) => {
                        self.collector.error(&format!("session ended: {status}"));
                        return;
                    }
                    None => return,
                },
                Some((point, value)) = received.recv() => {
                    // One publish response's changes come together: they
                    // are written as one batch as soon as they are in.
                    self.held.push(reading(&self.points[point], point, &value));
                    while let Ok((point, value)) = received.try_recv() {
                        self.held.push(reading(&self.points[point], point, &value));
                    }
                    if !self.failed {
                        self.flush().await;
                    }
                }
            }
        }
    }

    /// Resolves the mapped nodes and monitors each; a node that cannot be
    /// gets one sample with the server's status and counts as an error.
    async fn subscribe(
        &self,
        session: &Arc<Session>,
        changes: mpsc::UnboundedSender<Change>,
    ) -> Result<Monitored, String> {
        let mut refused = Vec::new();
        let resolved = address::resolve(session, self.points.iter().map(|p| &p.address)).await?;
        let mut nodes: Vec<Option<NodeId>> = Vec::with_capacity(resolved.len());
        for (index, result) in resolved.into_iter().enumerate() {
            match result {
                Ok(node) => nodes.push(Some(node)),
                Err(status) => {
                    refused.push((index, status));
                    nodes.push(None);
                }
            }
        }
        let callback = DataChangeCallback::new(move |value, item| {
            // Client handles are point index + 1 (0 asks the library for one).
            let _ = changes.send((item.client_handle() as usize - 1, value));
        });
        let interval = self.settings.publishing_interval;
        let subscription = session
            .create_subscription(
                interval,
                60,
                10,
                NOTIFICATIONS_PER_PUBLISH,
                0,
                true,
                callback,
            )
            .await
            .map_err(|e| format!("creating the subscription: {e}"))?;
        let wanted: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].is_some()).collect();
        let items: Vec<MonitoredItemCreateRequest> = wanted
            .iter()
            .map(|&i| {
                MonitoredItemCreateRequest::new(
                    ReadValueId::from(nodes[i].clone().expect("resolved")),
                    MonitoringMode::Reporting,
                    MonitoringParameters {
                        client_handle: i as u32 + 1,
                        sampling_interval: interval.as_millis() as f64,
                        queue_size: 100,
                        discard_oldest: true,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let results = in_slices(&items, |slice| async move {
            session
                .create_monitored_items(subscription, TimestampsToReturn::Both, slice)
                .await
        })
        .await
        .map_err(|e| format!("creating monitored items: {e}"))?;
        for (&index, result) in wanted.iter().zip(&results) {
            let status = result.result.status_code;
            if status.is_bad() {
                refused.push((index, status));
                nodes[index] = None;
            }
        }
        if !refused.is_empty() {
            let now = super::now_ns();
            let mut bad = Vec::with_capacity(refused.len());
            for (index, status) in refused {
                let point = &self.points[index];
                self.collector
                    .error(&format!("{} ({}): {status}", point.tag.name, point.address));
                bad.push(Reading::bad(index, now, status.bits()));
            }
            self.collector.write(&self.points, bad).await;
        }
        let historized = if self.settings.backfill_max.is_zero() {
            vec![false; nodes.len()]
        } else {
            history::historized(session, &nodes).await?
        };
        Ok(Monitored {
            subscription,
            nodes,
            historized,
        })
    }

    /// Reads what historized nodes recorded since the newest value written
    /// (at most `backfill_max` back) and writes what is new. A failed
    /// backfill is an error in `collector_status`; collecting goes on.
    async fn backfill(&mut self, session: &Arc<Session>, monitored: &Monitored) {
        let now = super::now_ns();
        let earliest = now.saturating_sub(self.settings.backfill_max.as_nanos() as i64);
        let gaps: Vec<Gap> = (0..self.points.len())
            .filter(|&i| monitored.historized[i])
            .filter_map(|i| {
                let after = self.written.newest()[i]?;
                Some(Gap {
                    point: i,
                    node: monitored.nodes[i].clone()?,
                    after_ns: after.max(earliest),
                })
            })
            .collect();
        if gaps.is_empty() {
            return;
        }
        let points = self.points.clone();
        let convert = |i: usize, v: &DataValue| reading(&points[i], i, v);
        match history::read_raw(session, &gaps, now, convert).await {
            Ok(mut readings) => {
                readings.retain(|r| self.written.admit(r));
                if !readings.is_empty() {
                    tracing::info!(
                        "backfilled {} samples of {} tags from history",
                        readings.len(),
                        gaps.len()
                    );
                }
                for chunk in readings.chunks(10_000) {
                    self.collector.write(&self.points, chunk.to_vec()).await;
                }
            }
            Err(e) => self.collector.error(&format!("backfill: {e}")),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::mapping::TagMeta;

    #[test]
    fn values_become_numbers_or_text_with_the_source_time_and_status() {
        let mut value = DataValue::new_now(Variant::Double(12.5));
        value.status = Some(::opcua::types::StatusCode::UncertainLastUsableValue);
        let point = Point {
            address: Address::parse("ns=2;s=Press1.Temperature").unwrap(),
            tag: TagMeta {
                name: "line1.press.temperature".into(),
                ..Default::default()
            },
            scale: 2.0,
            offset: 1.0,
        };
        let r = reading(&point, 3, &value);
        assert_eq!((r.point, r.value, r.quality), (3, Some(26.0), 0x4090_0000));
        let text = reading(&point, 0, &DataValue::new_now(Variant::from("RUNNING")));
        assert_eq!((text.value, text.text.as_deref()), (None, Some("RUNNING")));
        // A boolean is 0 or 1, never scaled.
        let on = reading(&point, 0, &DataValue::new_now(Variant::Boolean(true)));
        assert_eq!(on.value, Some(1.0));
    }
}
