//! What a Sparkplug host application remembers of each edge node: the
//! metrics its births declared per node and device (name, alias, data
//! type, unit), the birth's bdSeq and the `seq` expected next.
//! [`Nodes::receive`] turns one message into what to store, whether to ask
//! the node for a rebirth (data before a birth, an unknown alias or name, a
//! `seq` gap), and which metrics a death leaves without communication.

use std::collections::HashMap;

use super::payload::{self, Decoded, Payload, decode, unit};
use super::topic::{Kind, Topic};

/// A metric of a node (`device` `None`) or of one of its devices.
pub type MetricKey = (Option<String>, String);

/// A value to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub device: Option<String>,
    pub metric: String,
    pub ts_ms: i64,
    pub decoded: Decoded,
    /// From the edge node's own store-and-forward: stored, not live.
    pub historical: bool,
}

/// A metric a birth declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub device: Option<String>,
    pub name: String,
    pub unit: Option<String>,
}

/// What one message means.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    /// Metrics a birth declared (for `tags`).
    pub born: Vec<Declared>,
    /// Metrics not stored, with the reason.
    pub skipped: Vec<String>,
    /// Why the node must be asked for a rebirth.
    pub rebirth: Option<String>,
    /// Metrics whose source is gone (a death), and when.
    pub dead: Vec<MetricKey>,
    pub dead_at_ms: i64,
}

/// Names of node metrics that describe the session, not the process.
fn is_session_metric(name: &str) -> bool {
    name == "bdSeq" || name.starts_with("Node Control/") || name.starts_with("Device Control/")
}

#[derive(Debug, Default)]
struct Node {
    bd_seq: Option<u64>,
    next_seq: u64,
    datatypes: HashMap<MetricKey, u32>,
    aliases: HashMap<u64, MetricKey>,
}

impl Node {
    /// Checks `seq` and expects the next; the reason when it is not the
    /// one expected.
    fn sequence(&mut self, seq: Option<u64>) -> Option<String> {
        let expected = self.next_seq;
        let seq = seq?;
        self.next_seq = (seq + 1) % 256;
        (seq != expected).then(|| format!("seq {seq} where {expected} was expected"))
    }

    fn declare(&mut self, device: Option<&str>, payload: &Payload, out: &mut Outcome, now_ms: i64) {
        for metric in &payload.metrics {
            let name = metric.name();
            if name.is_empty() || (device.is_none() && is_session_metric(name)) {
                continue;
            }
            let key: MetricKey = (device.map(str::to_string), name.to_string());
            let Some(datatype) = metric.datatype else {
                out.skipped
                    .push(format!("{name}: a birth without its data type"));
                continue;
            };
            if let Some(alias) = metric.alias {
                self.aliases.insert(alias, key.clone());
            }
            self.datatypes.insert(key, datatype);
            out.born.push(Declared {
                device: device.map(str::to_string),
                name: name.to_string(),
                unit: unit(metric),
            });
        }
        self.store(device, payload, out, now_ms);
    }

    fn store(&self, device: Option<&str>, payload: &Payload, out: &mut Outcome, now_ms: i64) {
        for metric in &payload.metrics {
            if metric.is_transient() {
                continue; // "should not be stored in a historian"
            }
            let key = match (metric.name(), metric.alias) {
                ("", Some(alias)) => match self.aliases.get(&alias) {
                    Some(key) => key.clone(),
                    None => {
                        out.rebirth.get_or_insert(format!("unknown alias {alias}"));
                        continue;
                    }
                },
                ("", None) => continue,
                (name, _) => (device.map(str::to_string), name.to_string()),
            };
            if key.0.is_none() && is_session_metric(&key.1) {
                continue;
            }
            let Some(&datatype) = self.datatypes.get(&key) else {
                out.rebirth
                    .get_or_insert(format!("metric '{}' not declared in a birth", key.1));
                continue;
            };
            match decode(metric, metric.datatype.unwrap_or(datatype)) {
                Ok(decoded) => out.samples.push(Sample {
                    ts_ms: metric
                        .timestamp
                        .or(payload.timestamp)
                        .map_or(now_ms, |t| t as i64),
                    device: key.0,
                    metric: key.1,
                    decoded,
                    historical: metric.is_historical(),
                }),
                Err(why) => out.skipped.push(format!("{}: {why}", key.1)),
            }
        }
    }

    fn forget_device(&mut self, device: &str) -> Vec<MetricKey> {
        let of_device = |key: &MetricKey| key.0.as_deref() == Some(device);
        self.aliases.retain(|_, key| !of_device(key));
        let gone: Vec<MetricKey> = self
            .datatypes
            .keys()
            .filter(|k| of_device(k))
            .cloned()
            .collect();
        self.datatypes.retain(|key, _| !of_device(key));
        gone
    }
}

