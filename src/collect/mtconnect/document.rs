//! The MTConnect agent's response documents (MTConnect Standard, Part 1–3),
//! read with quick-xml: `MTConnectDevices` (from `/probe`) gives every data
//! item with its device, component, category, type and units;
//! `MTConnectStreams` (from `/current` and `/sample`) gives the header's
//! `instanceId` and sequence range and every observation; `MTConnectError`
//! gives the agent's error codes (`OUT_OF_RANGE` when the buffer no longer
//! holds what was asked for). Namespaces and versions are not checked:
//! elements are matched by local name, as agents of 1.x and 2.x differ only
//! in their namespace.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// Why a document could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DocumentError {
    #[error("not well-formed XML at byte {at}: {reason}")]
    Xml { at: u64, reason: String },
    #[error("a {0} document was expected, the root is <{1}>")]
    Root(&'static str, String),
    #[error("<{element}> has no {attribute}")]
    Missing {
        element: String,
        attribute: &'static str,
    },
    #[error("<{element}> {attribute}='{value}': {reason}")]
    Invalid {
        element: String,
        attribute: &'static str,
        value: String,
        reason: String,
    },
    /// The agent answered with an `MTConnectError`: its errors (code,
    /// message) and the instance that answered.
    #[error("the agent refused: {}", .errors.iter().map(|(c, m)| format!("{c}: {m}")).collect::<Vec<_>>().join("; "))]
    Agent {
        errors: Vec<(String, String)>,
        instance_id: Option<u64>,
    },
}

impl DocumentError {
    /// The agent said the requested sequence is no longer (or not yet) in
    /// its buffer.
    pub fn is_out_of_range(&self) -> bool {
        matches!(self, Self::Agent { errors, .. } if errors.iter().any(|(code, _)| code == "OUT_OF_RANGE"))
    }
}

/// What an observation is, from its data item's category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Sample,
    Event,
    Condition,
}

/// A data item of the probe.
#[derive(Debug, Clone, PartialEq)]
pub struct DataItem {
    pub id: String,
    pub name: Option<String>,
    pub device: String,
    /// The innermost component's name (or id), empty for the device's own.
    pub component: String,
    pub category: Category,
    pub kind: String,
    pub units: Option<String>,
}

impl DataItem {
    /// The name, or the id when the item has none.
    pub fn name_or_id(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The header of a streams document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub instance_id: u64,
    /// The sequence of the next observation the agent will have.
    pub next_sequence: u64,
    /// The oldest sequence still in the agent's buffer.
    pub first_sequence: u64,
    /// The newest sequence in the agent's buffer.
    pub last_sequence: u64,
}

/// One observation of a streams document.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub data_item_id: String,
    pub sequence: u64,
    pub timestamp_ns: i64,
    /// The element's name (`Position`, `Execution`, or for conditions
    /// `Normal`, `Warning`, `Fault`, `Unavailable`).
    pub element: String,
    pub category: Category,
    /// The element's text (`UNAVAILABLE` when the agent has no value).
    pub text: String,
}

/// A streams document.
#[derive(Debug, Clone, PartialEq)]
pub struct Streams {
    pub header: Header,
    pub observations: Vec<Observation>,
}

fn xml_error(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> DocumentError {
    DocumentError::Xml {
        at: reader.buffer_position(),
        reason: e.to_string(),
    }
}

fn local_name(element: &BytesStart) -> String {
    String::from_utf8_lossy(element.local_name().as_ref()).into_owned()
}

/// The attribute `name` of `element`, if present.
fn attribute(element: &BytesStart, name: &str) -> Result<Option<String>, DocumentError> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| DocumentError::Xml {
            at: 0,
            reason: e.to_string(),
        })?;
        if attr.key.local_name().as_ref() == name.as_bytes() {
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| DocumentError::Xml {
                    at: 0,
                    reason: e.to_string(),
                })?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

fn required(element: &BytesStart, name: &'static str) -> Result<String, DocumentError> {
    attribute(element, name)?.ok_or_else(|| DocumentError::Missing {
        element: local_name(element),
        attribute: name,
    })
}

