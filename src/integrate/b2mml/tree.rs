//! A B2MML document read into a small element tree (quick-xml's namespace
//! reader): every element keeps its namespace, local name, text and line,
//! so a refusal can name the element by path (`OperationsSchedule[1]/
//! OperationsRequest[2]/ID`) and line. Documents are at most
//! [`super::MAX_DOCUMENT_BYTES`] and [`MAX_ELEMENTS`] elements of at most
//! [`MAX_DEPTH`] levels, so a tree is the simple choice.

use std::collections::HashMap;

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

/// Most elements a document may have: far beyond a real schedule or master
/// data document, small enough that a hostile one cannot tie up memory.
pub const MAX_ELEMENTS: usize = 500_000;

/// Longest element name (the schema's longest is under 40 characters).
const MAX_NAME_BYTES: usize = 128;

/// Most bytes of all elements' paths together (each element keeps its
/// path for the refusals that name it): long names nested deep in many
/// elements would otherwise multiply a small document.
const MAX_PATH_BYTES: usize = 64 << 20;

/// Newlines before byte `pos`, counted on from where the last call stopped
/// (positions only grow while a document is read).
struct Lines<'a> {
    xml: &'a [u8],
    scanned: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, pos: u64) -> usize {
        let pos = (pos as usize).min(self.xml.len());
        if pos < self.scanned {
            return 1 + self.xml[..pos].iter().filter(|b| **b == b'\n').count();
        }
        self.line += self.xml[self.scanned..pos]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.scanned = pos;
        self.line
    }
}

/// An element being read, with how many children of each name it has so
/// far (for the indexes in paths).
struct Open {
    element: Element,
    named: HashMap<String, usize>,
}

/// Reads `xml` into its root element. CPU-bound: call it off the async
/// workers for a large document.
pub fn parse(xml: &[u8]) -> Result<Element, B2mmlError> {
    let mut reader = NsReader::from_reader(xml);
    let mut open: Vec<Open> = Vec::new();
    let mut lines = Lines {
        xml,
        scanned: 0,
        line: 1,
    };
    let mut elements = 0;
    let mut path_bytes = 0;
    loop {
        let position = reader.buffer_position();
        let read = reader.read_resolved_event();
        let (resolved, event) = match read {
            Ok(read) => read,
            Err(e) => {
                let reason = e.to_string();
                let line = lines.at(reader.error_position());
                return Err(B2mmlError::Xml { line, reason });
            }
        };
        let line = lines.at(position);
        let malformed = |reason: String| B2mmlError::Xml { line, reason };
        let namespace = match resolved {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            _ => String::new(),
        };
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                elements += 1;
                if open.len() >= MAX_DEPTH {
                    return Err(malformed(format!(
                        "nested deeper than {MAX_DEPTH} elements"
                    )));
                }
                if elements > MAX_ELEMENTS {
                    return Err(malformed(format!("more than {MAX_ELEMENTS} elements")));
                }
                let name = start.local_name();
                if name.as_ref().len() > MAX_NAME_BYTES {
                    return Err(malformed(format!(
                        "an element name longer than {MAX_NAME_BYTES} bytes"
                    )));
                }
                let name = String::from_utf8_lossy(name.as_ref()).into_owned();
                let element = new_element(&mut open, namespace, name, line);
                path_bytes += element.path.len();
                if path_bytes > MAX_PATH_BYTES {
                    return Err(malformed(
                        "the elements' paths exceed 64 MiB (long names nested deep)".into(),
                    ));
                }
                open.push(Open {
                    element,
                    named: HashMap::new(),
                });
                if empty && let Some(done) = close(&mut open) {
                    return Ok(done);
                }
            }
            Event::Text(text) => {
                let decoded = text.decode().map_err(|e| malformed(e.to_string()))?;
                if let Some(current) = open.last_mut() {
                    current.element.text.push_str(&decoded);
                }
            }
            Event::CData(text) => {
                if let Some(current) = open.last_mut() {
                    current
                        .element
                        .text
                        .push_str(&String::from_utf8_lossy(&text));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| malformed(e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| malformed(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| malformed(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                if let Some(current) = open.last_mut() {
                    current.element.text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                if let Some(done) = close(&mut open) {
                    return Ok(done);
                }
            }
            Event::Eof => return Err(malformed("no root element".into())),
            _ => {}
        }
    }
}

fn new_element(open: &mut [Open], namespace: String, name: String, line: usize) -> Element {
    let path = match open.last_mut() {
        Some(parent) => {
            let index = parent.named.entry(name.clone()).or_default();
            *index += 1;
            format!("{}/{name}[{index}]", parent.element.path)
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

/// Finishes the innermost open element: attaches it to its parent, or
/// returns it when it is the root.
fn close(open: &mut Vec<Open>) -> Option<Element> {
    let mut element = open.pop().expect("quick-xml matches end tags").element;
    element.text = element.text.trim().to_string();
    match open.last_mut() {
        Some(parent) => {
            parent.element.children.push(element);
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
        let long = format!("<r>\n\n<{0}/></r>", "n".repeat(200));
        let err = parse(long.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains("longer than 128") && err.contains("line 3"),
            "{err}"
        );
    }
}