/// The `bdSeq` metric of a node's birth or death: which MQTT session it is.
fn bd_seq(payload: &Payload) -> Option<u64> {
    use payload::payload::metric::Value;
    let metric = payload.metrics.iter().find(|m| m.name() == "bdSeq")?;
    match metric.value {
        Some(Value::LongValue(v)) => Some(v),
        Some(Value::IntValue(v)) => Some(u64::from(v)),
        _ => None,
    }
}

/// Every edge node seen, by (group, node).
#[derive(Debug, Default)]
pub struct Nodes {
    nodes: HashMap<(String, String), Node>,
}

impl Nodes {
    /// What `payload` on `topic` means, received at `now_ms`.
    pub fn receive(&mut self, topic: &Topic, payload: &Payload, now_ms: i64) -> Outcome {
        let mut out = Outcome::default();
        let id = (topic.group.to_string(), topic.node.to_string());
        match topic.kind {
            Kind::NodeBirth => {
                let bd_seq = bd_seq(payload);
                // A new birth: what an earlier one declared is forgotten.
                let node = self.nodes.entry(id).or_default();
                *node = Node {
                    bd_seq,
                    next_seq: payload.seq() % 256,
                    ..Node::default()
                };
                node.sequence(payload.seq);
                node.declare(None, payload, &mut out, now_ms);
            }
            Kind::NodeDeath => {
                let bd_seq = bd_seq(payload);
                let current = self.nodes.get(&id).map(|n| n.bd_seq);
                // A death of an earlier session (a late will) ends nothing.
                if let Some(current) = current
                    && (bd_seq.is_none() || current.is_none() || bd_seq == current)
                {
                    let node = self.nodes.remove(&id).expect("known");
                    out.dead = node.datatypes.into_keys().collect();
                    // A will's timestamp is when it was registered: the
                    // death is when it arrives.
                    out.dead_at_ms = now_ms;
                }
            }
            Kind::DeviceBirth | Kind::DeviceData | Kind::DeviceDeath | Kind::NodeData => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    out.rebirth = Some(format!("{:?} before the node's birth", topic.kind));
                    return out;
                };
                if let Some(gap) = node.sequence(payload.seq) {
                    out.rebirth = Some(gap);
                }
                let device = topic.device;
                match topic.kind {
                    Kind::DeviceBirth => {
                        node.forget_device(device.expect("device topic"));
                        node.declare(device, payload, &mut out, now_ms);
                    }
                    Kind::DeviceDeath => {
                        out.dead = node.forget_device(device.expect("device topic"));
                        out.dead_at_ms = payload.timestamp.map_or(now_ms, |t| t as i64);
                    }
                    _ => node.store(device, payload, &mut out, now_ms),
                }
            }
            Kind::NodeCommand | Kind::DeviceCommand => {}
        }
        out
    }

    /// Every metric of every node: what a lost broker connection leaves
    /// without communication. The nodes are forgotten (each must be born
    /// again).
    pub fn lose_all(&mut self) -> Vec<(String, String, MetricKey)> {
        self.nodes
            .drain()
            .flat_map(|((group, node), state)| {
                state
                    .datatypes
                    .into_keys()
                    .map(move |key| (group.clone(), node.clone(), key))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::payload::datatype::*;
    use super::super::payload::payload::Metric;
    use super::super::payload::payload::metric::Value;
    use super::*;

    fn birth_metric(name: &str, alias: u64, datatype: u32, value: Value) -> Metric {
        Metric {
            name: Some(name.into()),
            alias: Some(alias),
            datatype: Some(datatype),
            timestamp: Some(1000),
            value: Some(value),
            ..Default::default()
        }
    }

    fn by_alias(alias: u64, value: Value, ts: u64) -> Metric {
        Metric {
            alias: Some(alias),
            timestamp: Some(ts),
            value: Some(value),
            ..Default::default()
        }
    }

    fn message(seq: u64, metrics: Vec<Metric>) -> Payload {
        Payload {
            timestamp: Some(999),
            seq: Some(seq),
            metrics,
            ..Default::default()
        }
    }

    fn topic(kind: &str, device: Option<&str>) -> String {
        match device {
            Some(d) => format!("spBv1.0/plant1/{kind}/edge1/{d}"),
            None => format!("spBv1.0/plant1/{kind}/edge1"),
        }
    }

    fn receive(nodes: &mut Nodes, kind: &str, device: Option<&str>, payload: Payload) -> Outcome {
        let topic = topic(kind, device);
        nodes.receive(&Topic::parse(&topic).unwrap(), &payload, 5000)
    }

    fn births(nodes: &mut Nodes) {
        let nbirth = message(
            0,
            vec![
                birth_metric("bdSeq", 0, INT64, Value::LongValue(3)),
                birth_metric(
                    "Node Control/Rebirth",
                    0,
                    BOOLEAN,
                    Value::BooleanValue(false),
                ),
                birth_metric("Line/Speed", 1, DOUBLE, Value::DoubleValue(12.5)),
            ],
        );
        let out = receive(nodes, "NBIRTH", None, nbirth);
        assert_eq!(out.samples.len(), 1, "only the process metric: {out:?}");
        assert_eq!(out.born.len(), 1);
        let dbirth = message(
            1,
            vec![birth_metric(
                "Temperature",
                10,
                FLOAT,
                Value::FloatValue(21.5),
            )],
        );
        let out = receive(nodes, "DBIRTH", Some("press7"), dbirth);
        assert_eq!(out.samples[0].device.as_deref(), Some("press7"));
        assert_eq!(out.samples[0].decoded.value, Some(21.5));
        assert_eq!(out.rebirth, None);
    }

    #[test]
    fn births_declare_and_data_by_alias_is_stored_at_the_metric_time() {
        let mut nodes = Nodes::default();
        births(&mut nodes);
        let out = receive(
            &mut nodes,
            "DDATA",
            Some("press7"),
            message(2, vec![by_alias(10, Value::FloatValue(22.0), 2000)]),
        );
        assert_eq!(out.rebirth, None);
        assert_eq!(
            out.samples,
            vec![Sample {
                device: Some("press7".into()),
                metric: "Temperature".into(),
                ts_ms: 2000,
                decoded: Decoded {
                    value: Some(22.0),
                    text: None,
                    quality: 0
                },
                historical: false,
            }]
        );
        let out = receive(
            &mut nodes,
            "NDATA",
            None,
            message(3, vec![by_alias(1, Value::DoubleValue(13.0), 2100)]),
        );
        assert_eq!(out.samples[0].metric, "Line/Speed");
    }

    #[test]
    fn gaps_unknown_aliases_and_data_before_birth_ask_for_a_rebirth() {
        let mut nodes = Nodes::default();
        let out = receive(&mut nodes, "NDATA", None, message(0, vec![]));
        assert!(out.rebirth.unwrap().contains("before the node's birth"));
        births(&mut nodes);
        // seq 2 is lost: the data of seq 3 is kept, and a rebirth asked.
        let out = receive(
            &mut nodes,
            "NDATA",
            None,
            message(3, vec![by_alias(1, Value::DoubleValue(1.0), 1)]),
        );
        assert_eq!(out.rebirth.as_deref(), Some("seq 3 where 2 was expected"));
        assert_eq!(out.samples.len(), 1);
        let out = receive(
            &mut nodes,
            "NDATA",
            None,
            message(4, vec![by_alias(99, Value::DoubleValue(1.0), 1)]),
        );
        assert_eq!(out.rebirth.as_deref(), Some("unknown alias 99"));
        assert!(out.samples.is_empty());
        // seq wraps from 255 to 0.
        receive(&mut nodes, "NDATA", None, message(255, vec![]));
        assert_eq!(
            receive(&mut nodes, "NDATA", None, message(0, vec![])).rebirth,
            None
        );
    }

    #[test]
    fn deaths_name_the_metrics_they_end_and_a_late_will_ends_nothing() {
        let mut nodes = Nodes::default();
        births(&mut nodes);
        let out = receive(&mut nodes, "DDEATH", Some("press7"), message(2, vec![]));
        assert_eq!(
            out.dead,
            vec![(Some("press7".to_string()), "Temperature".to_string())]
        );
        assert_eq!(out.dead_at_ms, 999);
        let stale_will = Payload {
            metrics: vec![birth_metric("bdSeq", 0, INT64, Value::LongValue(2))],
            ..Default::default()
        };
        assert!(
            receive(&mut nodes, "NDEATH", None, stale_will)
                .dead
                .is_empty()
        );
        let will = Payload {
            metrics: vec![birth_metric("bdSeq", 0, INT64, Value::LongValue(3))],
            ..Default::default()
        };
        let out = receive(&mut nodes, "NDEATH", None, will);
        assert_eq!(out.dead, vec![(None, "Line/Speed".to_string())]);
        assert_eq!(out.dead_at_ms, 5000, "a death is when it arrives");
        assert!(nodes.lose_all().is_empty(), "the dead node is forgotten");
    }

    #[test]
    fn historical_transient_and_unstorable_metrics() {
        let mut nodes = Nodes::default();
        births(&mut nodes);
        let mut historical = by_alias(10, Value::FloatValue(20.0), 500);
        historical.is_historical = Some(true);
        let mut transient = by_alias(10, Value::FloatValue(20.5), 600);
        transient.is_transient = Some(true);
        let out = receive(
            &mut nodes,
            "DDATA",
            Some("press7"),
            message(2, vec![historical, transient]),
        );
        assert_eq!(out.samples.len(), 1);
        assert!(out.samples[0].historical);
        let wrong = by_alias(10, Value::StringValue("hot".into()), 700);
        let out = receive(&mut nodes, "DDATA", Some("press7"), message(3, vec![wrong]));
        assert_eq!(
            out.skipped,
            vec!["Temperature: no value for data type 9".to_string()]
        );
        assert_eq!(nodes.lose_all().len(), 2);
    }
}
