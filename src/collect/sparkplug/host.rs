//! The MQTT session of lotline as a Sparkplug B host application (rumqttc,
//! MQTT 3.1.1 or 5, plain or TLS): it subscribes `spBv1.0/<group>/#` for each configured group,
//! publishes its STATE (`spBv1.0/STATE/<host id>`, retained, QoS 1, JSON
//! `{"online":…,"timestamp":…}`, the offline one as its will with the same
//! timestamp), and turns every edge node's message into samples through
//! [`Nodes`]. A node with a `seq` gap, an unknown alias or data before its
//! birth is sent a rebirth request (NCMD `Node Control/Rebirth`), at most
//! once per [`REBIRTH_EVERY`] per node, counted in `resync_requests`. Deaths (NDEATH,
//! DDEATH, the broker's will) and a lost broker connection write
//! BadNoCommunication for the metrics they end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rumqttc::{QoS, TlsConfiguration, Transport};

use super::mqtt::{Connection, Incoming, Options};

use super::nodes::{MetricKey, Nodes, Outcome};
use super::payload::{Payload, datatype, payload::Metric, payload::metric::Value};
use super::topic::{self, Topic};
use super::{Address, Endpoint, Settings};
use crate::collect::batched::Batched;
use crate::collect::mapping::Point;
use crate::collect::template::PointSet;
use crate::collect::{BAD_NO_COMMUNICATION, Reading, Session as Collector};

/// The shortest time between two rebirth requests to one node.
pub const REBIRTH_EVERY: Duration = Duration::from_secs(5);

type Points = PointSet<Address>;

/// The point of `address`, made from the template if the mapping has none.
fn find(points: &mut Points, address: &Address, settings: &Settings) -> Option<(usize, bool)> {
    points.find_or_make(address, || {
        Some(address.tag(settings.tag_template.as_ref()?))
    })
}

fn address(group: &str, node: &str, key: &MetricKey) -> Address {
    Address {
        group: group.to_string(),
        node: node.to_string(),
        device: key.0.clone().unwrap_or_default(),
        metric: key.1.clone(),
    }
}

/// Collects from the broker at `endpoint` (`host:port`) until the runtime
/// stops.
pub(crate) async fn run(
    endpoint: String,
    settings: Settings,
    mapped: Arc<Vec<Point<Address>>>,
    collector: Collector,
) {
    let Endpoint { tls, host, port } = match Endpoint::parse(&endpoint) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            collector.error(&e);
            return;
        }
    };
    let mut points = Points::new(&mapped);
    let state_topic = topic::host_state(&settings.host_id);
    let transport = match tls.then(|| tls_transport(settings.tls_ca.as_deref())) {
        Some(Err(e)) => {
            collector.error(&e);
            return;
        }
        Some(Ok(transport)) => Some(transport),
        None => None,
    };
    let mut online_since = super::super::now_ns() / 1_000_000;
    let mut mqtt = Connection::new(
        settings.mqtt_version,
        Options {
            client_id: format!("lotline-{}", settings.host_id),
            host: host.clone(),
            port,
            user: settings.user.clone(),
            transport,
            will: (state_topic.clone(), state(false, online_since)),
        },
    );
    let mut writer = collector.batched();
    let mut nodes = Nodes::default();
    let mut rebirths: HashMap<(String, String), Instant> = HashMap::new();
    let mut backoff = Duration::from_millis(500);
    let mut connected = false;
    loop {
        match mqtt.poll().await {
            Ok(Incoming::Connected) => {
                backoff = Duration::from_millis(500);
                connected = true;
                collector.connected().await;
                let mut filters: Vec<String> = settings
                    .groups
                    .iter()
                    .map(|g| format!("{}/{g}/#", topic::NAMESPACE))
                    .collect();
                filters.push(state_topic.clone());
                for filter in filters {
                    if let Err(e) = mqtt.subscribe(filter) {
                        collector.error(&format!("subscribing: {e}"));
                    }
                }
                publish_state(&mqtt, &state_topic, online_since, &collector);
            }
            Ok(Incoming::Message { topic, payload }) => {
                if topic == state_topic {
                    // Another session's will said we are offline: we are not.
                    if std::str::from_utf8(&payload)
                        .is_ok_and(|s| s.replace(' ', "").contains("\"online\":false"))
                    {
                        publish_state(&mqtt, &state_topic, online_since, &collector);
                    }
                    continue;
                }
                let Some(parsed) = Topic::parse(&topic) else {
                    continue;
                };
                let payload = match Payload::decode(payload.as_ref()) {
                    Ok(payload) => payload,
                    Err(e) => {
                        collector.error(&format!("{topic}: not a Sparkplug B payload: {e}"));
                        continue;
                    }
                };
                let now_ms = super::super::now_ns() / 1_000_000;
                let outcome = nodes.receive(&parsed, &payload, now_ms);
                if let Some(reason) = &outcome.rebirth {
                    let id = (parsed.group.to_string(), parsed.node.to_string());
                    let due = rebirths
                        .get(&id)
                        .is_none_or(|t| t.elapsed() >= REBIRTH_EVERY);
                    if due {
                        rebirths.insert(id, Instant::now());
                        collector.resync_requested(&format!(
                            "asked {}/{} for a rebirth: {reason}",
                            parsed.group, parsed.node
                        ));
                        let request = rebirth_request(now_ms);
                        let to = topic::node_command(parsed.group, parsed.node);
                        if let Err(e) = mqtt.publish(to, QoS::AtMostOnce, false, request) {
                            collector.error(&format!("sending a rebirth request: {e}"));
                        }
                    }
                }
                store(
                    &parsed,
                    outcome,
                    &mut points,
                    &settings,
                    &collector,
                    &mut writer,
                )
                .await;
            }
            Ok(Incoming::Other) => {}
            Err(e) => {
                if std::mem::replace(&mut connected, false) {
                    let now = super::super::now_ns();
                    let lost: Vec<Reading> = nodes
                        .lose_all()
                        .iter()
                        .filter_map(|(group, node, key)| {
                            let (i, _) = find(&mut points, &address(group, node, key), &settings)?;
                            Some(Reading::bad(i, now, BAD_NO_COMMUNICATION))
                        })
                        .collect();
                    writer.write(&points.list, lost).await;
                }
                collector
                    .disconnected(&format!("broker {host}:{port}: {e}"))
                    .await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                // A new connection registers a new will, with its own time.
                online_since = super::super::now_ns() / 1_000_000;
                mqtt.set_will(&state_topic, state(false, online_since));
            }
        }
    }
}

