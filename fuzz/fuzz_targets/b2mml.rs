//! Fuzzes what the server does with the bytes of a B2MML document before it
//! looks anything up: the element tree (`src/integrate/b2mml/tree.rs`), the
//! schema checks (`schema.rs`) and the reading into rows (`inbound.rs`), the
//! files the server compiles, with a stand-in of their error type.
//!
//! Checked beyond "no panic": every refusal names a line of the document;
//! every element and row read names a line of it and a path from the root.

#![no_main]

use libfuzzer_sys::fuzz_target;

// At the crate root: the included files reach `super::B2mmlError`,
// `super::schema` and `super::tree`.
#[path = "../../src/integrate/b2mml/tree.rs"]
#[allow(dead_code)]
mod tree;

#[path = "../../src/integrate/b2mml/schema.rs"]
#[allow(dead_code)]
mod schema;

#[path = "../../src/integrate/b2mml/inbound.rs"]
#[allow(dead_code)]
mod inbound;

/// The variants of `src/integrate/b2mml/mod.rs`'s error that the included
/// files make.
#[derive(Debug, thiserror::Error)]
pub enum B2mmlError {
    #[error("not well-formed XML (line {line}): {reason}")]
    Xml { line: usize, reason: String },
    #[error("not B2MML: <{root}> in '{namespace}'")]
    NotB2mml { root: String, namespace: String },
    #[error("unsupported: <{0}>")]
    Unsupported(String),
    #[error("{path} (line {line}): {problem}")]
    Invalid {
        path: String,
        line: usize,
        problem: String,
    },
}

fn check_lines(element: &tree::Element, lines: usize) {
    assert!(element.line >= 1 && element.line <= lines, "{element:?}");
    assert!(element.path.starts_with('/'), "{element:?}");
    for child in &element.children {
        assert!(child.path.starts_with(&element.path), "{child:?}");
        check_lines(child, lines);
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    match tree::parse(data) {
        Err(B2mmlError::Xml { line, .. }) => assert!(line >= 1 && line <= lines),
        Err(other) => panic!("the tree refuses only malformed XML: {other}"),
        Ok(root) => {
            check_lines(&root, lines);
            match inbound::read(&root) {
                Ok(document) => {
                    for part in &document.parts {
                        for row in &part.rows {
                            assert!(row.line >= 1 && row.line <= lines, "{row:?}");
                        }
                    }
                }
                Err(B2mmlError::Invalid { line, .. }) => assert!(line >= 1 && line <= lines),
                Err(B2mmlError::NotB2mml { .. } | B2mmlError::Unsupported(_)) => {}
                Err(other) => {
                    panic!("reading refuses with Invalid, NotB2mml or Unsupported: {other}")
                }
            }
        }
    }
});
