//! A B2MML document read into a small element tree (quick-xml's namespace
//! reader): every element keeps its namespace, local name, text and line,
//! so a refusal can name the element by path (`OperationsSchedule[1]/
//! OperationsRequest[2]/ID`) and line. Documents are a few megabytes at
//! most (the HTTP body limit), so a tree is the simple choice.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::B2mmlError;

/// The B2MML namespace (V0701 and the versions before it).
pub const NAMESPACE: &str = "http://www.mesa.org/xml/B2MML";

/// Deeper than any B2MML document goes; stops a hostile nesting early.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The element's namespace URI, empty when it has none.
    pub namespace: String,
    pub name: String,
    /// Text directly inside the element, trimmed.
    pub text: String,
    pub children: Vec<Element>,
    /// 1-based line of the start tag.
    pub line: usize,
    /// `Parent[i]/Name[j]`, each index 1-based among same-named siblings.
    pub path: String,
}

impl Element {
    /// The children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn first(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child `name`, if it has any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.first(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The text of the child `name`, which the schema requires.
    pub fn required(&self, name: &str) -> Result<&str, B2mmlError> {
        self.text_of(name).ok_or_else(|| {
            self.invalid(format!(
                "<{name}> is required in <{}> and missing or empty",
                self.name
            ))
        })
    }

    /// A refusal naming this element.
    pub fn invalid(&self, problem: impl Into<String>) -> B2mmlError {
        B2mmlError::Invalid {
            path: self.path.clone(),
            line: self.line,
            problem: problem.into(),
        }
    }
}

/// Reads `xml` into its root element.
pub fn parse(xml: &[u8]) -> Result<Element, B2mmlError> {
    let mut reader = NsReader::from_reader(xml);
    let mut open: Vec<Element> = Vec::new();
    let line_at = |pos: u64| {
        1 + xml[..(pos as usize).min(xml.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    };
    let malformed = |pos: u64, reason: String| B2mmlError::Xml {
        line: line_at(pos),
        reason,
    };
    loop {
        let position = reader.buffer_position();
        let read = reader.read_resolved_event();
        let (resolved, event) = match read {
            Ok(read) => read,
            Err(e) => {
                let reason = e.to_string();
                return Err(malformed(reader.error_position(), reason));
            }
        };
        let namespace = match resolved {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(start) | Event::Empty(start) if open.len() >= MAX_DEPTH => {
                let _ = start;
                return Err(malformed(
                    position,
                    format!("nested deeper than {MAX_DEPTH} elements"),
                ));
            }
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                open.push(new_element(&open, namespace, name, line_at(position)));
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let element = new_element(&open, namespace, name, line_at(position));
                if let Some(done) = close(&mut open, element) {
                    return Ok(done);
                }
            }
            Event::Text(text) => {
                let decoded = text
                    .decode()
                    .map_err(|e| malformed(position, e.to_string()))?;
                if let Some(element) = open.last_mut() {
                    element.text.push_str(&decoded);
                }
            }
            Event::CData(text) => {
                if let Some(element) = open.last_mut() {
                    element.text.push_str(&String::from_utf8_lossy(&text));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| malformed(position, e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|e| malformed(position, e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| malformed(position, format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                if let Some(element) = open.last_mut() {
                    element.text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                let element = open.pop().expect("quick-xml matches end tags");
                if let Some(done) = close(&mut open, element) {
                    return Ok(done);
                }
            }
            Event::Eof => return Err(malformed(position, "no root element".into())),
            _ => {}
        }
    }
}

fn new_element(open: &[Element], namespace: String, name: String, line: usize) -> Element {
    let path = match open.last() {
        Some(parent) => {
            let index = 1 + parent.children.iter().filter(|c| c.name == name).count();
            format!("{}/{name}[{index}]", parent.path)
        }
        None => format!("/{name}"),
    };
    Element {
        namespace,
        name,
        text: String::new(),
        children: Vec::new(),
        line,
        path,
    }
}

/// Attaches a finished element to its parent; returns it when it is the root.
fn close(open: &mut [Element], mut element: Element) -> Option<Element> {
    element.text = element.text.trim().to_string();
    match open.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lines_namespaces_and_entities() {
        let xml = br#"<?xml version="1.0"?>
<b:Root xmlns:b="http://www.mesa.org/xml/B2MML">
  <b:Item><b:ID>a &amp; b</b:ID></b:Item>
  <b:Item><b:ID>c</b:ID><Other/></b:Item>
</b:Root>"#;
        let root = parse(xml).unwrap();
        assert_eq!(root.namespace, NAMESPACE);
        let second = root.all("Item").nth(1).unwrap();
        assert_eq!(second.path, "/Root/Item[2]");
        assert_eq!(second.line, 4);
        assert_eq!(root.first("Item").unwrap().required("ID").unwrap(), "a & b");
        assert_eq!(second.children[1].namespace, "");
        let err = second.first("Other").unwrap().required("ID").unwrap_err();
        assert!(err.to_string().contains("/Root/Item[2]/Other[1]"), "{err}");
    }

    #[test]
    fn malformed_and_deep_documents_are_refused() {
        let err = parse(b"<a>\n<b></a>").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        let err = parse(deep.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("deeper"), "{err}");
    }
}