fn number<T: std::str::FromStr>(
    element: &BytesStart,
    name: &'static str,
) -> Result<T, DocumentError>
where
    T::Err: std::fmt::Display,
{
    let value = required(element, name)?;
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| DocumentError::Invalid {
            element: local_name(element),
            attribute: name,
            value: value.clone(),
            reason: e.to_string(),
        })
}

/// An MTConnect timestamp (ISO 8601 in UTC, `Z` often left out by 1.x
/// agents) in nanoseconds since the epoch.
pub fn timestamp_ns(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{text}Z")));
    parsed
        .map_err(|e| e.to_string())?
        .timestamp_nanos_opt()
        .ok_or_else(|| "outside the nanosecond range".to_string())
}

/// A step of [`walk`]: an element starts (with its ancestors' local
/// names), or ends (its local name, its ancestors', its text).
enum Node<'e, 'p> {
    Start(&'e BytesStart<'e>, &'p [String]),
    End(&'e str, &'p [String], String),
}

/// Reads `xml`, calling `visit` at each element's start and end (an empty
/// element gives both).
fn walk(
    xml: &[u8],
    mut visit: impl FnMut(Node) -> Result<(), DocumentError>,
) -> Result<(), DocumentError> {
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| xml_error(&reader, e))? {
            Event::Start(element) => {
                visit(Node::Start(&element, &path))?;
                path.push(local_name(&element));
                text.clear();
            }
            Event::Empty(element) => {
                visit(Node::Start(&element, &path))?;
                let name = local_name(&element);
                visit(Node::End(&name, &path, String::new()))?;
            }
            Event::Text(t) => {
                let decoded: Cow<str> = t.decode().map_err(|e| xml_error(&reader, e))?;
                text.push_str(&decoded);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| xml_error(&reader, e))? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| xml_error(&reader, e))?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| xml_error(&reader, format!("unknown entity &{name};")))?;
                    text.push_str(resolved);
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                visit(Node::End(&name, &path, std::mem::take(&mut text)))?;
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The root element's local name.
fn root(xml: &[u8]) -> Result<String, DocumentError> {
    let mut reader = Reader::from_reader(xml);
    loop {
        match reader.read_event().map_err(|e| xml_error(&reader, e))? {
            Event::Start(e) | Event::Empty(e) => return Ok(local_name(&e)),
            Event::Eof => return Err(xml_error(&reader, "no root element")),
            _ => {}
        }
    }
}

