//! The collectors' mapping file (TOML): which machines to collect from and
//! how each protocol address becomes a tag. Read once at start; every
//! problem stops start-up with the file, line and reason, so a plant never
//! runs with half a mapping.
//!
//! ```toml
//! [[collector]]
//! name = "press1"                     # unique; in status, metrics, audit
//! kind = "modbus"
//! endpoint = "10.0.0.17:502"
//! unit_id = 1                         # Modbus unit (slave) id, default 1
//! poll_interval_ms = 1000             # Modbus polling period, default 1000
//! equipment = "line1.press"           # default for every map entry below
//! [[collector.map]]
//! source = "holding:0:f32:abcd"       # protocol address (see docs/COLLECTORS.md)
//! tag = "line1.press.temperature"
//! unit = "Cel"
//! description = "platen temperature"
//! scale = 0.1                         # value * scale + offset
//! offset = 0.0
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::opcua::types::MessageSecurityMode;
use serde::Deserialize;
use toml::Spanned;

use super::template::TagTemplate;
use super::{modbus, mtconnect, opcua, sparkplug};
use crate::model::units;

/// A problem in the mapping file, with where it is.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}:{line}: {reason}", file = file.display())]
pub struct MappingError {
    pub file: PathBuf,
    /// 1-based line of the value at fault (of the file's start when unknown).
    pub line: usize,
    pub reason: String,
}

/// A validated mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub file: PathBuf,
    pub collectors: Vec<Collector>,
    /// Map entries whose tag the `aliases` table names (see
    /// [`super::aliases`]); their tag names are empty until resolved.
    pub by_alias: Vec<AliasEntry>,
}

/// A map entry without a `tag`, named through `aliases` as (system, `tag`,
/// source) of its collector's `aliases` system.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasEntry {
    /// Index of the collector in [`Mapping::collectors`], and of the point
    /// among its points.
    pub collector: usize,
    pub point: usize,
    pub system: String,
    pub source: String,
    pub line: usize,
}

/// One collector: a connection to one machine or server and its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    pub name: String,
    pub endpoint: String,
    pub protocol: Protocol,
}

/// What a collector speaks, with its settings and points.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    Modbus {
        settings: modbus::Settings,
        points: Vec<Point<modbus::Address>>,
    },
    OpcUa {
        settings: opcua::Settings,
        points: Vec<Point<opcua::Address>>,
    },
    Sparkplug {
        settings: sparkplug::Settings,
        points: Vec<Point<sparkplug::Address>>,
    },
    MtConnect {
        settings: mtconnect::Settings,
        points: Vec<Point<mtconnect::Address>>,
    },
}

impl Collector {
    pub fn kind(&self) -> &'static str {
        match self.protocol {
            Protocol::Modbus { .. } => "modbus",
            Protocol::OpcUa { .. } => "opcua",
            Protocol::Sparkplug { .. } => "sparkplug",
            Protocol::MtConnect { .. } => "mtconnect",
        }
    }

    /// The point `index`'s tag (for naming it after parsing).
    pub fn tag_mut(&mut self, index: usize) -> &mut TagMeta {
        match &mut self.protocol {
            Protocol::Modbus { points, .. } => &mut points[index].tag,
            Protocol::OpcUa { points, .. } => &mut points[index].tag,
            Protocol::Sparkplug { points, .. } => &mut points[index].tag,
            Protocol::MtConnect { points, .. } => &mut points[index].tag,
        }
    }

    /// The tags this collector writes, with their metadata.
    pub fn tags(&self) -> Vec<&TagMeta> {
        match &self.protocol {
            Protocol::Modbus { points, .. } => points.iter().map(|p| &p.tag).collect(),
            Protocol::OpcUa { points, .. } => points.iter().map(|p| &p.tag).collect(),
            Protocol::Sparkplug { points, .. } => points.iter().map(|p| &p.tag).collect(),
            Protocol::MtConnect { points, .. } => points.iter().map(|p| &p.tag).collect(),
        }
    }
}

