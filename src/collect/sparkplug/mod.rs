//! MQTT Sparkplug B (Eclipse Sparkplug 3.0), the host application's side:
//! [`topic`] names the messages, [`payload`] decodes a metric's value and
//! quality, [`nodes`] keeps what each edge node's births declared and turns
//! every message into samples, rebirth requests and deaths, and [`host`]
//! is the MQTT session that feeds them.
//!
//! A `source` is `group/node/device/metric`, with an empty device for a
//! node's own metrics (`plant1/edge1//Line/Speed`); the metric is the rest,
//! `/` included. A collector's `tag_template` names the tags of metrics the
//! mapping does not list, e.g. `{group}.{node}.{device}.{metric}`, with `/`
//! in metric names turned into `.` and empty parts left out.

pub mod host;
pub mod mqtt;
pub mod nodes;
pub mod payload;
pub mod topic;

use super::template::TagTemplate;

/// Settings of one Sparkplug collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The Sparkplug groups subscribed to.
    pub groups: Vec<String>,
    /// This host application's id (its STATE topic).
    pub host_id: String,
    pub tag_template: Option<TagTemplate>,
    /// User and password for the broker; none without.
    pub user: Option<(String, String)>,
    /// The CA certificate (PEM) a `mqtts://` broker's certificate must
    /// chain to; the system's roots without.
    pub tls_ca: Option<std::path::PathBuf>,
    pub mqtt_version: mqtt::Version,
}

/// The broker: `[mqtt://|mqtts://]host:port` (`tcp://` and `ssl://` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(endpoint: &str) -> Result<Self, String> {
        let (tls, address) = match endpoint.split_once("://") {
            Some(("mqtts" | "ssl", rest)) => (true, rest),
            Some(("mqtt" | "tcp", rest)) => (false, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "endpoint '{endpoint}': scheme '{scheme}' (mqtt:// or mqtts:// expected)"
                ));
            }
            None => (false, endpoint),
        };
        match address.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((host, Ok(port))) if !host.is_empty() => Ok(Self {
                tls,
                host: host.to_string(),
                port,
            }),
            _ => Err(format!(
                "endpoint '{endpoint}': [mqtt://|mqtts://]host:port expected"
            )),
        }
    }
}

/// Where a metric comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub group: String,
    pub node: String,
    /// Empty for the node's own metrics.
    pub device: String,
    pub metric: String,
}

impl Address {
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = source.trim().splitn(4, '/');
        let mut next = || parts.next().unwrap_or_default().to_string();
        let (group, node, device, metric) = (next(), next(), next(), next());
        if group.is_empty() || node.is_empty() || metric.is_empty() {
            return Err(
                "group/node/device/metric expected (device empty for a node's metric: plant1/edge1//Line/Speed)"
                    .to_string(),
            );
        }
        if [&group, &node, &device]
            .iter()
            .any(|p| p.contains(['+', '#']))
        {
            return Err("MQTT wildcards (+, #) are not ids".to_string());
        }
        Ok(Self {
            group,
            node,
            device,
            metric,
        })
    }
}

impl Address {
    /// The places of a Sparkplug collector's `tag_template`.
    pub const PLACES: [&str; 4] = ["group", "node", "device", "metric"];

    /// The tag `template` names this metric with.
    pub fn tag(&self, template: &TagTemplate) -> String {
        template.render(&[
            ("group", &self.group),
            ("node", &self.node),
            ("device", &self.device),
            ("metric", &self.metric),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_slashes_in_the_metric() {
        let a = Address::parse("plant1/edge1/press7/Axis/X/Position").unwrap();
        assert_eq!(
            (a.device.as_str(), a.metric.as_str()),
            ("press7", "Axis/X/Position")
        );
        let node = Address::parse("plant1/edge1//Line/Speed").unwrap();
        assert_eq!(
            (node.device.as_str(), node.metric.as_str()),
            ("", "Line/Speed")
        );
        assert!(Address::parse("plant1/edge1").is_err());
        assert!(Address::parse("plant1/+/press7/x").is_err());
    }

    #[test]
    fn endpoints_with_and_without_tls() {
        let plain = Endpoint::parse("broker.plant1:1883").unwrap();
        assert_eq!(
            (plain.tls, plain.host.as_str(), plain.port),
            (false, "broker.plant1", 1883)
        );
        assert!(Endpoint::parse("mqtts://10.0.0.5:8883").unwrap().tls);
        assert!(!Endpoint::parse("mqtt://10.0.0.5:1883").unwrap().tls);
        assert!(
            Endpoint::parse("http://10.0.0.5:1883")
                .unwrap_err()
                .contains("scheme 'http'")
        );
        assert!(Endpoint::parse("10.0.0.5").is_err());
    }

    #[test]
    fn templates_name_node_and_device_metrics() {
        let template = TagTemplate::parse(
            "site1.{group}.{node}.{device}.{metric}",
            &Address::PLACES,
            &["metric"],
        )
        .unwrap();
        let device = Address::parse("plant1/edge1/press7/Axis/X").unwrap();
        assert_eq!(device.tag(&template), "site1.plant1.edge1.press7.Axis.X");
        let node = Address::parse("plant1/edge1//Line/Speed").unwrap();
        assert_eq!(node.tag(&template), "site1.plant1.edge1.Line.Speed");
    }
}