/// The agent's errors, when `xml` is an `MTConnectError` document.
fn agent_errors(xml: &[u8]) -> Result<(), DocumentError> {
    if root(xml)? != "MTConnectError" {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut code = String::new();
    let mut instance_id = None;
    walk(xml, |node| {
        match node {
            Node::Start(element, _) => match local_name(element).as_str() {
                "Error" => code = attribute(element, "errorCode")?.unwrap_or_default(),
                "Header" => {
                    instance_id = attribute(element, "instanceId")?.and_then(|i| i.parse().ok());
                }
                _ => {}
            },
            Node::End("Error", _, text) => {
                errors.push((std::mem::take(&mut code), text.trim().to_string()));
            }
            Node::End(..) => {}
        }
        Ok(())
    })?;
    Err(DocumentError::Agent {
        errors,
        instance_id,
    })
}

/// The data items of a probe (`MTConnectDevices`) document.
pub fn probe(xml: &[u8]) -> Result<Vec<DataItem>, DocumentError> {
    agent_errors(xml)?;
    let root = root(xml)?;
    if root != "MTConnectDevices" {
        return Err(DocumentError::Root("MTConnectDevices", root));
    }
    let mut items = Vec::new();
    // The device and the components around the current element.
    let mut owners: Vec<(String, String)> = Vec::new();
    let mut device = String::new();
    walk(xml, |node| {
        let (element, path) = match node {
            Node::Start(element, path) => (element, path),
            Node::End(name, path, _) => {
                let parent = path.last().map(String::as_str);
                if matches!(parent, Some("Devices" | "Components"))
                    && owners.last().is_some_and(|(owner, _)| owner == name)
                {
                    owners.pop();
                }
                return Ok(());
            }
        };
        {
            let name = local_name(element);
            let parent = path.last().map(String::as_str);
            if name == "DataItem" {
                let category = match required(element, "category")?.as_str() {
                    "SAMPLE" => Category::Sample,
                    "EVENT" => Category::Event,
                    "CONDITION" => Category::Condition,
                    other => {
                        return Err(DocumentError::Invalid {
                            element: name,
                            attribute: "category",
                            value: other.to_string(),
                            reason: "SAMPLE, EVENT or CONDITION expected".to_string(),
                        });
                    }
                };
                let component = owners.last().map(|(_, c)| c.clone()).unwrap_or_default();
                items.push(DataItem {
                    id: required(element, "id")?,
                    name: attribute(element, "name")?,
                    device: device.clone(),
                    component,
                    category,
                    kind: required(element, "type")?,
                    units: attribute(element, "units")?,
                });
            } else if parent == Some("Devices") {
                device = attribute(element, "name")?.unwrap_or(required(element, "id")?);
                owners.push((name, String::new()));
            } else if parent == Some("Components") {
                let component = attribute(element, "name")?.unwrap_or(required(element, "id")?);
                owners.push((name, component));
            }
            Ok(())
        }
    })?;
    Ok(items)
}

/// The header and observations of a streams (`MTConnectStreams`) document.
pub fn streams(xml: &[u8]) -> Result<Streams, DocumentError> {
    agent_errors(xml)?;
    let root = root(xml)?;
    if root != "MTConnectStreams" {
        return Err(DocumentError::Root("MTConnectStreams", root));
    }
    let mut header = None;
    let mut observations = Vec::new();
    let mut open: Option<Observation> = None;
    let section = |path: &[String]| match path.last().map(String::as_str) {
        Some("Samples") => Some(Category::Sample),
        Some("Events") => Some(Category::Event),
        Some("Condition") => Some(Category::Condition),
        _ => None,
    };
    walk(xml, |node| {
        let (element, path) = match node {
            Node::Start(element, path) => (element, path),
            Node::End(_, path, text) => {
                // The observation's own end, not one of its children's.
                if section(path).is_some()
                    && let Some(mut observation) = open.take()
                {
                    observation.text = text.trim().to_string();
                    observations.push(observation);
                }
                return Ok(());
            }
        };
        {
            let name = local_name(element);
            let category = section(path);
            if name == "Header" {
                header = Some(Header {
                    instance_id: number(element, "instanceId")?,
                    next_sequence: number(element, "nextSequence")?,
                    first_sequence: number(element, "firstSequence")?,
                    last_sequence: number(element, "lastSequence")?,
                });
            } else if let Some(category) = category {
                let stamp = required(element, "timestamp")?;
                let timestamp_ns =
                    timestamp_ns(&stamp).map_err(|reason| DocumentError::Invalid {
                        element: name.clone(),
                        attribute: "timestamp",
                        value: stamp.clone(),
                        reason,
                    })?;
                open = Some(Observation {
                    data_item_id: required(element, "dataItemId")?,
                    sequence: number(element, "sequence")?,
                    timestamp_ns,
                    element: name,
                    category,
                    text: String::new(),
                });
            }
            Ok(())
        }
    })?;
    let header = header.ok_or(DocumentError::Missing {
        element: "MTConnectStreams".to_string(),
        attribute: "Header",
    })?;
    Ok(Streams {
        header,
        observations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:2.0">
  <Header creationTime="2026-12-07T10:00:00Z" sender="agent" instanceId="1700" version="2.0.0" bufferSize="16"/>
  <Devices>
    <Device id="d1" name="VMC-3Axis" uuid="vmc-1">
      <DataItems>
        <DataItem category="EVENT" id="avail" type="AVAILABILITY"/>
      </DataItems>
      <Components>
        <Axes id="ax" name="base">
          <Components>
            <Linear id="x" name="X">
              <DataItems>
                <DataItem category="SAMPLE" id="Xact" name="Xact" type="POSITION" subType="ACTUAL" units="MILLIMETER"/>
              </DataItems>
            </Linear>
          </Components>
        </Axes>
        <Controller id="ctl">
          <DataItems>
            <DataItem category="CONDITION" id="logic" type="LOGIC_PROGRAM"/>
          </DataItems>
        </Controller>
      </Components>
    </Device>
  </Devices>
</MTConnectDevices>"#;

    #[test]
    fn a_probe_names_items_with_their_device_and_component() {
        let items = probe(PROBE.as_bytes()).unwrap();
        let summary: Vec<_> = items
            .iter()
            .map(|i| {
                (
                    i.id.as_str(),
                    i.name_or_id(),
                    i.device.as_str(),
                    i.component.as_str(),
                    i.category,
                    i.units.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("avail", "avail", "VMC-3Axis", "", Category::Event, None),
                (
                    "Xact",
                    "Xact",
                    "VMC-3Axis",
                    "X",
                    Category::Sample,
                    Some("MILLIMETER")
                ),
                (
                    "logic",
                    "logic",
                    "VMC-3Axis",
                    "ctl",
                    Category::Condition,
                    None
                ),
            ]
        );
    }

    #[test]
    fn streams_give_the_header_and_every_observation() {
        let xml = r#"<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0">
  <Header instanceId="1700" nextSequence="45" firstSequence="1" lastSequence="44" creationTime="2026-12-07T10:00:01Z"/>
  <Streams><DeviceStream name="VMC-3Axis" uuid="vmc-1">
    <ComponentStream component="Linear" name="X" componentId="x">
      <Samples><Position dataItemId="Xact" timestamp="2026-12-07T10:00:00.123456Z" sequence="42" subType="ACTUAL">12.5</Position></Samples>
    </ComponentStream>
    <ComponentStream component="Controller" componentId="ctl">
      <Events><Execution dataItemId="exec" timestamp="2026-12-07T10:00:00.5" sequence="43">ACTIVE &amp; READY</Execution></Events>
      <Condition><Fault dataItemId="logic" timestamp="2026-12-07T10:00:00.6Z" sequence="44" type="LOGIC_PROGRAM" nativeCode="E7">Overtravel</Fault>
      <Normal dataItemId="other" timestamp="2026-12-07T10:00:00.6Z" sequence="40" type="SYSTEM"/></Condition>
    </ComponentStream>
  </DeviceStream></Streams>
</MTConnectStreams>"#;
        let streams = streams(xml.as_bytes()).unwrap();
        assert_eq!(
            streams.header,
            Header {
                instance_id: 1700,
                next_sequence: 45,
                first_sequence: 1,
                last_sequence: 44,
            }
        );
        let got: Vec<_> = streams
            .observations
            .iter()
            .map(|o| {
                (
                    o.data_item_id.as_str(),
                    o.sequence,
                    o.element.as_str(),
                    o.category,
                    o.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Xact", 42, "Position", Category::Sample, "12.5"),
                ("exec", 43, "Execution", Category::Event, "ACTIVE & READY"),
                ("logic", 44, "Fault", Category::Condition, "Overtravel"),
                ("other", 40, "Normal", Category::Condition, ""),
            ]
        );
        assert_eq!(
            streams.observations[0].timestamp_ns,
            1_796_637_600_123_456_000
        );
        assert_eq!(
            streams.observations[1].timestamp_ns,
            1_796_637_600_500_000_000
        );
    }

    #[test]
    fn agent_errors_and_wrong_documents_are_told_apart() {
        let error = r#"<MTConnectError><Header instanceId="1" nextSequence="1" firstSequence="1" lastSequence="0"/>
          <Errors><Error errorCode="OUT_OF_RANGE">'from' must be greater than 9</Error></Errors></MTConnectError>"#;
        let e = streams(error.as_bytes()).unwrap_err();
        assert!(e.is_out_of_range(), "{e}");
        assert!(matches!(
            e,
            DocumentError::Agent {
                instance_id: Some(1),
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "the agent refused: OUT_OF_RANGE: 'from' must be greater than 9"
        );
        assert_eq!(
            streams(PROBE.as_bytes()).unwrap_err(),
            DocumentError::Root("MTConnectStreams", "MTConnectDevices".into())
        );
        assert!(matches!(
            streams(b"<MTConnectStreams><Header"),
            Err(DocumentError::Xml { .. })
        ));
    }
}
