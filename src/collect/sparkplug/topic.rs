//! Sparkplug B topics (specification 3.0, chapter 4):
//! `spBv1.0/<group>/<message type>/<edge node>[/<device>]`, and the host
//! application's `spBv1.0/STATE/<host id>`.

/// The namespace of Sparkplug B topics.
pub const NAMESPACE: &str = "spBv1.0";

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NodeBirth,
    NodeDeath,
    NodeData,
    NodeCommand,
    DeviceBirth,
    DeviceDeath,
    DeviceData,
    DeviceCommand,
}

/// A parsed Sparkplug topic of an edge node or device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic<'a> {
    pub group: &'a str,
    pub kind: Kind,
    pub node: &'a str,
    /// Present exactly for the device message kinds.
    pub device: Option<&'a str>,
}

impl<'a> Topic<'a> {
    /// Parses `topic`; `None` for anything that is not an edge node's or
    /// device's Sparkplug B message (STATE messages included).
    pub fn parse(topic: &'a str) -> Option<Self> {
        let mut parts = topic.split('/');
        if parts.next()? != NAMESPACE {
            return None;
        }
        let group = parts.next()?;
        let kind = match parts.next()? {
            "NBIRTH" => Kind::NodeBirth,
            "NDEATH" => Kind::NodeDeath,
            "NDATA" => Kind::NodeData,
            "NCMD" => Kind::NodeCommand,
            "DBIRTH" => Kind::DeviceBirth,
            "DDEATH" => Kind::DeviceDeath,
            "DDATA" => Kind::DeviceData,
            "DCMD" => Kind::DeviceCommand,
            _ => return None,
        };
        let node = parts.next()?;
        let device = parts.next();
        let for_device = matches!(
            kind,
            Kind::DeviceBirth | Kind::DeviceDeath | Kind::DeviceData | Kind::DeviceCommand
        );
        if parts.next().is_some() || device.is_some() != for_device {
            return None;
        }
        if [group, node].into_iter().chain(device).any(str::is_empty) {
            return None;
        }
        Some(Self {
            group,
            kind,
            node,
            device,
        })
    }
}

/// The topic a host application asks `node` of `group` to do something on.
pub fn node_command(group: &str, node: &str) -> String {
    format!("{NAMESPACE}/{group}/NCMD/{node}")
}

/// The host application's STATE topic (Sparkplug 3.0).
pub fn host_state(host_id: &str) -> String {
    format!("{NAMESPACE}/STATE/{host_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_device_topics_parse_and_others_do_not() {
        assert_eq!(
            Topic::parse("spBv1.0/plant1/DDATA/edge1/press7"),
            Some(Topic {
                group: "plant1",
                kind: Kind::DeviceData,
                node: "edge1",
                device: Some("press7"),
            })
        );
        assert_eq!(
            Topic::parse("spBv1.0/plant1/NBIRTH/edge1").map(|t| (t.kind, t.device)),
            Some((Kind::NodeBirth, None))
        );
        for other in [
            "spBv1.0/STATE/lotline",
            "spBv1.0/plant1/NDATA/edge1/press7", // a node message with a device
            "spBv1.0/plant1/DDATA/edge1",        // a device message without one
            "spBv1.0/plant1/XDATA/edge1",
            "spAv1.0/plant1/NDATA/edge1",
            "spBv1.0//NDATA/edge1",
            "spBv1.0/plant1/DDATA/edge1/press7/extra",
        ] {
            assert_eq!(Topic::parse(other), None, "{other}");
        }
        assert_eq!(node_command("g", "n"), "spBv1.0/g/NCMD/n");
        assert_eq!(host_state("lotline"), "spBv1.0/STATE/lotline");
    }
}
