//! Writing B2MML: an indented document through quick-xml's writer, the
//! `ApplicationArea` lotline sends, and B2MML's time format. Elements are
//! written in the order the V0701 schema's sequences require.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::tree::NAMESPACE;

/// How lotline names itself as a B2MML sender.
pub const LOGICAL_ID: &str = "lotline";

/// An XML document being written. Writing to memory cannot fail, so the
/// methods do not return errors.
pub struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    /// A document whose root is `root` in the B2MML namespace, with
    /// `releaseID` when the schema requires it (nouns, not `ConfirmBOD`).
    pub fn new(root: &str, release: bool) -> Self {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        let declaration = BytesDecl::new("1.0", Some("UTF-8"), None);
        writer
            .write_event(Event::Decl(declaration))
            .expect("to memory");
        let mut start = BytesStart::new(root);
        start.push_attribute(("xmlns", NAMESPACE));
        if release {
            start.push_attribute(("releaseID", "V0701"));
        }
        writer.write_event(Event::Start(start)).expect("to memory");
        Self { writer }
    }

    pub fn open(&mut self, name: &str) {
        self.open_with(name, &[]);
    }

    pub fn open_with(&mut self, name: &str, attributes: &[(&str, &str)]) {
        let mut start = BytesStart::new(name);
        for attribute in attributes {
            start.push_attribute(*attribute);
        }
        self.writer
            .write_event(Event::Start(start))
            .expect("to memory");
    }

    pub fn close(&mut self, name: &str) {
        self.writer
            .write_event(Event::End(BytesEnd::new(name)))
            .expect("to memory");
    }

    /// `<name>text</name>` (text escaped).
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    pub fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        self.open_with(name, attributes);
        self.writer
            .write_event(Event::Text(BytesText::new(text)))
            .expect("to memory");
        self.close(name);
    }

    /// `leaf` when there is a value.
    pub fn maybe(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// An empty element (`<Show/>`).
    pub fn empty(&mut self, name: &str) {
        self.writer
            .write_event(Event::Empty(BytesStart::new(name)))
            .expect("to memory");
    }

    /// `ApplicationArea` (or `OriginalApplicationArea`): sender, receiver,
    /// creation time and BODID, in the schema's order.
    pub fn application_area(&mut self, element: &str, area: &Area) {
        self.open(element);
        if let Some(sender) = &area.sender {
            self.open("Sender");
            self.leaf("LogicalID", sender);
            self.close("Sender");
        }
        if let Some(receiver) = &area.receiver {
            self.open("Receiver");
            self.leaf("LogicalID", receiver);
            self.close("Receiver");
        }
        self.leaf("CreationDateTime", &area.created);
        self.maybe("BODID", area.bod_id.as_deref());
        self.close(element);
    }

    /// A `Quantity` (or `Value`) element: number, `double`, unit.
    pub fn number(&mut self, element: &str, text_element: &str, value: f64, unit: Option<&str>) {
        self.open(element);
        self.leaf(text_element, &value.to_string());
        self.leaf("DataType", "double");
        self.maybe("UnitOfMeasure", unit);
        self.close(element);
    }

    pub fn finish(mut self, root: &str) -> Vec<u8> {
        self.close(root);
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        bytes
    }
}

/// An application area: who sends, to whom, when, and the BOD's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub sender: Option<String>,
    pub receiver: Option<String>,
    /// `xsd:dateTime`.
    pub created: String,
    pub bod_id: Option<String>,
}

impl Area {
    /// lotline's own, now, to `receiver`.
    pub fn ours(receiver: Option<String>) -> Self {
        let now = chrono::Utc::now();
        Self {
            sender: Some(LOGICAL_ID.to_string()),
            receiver,
            created: date_time(now.timestamp_nanos_opt().unwrap_or_default()),
            bod_id: Some(format!(
                "lotline-{}-{:08x}",
                now.format("%Y%m%dT%H%M%S%.6fZ"),
                rand::random::<u32>()
            )),
        }
    }
}

/// Nanoseconds since the epoch as `xsd:dateTime` in UTC.
pub fn date_time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
