//! OPC UA collector (async-opcua, client only): one session per collector,
//! one subscription with a monitored item per mapped node. Every data change
//! is stored as it comes: the value (numbers and booleans in `value`,
//! strings in `text`), the **source timestamp** (the server's when the
//! source gives none), and the StatusCode itself as `quality`.
//!
//! `source` is a NodeId in its text form: `ns=2;s=Press1.Temperature`,
//! `ns=3;i=1001`, `ns=1;g=...`, `ns=1;b=...`. Security policy `None` or
//! `Basic256Sha256` (mode `SignAndEncrypt` or `Sign`), anonymous or user and
//! password; the client's certificate is created in `pki_dir` on first use
//! and server certificates are trusted on first contact.
//!
//! A lost connection writes one BadNoCommunication sample per tag at the
//! time it was seen; the session reconnects with backoff (0.5 s doubling up
//! to 30 s), and subscribes again on every new session. Not yet: browse-path addresses,
//! and backfilling the outage with HistoryRead.

use std::path::PathBuf;
use std::str::FromStr;
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

use super::mapping::Point;
use super::{BAD_NO_COMMUNICATION, Reading, Session as Collector};

/// Settings of one OPC UA collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub publishing_interval: Duration,
    /// `None` or `Basic256Sha256`.
    pub security_policy: String,
    pub security_mode: MessageSecurityMode,
    /// User and password; anonymous without.
    pub user: Option<(String, String)>,
    /// Where the client's certificate and trusted server certificates live.
    pub pki_dir: PathBuf,
}

/// A parsed `source`: the node to monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Address(pub NodeId);

impl Address {
    pub fn parse(source: &str) -> Result<Self, String> {
        NodeId::from_str(source.trim())
            .map(Self)
            .map_err(|_| "not a NodeId (e.g. ns=2;s=Press1.Temperature or ns=3;i=1001)".to_string())
    }
}

/// A data change, as the subscription's callback hands it over.
type Change = (usize, DataValue);

fn reading(point: usize, value: &DataValue) -> Reading {
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
            Some(n) => (Some(n), None),
            None => (None, Some(format!("{other:?}"))),
        },
    };
    Reading {
        point,
        ts,
        value: number,
        quality,
        text,
    }
}