/// A tag as the mapping describes it (upserted into `tags`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagMeta {
    pub name: String,
    pub equipment: Option<String>,
    pub unit: Option<String>,
    pub description: Option<String>,
}

/// One mapped protocol address.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<A> {
    pub address: A,
    pub tag: TagMeta,
    pub scale: f64,
    pub offset: f64,
}

impl<A> Point<A> {
    /// The stored value of a raw reading.
    pub fn scaled(&self, raw: f64) -> f64 {
        raw * self.scale + self.offset
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    collector: Vec<Spanned<CollectorSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorSpec {
    name: Spanned<String>,
    kind: Spanned<String>,
    endpoint: Spanned<String>,
    unit_id: Option<Spanned<u8>>,
    poll_interval_ms: Option<Spanned<u64>>,
    publishing_interval_ms: Option<Spanned<u64>>,
    backfill_max_secs: Option<u64>,
    groups: Option<Vec<String>>,
    host_id: Option<String>,
    tag_template: Option<Spanned<String>>,
    sample_count: Option<Spanned<u64>>,
    tls_ca: Option<PathBuf>,
    mqtt_version: Option<Spanned<toml::Value>>,
    security_policy: Option<Spanned<String>>,
    security_mode: Option<Spanned<String>>,
    user: Option<String>,
    password: Option<String>,
    pki_dir: Option<PathBuf>,
    equipment: Option<String>,
    /// The system (as in `aliases.system`) whose ids the sources are: a map
    /// entry without `tag` is named by the alias of its source.
    aliases: Option<String>,
    #[serde(default)]
    map: Vec<Spanned<MapSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapSpec {
    source: Spanned<String>,
    tag: Option<Spanned<String>>,
    equipment: Option<String>,
    unit: Option<Spanned<String>>,
    description: Option<String>,
    scale: Option<Spanned<f64>>,
    offset: Option<Spanned<f64>>,
}

/// The points with their `source` parsed by `parse`.
fn addressed<A>(
    points: Vec<(Spanned<String>, Point<()>)>,
    parse: fn(&str) -> Result<A, String>,
    at: &dyn Fn(std::ops::Range<usize>, String) -> MappingError,
) -> Result<Vec<Point<A>>, MappingError> {
    points
        .into_iter()
        .map(|(source, point)| {
            let address = parse(source.get_ref()).map_err(|reason| {
                at(
                    source.span(),
                    format!("source '{}': {reason}", source.get_ref()),
                )
            })?;
            Ok(Point {
                address,
                tag: point.tag,
                scale: point.scale,
                offset: point.offset,
            })
        })
        .collect()
}

/// Reads and validates a mapping file.
pub fn load(file: &Path) -> Result<Mapping, MappingError> {
    let text = std::fs::read_to_string(file).map_err(|e| MappingError {
        file: file.to_path_buf(),
        line: 1,
        reason: format!("cannot read the mapping file: {e}"),
    })?;
    parse(file, &text)
}

/// The kinds of collector this version has.
const KINDS: &str = "modbus, opcua, sparkplug, mtconnect";

type At<'a> = &'a dyn Fn(std::ops::Range<usize>, String) -> MappingError;

/// A collector's user and password, which go together.
fn user_and_password(
    collector: &CollectorSpec,
    name: &str,
    at: At,
) -> Result<Option<(String, String)>, MappingError> {
    match (&collector.user, &collector.password) {
        (Some(user), Some(password)) => Ok(Some((user.clone(), password.clone()))),
        (None, None) => Ok(None),
        _ => Err(at(
            collector.name.span(),
            format!("collector '{name}': user and password go together"),
        )),
    }
}

/// The collector's `tag_template`, for the kinds that name points from
/// what the source declares.
fn template(
    collector: &CollectorSpec,
    places: &[&str],
    required: &[&str],
    at: At,
) -> Result<Option<TagTemplate>, MappingError> {
    collector
        .tag_template
        .as_ref()
        .map(|t| {
            TagTemplate::parse(t.get_ref(), places, required).map_err(|reason| at(t.span(), reason))
        })
        .transpose()
}

/// Validates mapping `text` (named `file` in errors).
pub fn parse(file: &Path, text: &str) -> Result<Mapping, MappingError> {
    let at = |span: std::ops::Range<usize>, reason: String| MappingError {
        file: file.to_path_buf(),
        line: text[..span.start.min(text.len())].matches('\n').count() + 1,
        reason,
    };
    let spec: FileSpec = toml::from_str(text).map_err(|e| {
        let reason = e.message().to_string();
        at(e.span().unwrap_or(0..0), reason)
    })?;
    if spec.collector.is_empty() {
        return Err(at(0..0, "no [[collector]] in the file".into()));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    let mut collectors = Vec::new();
    let mut by_alias = Vec::new();
    for collector in spec.collector {
        let collector = collector.into_inner();
        let name = collector.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(at(collector.name.span(), "a collector needs a name".into()));
        }
        if let Some(line) =
            names.insert(name.clone(), at(collector.name.span(), String::new()).line)
        {
            return Err(at(
                collector.name.span(),
                format!("collector name '{name}' is used twice (first on line {line})"),
            ));
        }
        let endpoint = collector.endpoint.get_ref().trim().to_string();
        if endpoint.is_empty() {
            return Err(at(
                collector.endpoint.span(),
                format!("collector '{name}' needs an endpoint"),
            ));
        }
        let mut points = Vec::new();
        for spanned in &collector.map {
            let entry = spanned.get_ref();
            let tag = match (&entry.tag, &collector.aliases) {
                (Some(tag), _) => {
                    let name_of_tag = tag.get_ref().trim().to_string();
                    if name_of_tag.is_empty() {
                        return Err(at(tag.span(), "a map entry needs a tag".into()));
                    }
                    if let Some(other) = tags.insert(name_of_tag.clone(), name.clone()) {
                        return Err(at(
                            tag.span(),
                            format!(
                                "tag '{name_of_tag}' is mapped twice (also by collector '{other}')"
                            ),
                        ));
                    }
                    name_of_tag
                }
                (None, Some(system)) => {
                    by_alias.push(AliasEntry {
                        collector: collectors.len(),
                        point: points.len(),
                        system: system.clone(),
                        source: entry.source.get_ref().trim().to_string(),
                        line: at(spanned.span(), String::new()).line,
                    });
                    String::new()
                }
                (None, None) => {
                    return Err(at(
                        spanned.span(),
                        "a map entry needs a tag (or its collector names the system of \
                         its sources with aliases = \"...\", and the aliases table the tag)"
                            .into(),
                    ));
                }
            };
            let finite = |v: &Option<Spanned<f64>>, what: &str, default: f64| match v {
                Some(v) if !v.get_ref().is_finite() => Err(at(
                    v.span(),
                    format!(
                        "{what} of source '{}' must be a finite number",
                        entry.source.get_ref()
                    ),
                )),
                Some(v) => Ok(*v.get_ref()),
                None => Ok(default),
            };
            points.push((
                entry.source.clone(),
                Point {
                    address: (),
                    tag: TagMeta {
                        name: tag.clone(),
                        equipment: entry
                            .equipment
                            .clone()
                            .or_else(|| collector.equipment.clone()),
                        unit: entry
                            .unit
                            .as_ref()
                            .map(|unit| {
                                units::code_of(unit.get_ref().trim())
                                    .map(str::to_string)
                                    .map_err(|problem| {
                                        at(
                                            unit.span(),
                                            format!(
                                                "unit '{}' of source '{}' {problem}",
                                                unit.get_ref(),
                                                entry.source.get_ref()
                                            ),
                                        )
                                    })
                            })
                            .transpose()?,
                        description: entry.description.clone(),
                    },
                    scale: finite(&entry.scale, "scale", 1.0)?,
                    offset: finite(&entry.offset, "offset", 0.0)?,
                },
            ));
        }
        let templated = collector.tag_template.is_some();
        if points.is_empty() && !templated {
            return Err(at(
                collector.name.span(),
                format!("collector '{name}' maps no [[collector.map]] entries"),
            ));
        }
        let interval = |given: &Option<Spanned<u64>>, what: &str| match given {
            Some(ms) if *ms.get_ref() == 0 => {
                Err(at(ms.span(), format!("{what} must be at least 1")))
            }
            Some(ms) => Ok(Duration::from_millis(*ms.get_ref())),
            None => Ok(Duration::from_secs(1)),
        };
        if let Some(t) = &collector.tag_template
            && !matches!(collector.kind.get_ref().as_str(), "sparkplug" | "mtconnect")
        {
            return Err(at(
                t.span(),
                format!(
                    "collector '{name}': tag_template is for sparkplug and mtconnect collectors"
                ),
            ));
        }
        let protocol = match collector.kind.get_ref().as_str() {
            "modbus" => {
                let poll = interval(&collector.poll_interval_ms, "poll_interval_ms")?;
                let settings = modbus::Settings {
                    unit_id: collector.unit_id.as_ref().map_or(1, |u| *u.get_ref()),
                    poll_interval: poll,
                };
                Protocol::Modbus {
                    settings,
                    points: addressed(points, modbus::Address::parse, &at)?,
                }
            }
            "opcua" => {
                let publishing =
                    interval(&collector.publishing_interval_ms, "publishing_interval_ms")?;
                let policy = collector.security_policy.as_ref();
                let security_policy = match policy.map(|p| p.get_ref().as_str()) {
                    None | Some("None") => "None".to_string(),
                    Some("Basic256Sha256") => "Basic256Sha256".to_string(),
                    Some(other) => {
                        return Err(at(
                            policy.expect("given").span(),
                            format!("security_policy '{other}': None or Basic256Sha256"),
                        ));
                    }
                };
                let mode = collector.security_mode.as_ref();
                let security_mode = match (
                    security_policy.as_str(),
                    mode.map(|m| m.get_ref().as_str()),
                ) {
                    ("None", None | Some("None")) => MessageSecurityMode::None,
                    ("Basic256Sha256", None | Some("SignAndEncrypt")) => {
                        MessageSecurityMode::SignAndEncrypt
                    }
                    ("Basic256Sha256", Some("Sign")) => MessageSecurityMode::Sign,
                    (policy, Some(other)) => {
                        return Err(at(
                            mode.expect("given").span(),
                            format!(
                                "security_mode '{other}' does not go with security_policy '{policy}' (None: None; Basic256Sha256: Sign or SignAndEncrypt)"
                            ),
                        ));
                    }
                    (_, None) => unreachable!("every policy has a default mode"),
                };
                let user = user_and_password(&collector, &name, &at)?;
                let settings = opcua::Settings {
                    publishing_interval: publishing,
                    backfill_max: Duration::from_secs(
                        collector.backfill_max_secs.unwrap_or(86_400),
                    ),
                    security_policy,
                    security_mode,
                    user,
                    pki_dir: collector
                        .pki_dir
                        .clone()
                        .unwrap_or_else(|| "lotline-pki".into()),
                };
                Protocol::OpcUa {
                    settings,
                    points: addressed(points, opcua::Address::parse, &at)?,
                }
            }
            "sparkplug" => {
                let tag_template =
                    template(&collector, &sparkplug::Address::PLACES, &["metric"], &at)?;
                let groups = collector.groups.clone().unwrap_or_default();
                if groups.is_empty()
                    || groups
                        .iter()
                        .any(|g| g.is_empty() || g.contains(['/', '+', '#']))
                {
                    return Err(at(
                        collector.name.span(),
                        format!(
                            "collector '{name}': groups = [\"<Sparkplug group id>\", ...] is needed (ids without / + #)"
                        ),
                    ));
                }
                sparkplug::Endpoint::parse(&endpoint)
                    .map_err(|reason| at(collector.endpoint.span(), reason))?;
                let mqtt_version = match &collector.mqtt_version {
                    None => sparkplug::mqtt::Version::V311,
                    Some(v) => match v.get_ref() {
                        toml::Value::String(s) if s == "3.1.1" => sparkplug::mqtt::Version::V311,
                        toml::Value::String(s) if s == "5" => sparkplug::mqtt::Version::V5,
                        toml::Value::Integer(5) => sparkplug::mqtt::Version::V5,
                        other => {
                            return Err(at(
                                v.span(),
                                format!("mqtt_version {other}: \"3.1.1\" or 5"),
                            ));
                        }
                    },
                };
                let settings = sparkplug::Settings {
                    mqtt_version,
                    tls_ca: collector.tls_ca.clone(),
                    groups,
                    host_id: collector
                        .host_id
                        .clone()
                        .unwrap_or_else(|| "lotline".into()),
                    tag_template,
                    user: user_and_password(&collector, &name, &at)?,
                };
                Protocol::Sparkplug {
                    settings,
                    points: addressed(points, sparkplug::Address::parse, &at)?,
                }
            }
            "mtconnect" => {
                let settings = mtconnect::Settings {
                    poll_interval: interval(&collector.poll_interval_ms, "poll_interval_ms")?,
                    count: match &collector.sample_count {
                        Some(n) if *n.get_ref() == 0 => {
                            return Err(at(n.span(), "sample_count must be at least 1".into()));
                        }
                        Some(n) => *n.get_ref(),
                        None => 1000,
                    },
                    tag_template: template(
                        &collector,
                        &mtconnect::Address::PLACES,
                        &["name", "id"],
                        &at,
                    )?,
                };
                if !endpoint.starts_with("http://") {
                    return Err(at(
                        collector.endpoint.span(),
                        format!(
                            "collector '{name}': the agent's endpoint is http://host:port[/path]"
                        ),
                    ));
                }
                Protocol::MtConnect {
                    settings,
                    points: addressed(points, mtconnect::Address::parse, &at)?,
                }
            }
            other => {
                return Err(at(
                    collector.kind.span(),
                    format!("unknown kind '{other}' (available: {KINDS})"),
                ));
            }
        };
        collectors.push(Collector {
            name,
            endpoint,
            protocol,
        });
    }
    Ok(Mapping {
        file: file.to_path_buf(),
        collectors,
        by_alias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[collector]]
name = "press1"
kind = "modbus"
endpoint = "127.0.0.1:5020"
equipment = "line1.press"

[[collector.map]]
source = "holding:0:f32"
tag = "line1.press.temperature"
unit = "Cel"
scale = 0.5

[[collector.map]]
source = "coil:3"
tag = "line1.press.running"
equipment = "line1.press.motor"
"#;

    fn error(text: &str) -> MappingError {
        parse(Path::new("plant.toml"), text).unwrap_err()
    }

    #[test]
    fn a_good_file_gives_collectors_points_and_tags() {
        let mapping = parse(Path::new("plant.toml"), GOOD).unwrap();
        let collector = &mapping.collectors[0];
        assert_eq!(
            (collector.name.as_str(), collector.kind()),
            ("press1", "modbus")
        );
        let Protocol::Modbus { settings, points } = &collector.protocol else {
            panic!("a modbus collector");
        };
        assert_eq!(
            (settings.unit_id, settings.poll_interval),
            (1, Duration::from_secs(1))
        );
        assert_eq!(points[0].scaled(10.0), 5.0);
        assert_eq!(points[0].tag.equipment.as_deref(), Some("line1.press"));
        assert_eq!(
            points[0].tag.unit.as_deref(),
            Some("CEL"),
            "stored as its code"
        );
        assert_eq!(
            points[1].tag.equipment.as_deref(),
            Some("line1.press.motor")
        );
        assert_eq!(collector.tags().len(), 2);
    }

    #[test]
    fn a_unit_that_names_no_recommendation_20_code_is_refused_at_its_line() {
        let e = error(&GOOD.replace("unit = \"Cel\"", "unit = \"strokes/min\""));
        assert_eq!(e.line, 11, "{e}");
        assert!(
            e.reason.starts_with(
                "unit 'strokes/min' of source 'holding:0:f32' is neither a UN/ECE Recommendation 20"
            ),
            "{e}"
        );
    }

    #[test]
    fn each_error_names_its_line() {
        let e = error(&GOOD.replace("kind = \"modbus\"", "kind = \"profibus\""));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (
                4,
                "unknown kind 'profibus' (available: modbus, opcua, sparkplug, mtconnect)"
            )
        );
        assert_eq!(
            e.to_string(),
            "plant.toml:4: unknown kind 'profibus' (available: modbus, opcua, sparkplug, mtconnect)"
        );

        let e = error(&GOOD.replace(
            "tag = \"line1.press.running\"",
            "tag = \"line1.press.temperature\"",
        ));
        assert_eq!(e.line, 16);
        assert!(e.reason.contains("mapped twice"), "{e}");

        let e = error(&GOOD.replace("coil:3", "coil:3:f32"));
        assert_eq!(e.line, 15);
        assert!(e.reason.starts_with("source 'coil:3:f32':"), "{e}");

        let e = error(&GOOD.replace("unit = \"Cel\"", "units = \"Cel\""));
        assert_eq!(e.line, 11);
        assert!(e.reason.contains("units"), "{e}");

        let e = error(&format!(
            "{GOOD}\n[[collector]]\nname = \"press1\"\nkind = \"modbus\"\nendpoint = \"x:1\"\n"
        ));
        assert_eq!(e.line, 20);
        assert!(e.reason.contains("used twice (first on line 3)"), "{e}");

        let e = error("[[collector]\nname = 1");
        assert_eq!(e.line, 1);
    }

    const UNS: &str = r#"[[collector]]
name = "uns"
kind = "sparkplug"
endpoint = "mqtts://broker:8883"
groups = ["plant1"]
mqtt_version = 5
tag_template = "site1.{group}.{node}.{device}.{metric}"

[[collector]]
name = "vmc"
kind = "mtconnect"
endpoint = "http://agent:5000"
tag_template = "site1.{device}.{name}"
"#;

    #[test]
    fn message_based_kinds_need_no_entries_with_a_template() {
        let mapping = parse(Path::new("plant.toml"), UNS).unwrap();
        let kinds: Vec<_> = mapping.collectors.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["sparkplug", "mtconnect"]);
        let Protocol::Sparkplug { settings, points } = &mapping.collectors[0].protocol else {
            panic!("a sparkplug collector");
        };
        assert_eq!(settings.mqtt_version, sparkplug::mqtt::Version::V5);
        assert!(points.is_empty() && settings.tag_template.is_some());

        let e = error(&UNS.replace("{metric}", "{metrics}"));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (7, "a tag_template needs {metric}")
        );
        let e = error(&UNS.replace("mqtt_version = 5", "mqtt_version = 4"));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (6, "mqtt_version 4: \"3.1.1\" or 5")
        );
        let e = error(&UNS.replace("mqtts://broker:8883", "wss://broker:8883"));
        assert_eq!(e.line, 4);
        assert!(e.reason.contains("scheme 'wss'"), "{e}");
        let e = error(&UNS.replace("groups = [\"plant1\"]", "groups = [\"plant/1\"]"));
        assert!(e.reason.contains("groups"), "{e}");
        let e = error(&UNS.replace("http://agent:5000", "agent:5000"));
        assert_eq!(e.line, 12);
        let e = error(&UNS.replace("site1.{device}.{name}", "site1.{device}"));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (13, "a tag_template needs {name} or {id}")
        );
        let e = error(&GOOD.replace(
            "endpoint = \"127.0.0.1:5020\"\n",
            "endpoint = \"127.0.0.1:5020\"\ntag_template = \"x.{metric}\"\n",
        ));
        assert!(
            e.reason
                .contains("tag_template is for sparkplug and mtconnect"),
            "{e}"
        );
    }
}
