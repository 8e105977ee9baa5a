//! MTConnect (the machine tools' protocol): an HTTP agent describes its
//! devices at `/probe` and serves their observations from a ring buffer of
//! numbered sequences at `/current` and `/sample?from=N`. [`document`] reads
//! the agent's documents, [`agent`] follows one agent. [`observation`]
//! turns an observation into a reading.
//!
//! A `source` is a data item's `id`, or its `name` when no item has that id
//! (and the name is unique in the agent). A collector's `tag_template`
//! names the data items the mapping does not list, from `{device}`,
//! `{component}`, `{name}` (the id when the item has no name), `{id}` and
//! `{type}`.

pub mod agent;
pub mod document;
pub mod observation;

use std::time::Duration;

use super::template::TagTemplate;

/// Settings of one MTConnect collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Time between two `/sample` requests when the last one was not full.
    pub poll_interval: Duration,
    /// At most this many observations per `/sample` request.
    pub count: u64,
    pub tag_template: Option<TagTemplate>,
}

/// A data item's id or name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(pub String);

impl Address {
    /// The places of an MTConnect collector's `tag_template`.
    pub const PLACES: [&str; 5] = ["device", "component", "name", "id", "type"];

    pub fn parse(source: &str) -> Result<Self, String> {
        let source = source.trim();
        if source.is_empty() || source.contains(char::is_whitespace) {
            return Err("a data item id or name expected (no spaces)".to_string());
        }
        Ok(Self(source.to_string()))
    }
}

/// The tag `template` names `item` with.
pub fn templated_tag(template: &TagTemplate, item: &document::DataItem) -> String {
    template.render(&[
        ("device", &item.device),
        ("component", &item.component),
        ("name", item.name_or_id()),
        ("id", &item.id),
        ("type", &item.kind),
    ])
}

#[cfg(test)]
mod tests {
    use super::document::{Category, DataItem};
    use super::*;

    #[test]
    fn sources_and_templates() {
        assert_eq!(Address::parse(" Xact ").unwrap(), Address("Xact".into()));
        assert!(Address::parse("X act").is_err());
        assert!(Address::parse("").is_err());
        let template = TagTemplate::parse(
            "site1.{device}.{component}.{name}",
            &Address::PLACES,
            &["name", "id"],
        )
        .unwrap();
        let item = DataItem {
            id: "x1".into(),
            name: Some("Xact".into()),
            device: "VMC-3Axis".into(),
            component: "X".into(),
            category: Category::Sample,
            kind: "POSITION".into(),
            units: None,
        };
        assert_eq!(templated_tag(&template, &item), "site1.VMC-3Axis.X.Xact");
        let device_item = DataItem {
            component: String::new(),
            name: None,
            ..item
        };
        assert_eq!(templated_tag(&template, &device_item), "site1.VMC-3Axis.x1");
    }
}