/// Collects from `endpoint` until the runtime stops.
pub(crate) async fn run(
    endpoint: String,
    settings: Settings,
    points: Arc<Vec<Point<Address>>>,
    collector: Collector,
) {
    let mut backoff = Duration::from_millis(500);
    let mut failed = false;
    loop {
        match session(&endpoint, &settings).await {
            Ok((session, events)) => {
                backoff = Duration::from_millis(500);
                failed = serve(&session, events, &settings, &points, &collector, failed).await;
                let _ = session.disconnect().await;
            }
            Err(e) => {
                if !failed {
                    collector.write(&points, all_bad(points.len())).await;
                    failed = true;
                }
                collector.disconnected(&e).await;
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

/// Subscribes and stores every change until the session gives up; returns
/// whether the tags are marked Bad (the connection is lost).
async fn serve(
    session: &Arc<Session>,
    mut events: Events,
    settings: &Settings,
    points: &Arc<Vec<Point<Address>>>,
    collector: &Collector,
    mut failed: bool,
) -> bool {
    let (changes, mut received) = mpsc::unbounded_channel::<Change>();
    // The session's event loop must run while a subscription is created (its
    // requests go through it): it is driven by a task of its own.
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
    let mut subscribed = false;
    let mut batch = Vec::new();
    let mut flush = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(Ok(SessionPollResult::Reconnected(mode))) => {
                    collector.connected().await;
                    failed = false;
                    // A new session (the server restarted, or forgot ours)
                    // has no subscription: make ours again.
                    if !subscribed || matches!(mode, SessionConnectMode::NewSession(_)) {
                        match subscribe(session, settings, points, changes.clone()).await {
                            Ok(()) => subscribed = true,
                            Err(e) => {
                                collector.error(&e);
                                return failed;
                            }
                        }
                    }
                }
                Some(Ok(SessionPollResult::ConnectionLost(status))) => {
                    if !std::mem::replace(&mut failed, true) {
                        collector.write(points, std::mem::take(&mut batch)).await;
                        collector.write(points, all_bad(points.len())).await;
                    }
                    collector.disconnected(&format!("connection lost: {status}")).await;
                }
                Some(Ok(SessionPollResult::ReconnectFailed(status))) => {
                    collector.disconnected(&format!("reconnecting: {status}")).await;
                }
                Some(Ok(_)) => {}
                Some(Err(status)) => {
                    collector.error(&format!("session ended: {status}"));
                    return failed;
                }
                None => return failed,
            },
            Some((point, value)) = received.recv() => {
                batch.push(reading(point, &value));
                if batch.len() >= 10_000 {
                    collector.write(points, std::mem::take(&mut batch)).await;
                }
            }
            _ = flush.tick() => {
                collector.write(points, std::mem::take(&mut batch)).await;
            }
        }
    }
}

async fn subscribe(
    session: &Arc<Session>,
    settings: &Settings,
    points: &Arc<Vec<Point<Address>>>,
    changes: mpsc::UnboundedSender<Change>,
) -> Result<(), String> {
    let callback = DataChangeCallback::new(move |value, item| {
        // Client handles are point index + 1 (0 asks the library for one).
        let _ = changes.send((item.client_handle() as usize - 1, value));
    });
    let subscription = session
        .create_subscription(settings.publishing_interval, 60, 10, 0, 0, true, callback)
        .await
        .map_err(|e| format!("creating the subscription: {e}"))?;
    let items: Vec<MonitoredItemCreateRequest> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            MonitoredItemCreateRequest::new(
                ReadValueId::from(p.address.0.clone()),
                MonitoringMode::Reporting,
                MonitoringParameters {
                    client_handle: i as u32 + 1,
                    sampling_interval: settings.publishing_interval.as_millis() as f64,
                    queue_size: 100,
                    discard_oldest: true,
                    ..Default::default()
                },
            )
        })
        .collect();
    let results = session
        .create_monitored_items(subscription, TimestampsToReturn::Both, items)
        .await
        .map_err(|e| format!("creating monitored items: {e}"))?;
    for (point, result) in points.iter().zip(&results) {
        if result.result.status_code.is_bad() {
            return Err(format!(
                "monitoring {} ({}): {}",
                point.tag.name, point.address.0, result.result.status_code
            ));
        }
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn all_bad(points: usize) -> Vec<Reading> {
    let now = super::now_ns();
    (0..points)
        .map(|i| Reading::bad(i, now, BAD_NO_COMMUNICATION))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_and_nonsense_is_refused() {
        assert_eq!(
            Address::parse("ns=2;s=Press1.Temperature").unwrap().0,
            NodeId::new(2, "Press1.Temperature")
        );
        assert_eq!(
            Address::parse("ns=3;i=1001").unwrap().0,
            NodeId::new(3, 1001u32)
        );
        assert!(Address::parse("Press1.Temperature").is_err());
    }

    #[test]
    fn values_become_numbers_or_text_with_the_source_time_and_status() {
        let mut value = DataValue::new_now(Variant::Double(12.5));
        value.status = Some(::opcua::types::StatusCode::UncertainLastUsableValue);
        let r = reading(3, &value);
        assert_eq!((r.point, r.value, r.quality), (3, Some(12.5), 0x4090_0000));
        let text = reading(0, &DataValue::new_now(Variant::from("RUNNING")));
        assert_eq!((text.value, text.text.as_deref()), (None, Some("RUNNING")));
        let on = reading(0, &DataValue::new_now(Variant::Boolean(true)));
        assert_eq!(on.value, Some(1.0));
    }
}