/// Writes what `outcome` says: samples, BadNoCommunication for what died,
/// and the units births declared into `tags`.
async fn store(
    topic: &Topic<'_>,
    outcome: Outcome,
    points: &mut Points,
    settings: &Settings,
    collector: &Collector,
    writer: &mut Batched,
) {
    let mut new_tags = Vec::new();
    for born in &outcome.born {
        let key = (born.device.clone(), born.name.clone());
        if let Some((i, made)) = find(points, &address(topic.group, topic.node, &key), settings) {
            new_tags.extend(points.learn_unit(i, made, born.unit.as_ref()));
        }
    }
    if !new_tags.is_empty() {
        collector.upsert_tags(new_tags).await;
    }
    let mut readings = Vec::with_capacity(outcome.samples.len() + outcome.dead.len());
    for sample in outcome.samples {
        let key = (sample.device, sample.metric);
        let Some((i, _)) = find(points, &address(topic.group, topic.node, &key), settings) else {
            continue;
        };
        let point = &points.list[i];
        readings.push(Reading {
            point: i,
            ts: sample.ts_ms.saturating_mul(1_000_000),
            value: sample.decoded.value.map(|v| point.scaled(v)),
            text: sample.decoded.text,
            quality: sample.decoded.quality,
            historical: sample.historical,
        });
    }
    for key in &outcome.dead {
        if let Some((i, _)) = find(points, &address(topic.group, topic.node, key), settings) {
            readings.push(Reading::bad(
                i,
                outcome.dead_at_ms * 1_000_000,
                BAD_NO_COMMUNICATION,
            ));
        }
    }
    for skipped in &outcome.skipped {
        collector.error(&format!("{}/{}: {skipped}", topic.group, topic.node));
    }
    writer.write(&points.list, readings).await;
}

/// TLS to the broker, verified against `ca` (PEM) or the system's roots,
/// with the ring provider the rest of lotline uses.
fn tls_transport(ca: Option<&std::path::Path>) -> Result<Transport, String> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
            }
        }
        None => {
            let (added, _) =
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                return Err("mqtts:// without tls_ca and no system CA roots found".to_string());
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(config),
    )))
}

/// The STATE payload of Sparkplug 3.0.
fn state(online: bool, timestamp_ms: i64) -> Vec<u8> {
    format!("{{\"online\":{online},\"timestamp\":{timestamp_ms}}}").into_bytes()
}

/// Publishes this host online, retained.
fn publish_state(mqtt: &Connection, topic: &str, since_ms: i64, collector: &Collector) {
    if let Err(e) = mqtt.publish(
        topic.to_string(),
        QoS::AtLeastOnce,
        true,
        state(true, since_ms),
    ) {
        collector.error(&format!("publishing STATE: {e}"));
    }
}

/// An NCMD payload asking an edge node to publish its births again.
fn rebirth_request(now_ms: i64) -> Vec<u8> {
    Payload {
        timestamp: Some(now_ms as u64),
        metrics: vec![Metric {
            name: Some("Node Control/Rebirth".into()),
            timestamp: Some(now_ms as u64),
            datatype: Some(datatype::BOOLEAN),
            value: Some(Value::BooleanValue(true)),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
}
