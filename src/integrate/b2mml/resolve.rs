//! External identifiers to lotline's keys, through the `aliases` table: an
//! id of system S and kind K is the key an alias (S, K, id) names; without
//! an alias, a record the document defines keeps its own id as key. A
//! reference must name a record lotline has (or the document defines),
//! directly or through its alias, or the document is refused naming the
//! element, the id and the system; unless the system's row of `systems`
//! says `unknown_ids = 'draft'`, when the id becomes a [`Draft`].

use std::collections::{HashMap, HashSet};

use super::B2mmlError;
use super::inbound::{Cell, Document, ExternalId};
use crate::model::{self, UnknownIds};

/// What resolution needs to know of lotline's records.
pub struct Known {
    /// (kind, external id) → key, for the document's system.
    pub aliases: HashMap<(String, String), String>,
    /// Keys per table (single-column keys).
    pub keys: HashMap<&'static str, HashSet<String>>,
    /// What the document's system wants done with an unknown id.
    pub unknown_ids: UnknownIds,
}

/// A record to create, flagged for review, for an id lotline did not know.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub kind: &'static str,
    /// The sender's id, which becomes the record's key.
    pub id: String,
    /// The element that named it first.
    pub path: String,
    pub line: usize,
}

/// Replaces every [`Cell::Id`] of `document` with the key it resolves to;
/// returns the drafts to create, each once.
pub fn resolve(document: &mut Document, known: &Known) -> Result<Vec<Draft>, B2mmlError> {
    let key_of = |id: &ExternalId| {
        known
            .aliases
            .get(&(id.kind.to_string(), id.id.clone()))
            .cloned()
    };
    // Records the document defines, under the keys they will have.
    let mut defined: HashMap<&'static str, HashSet<String>> = HashMap::new();
    for part in &document.parts {
        for row in &part.rows {
            if let Some((_, Cell::Id(id))) = row.cells.first().filter(|(c, _)| *c == "id") {
                let key = key_of(id).unwrap_or_else(|| id.id.clone());
                defined.entry(id.kind).or_default().insert(key);
            }
        }
    }
    let system = document.system.clone();
    let mut drafts: Vec<Draft> = Vec::new();
    for part in &mut document.parts {
        for row in &mut part.rows {
            for (_, cell) in &mut row.cells {
                let Cell::Id(id) = cell else { continue };
                let aliased = key_of(id);
                let key = aliased.clone().unwrap_or_else(|| id.id.clone());
                // A reference names a record there is, through an alias or not.
                let exists = |set: Option<&HashSet<String>>| set.is_some_and(|s| s.contains(&key));
                if id.must_exist
                    && !exists(model::alias_table(id.kind).and_then(|t| known.keys.get(t)))
                    && !exists(defined.get(id.kind))
                {
                    if aliased.is_none() && known.unknown_ids == UnknownIds::Draft {
                        defined.entry(id.kind).or_default().insert(key.clone());
                        drafts.push(Draft {
                            kind: id.kind,
                            id: id.id.clone(),
                            path: id.path.clone(),
                            line: id.line,
                        });
                        *cell = Cell::Text(key);
                        continue;
                    }
                    return Err(match aliased {
                        None => B2mmlError::Unknown {
                            path: id.path.clone(),
                            line: id.line,
                            kind: id.kind,
                            id: id.id.clone(),
                            system: system.clone(),
                        },
                        Some(key) => B2mmlError::Invalid {
                            path: id.path.clone(),
                            line: id.line,
                            problem: format!(
                                "{} '{}' of system '{system}' is an alias of '{key}', which \
                                 lotline does not have (deleted?)",
                                id.kind, id.id
                            ),
                        },
                    });
                }
                *cell = Cell::Text(key);
            }
        }
    }
    Ok(drafts)
}
