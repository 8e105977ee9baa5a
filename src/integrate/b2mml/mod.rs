//! ISA-95 Level 4 integration in B2MML V0701 (MESA), docs/INTEGRATION.md:
//! documents in ([`import`]: operations schedules, material and equipment
//! information into the versioned context tables, every identifier
//! resolved through `aliases`), production performance out
//! ([`performance`]), and the `ConfirmBOD` that answers an import
//! ([`confirm`]).
//!
//! An import is one atomic versioned write, resolved and merged against the
//! current rows under the engine's version lock
//! ([`Engine::write_tables_from_current`]):
//! when [`import`] returns `Ok` every changed row is durable, audited with
//! the reason, and visible; on `Err` nothing was written. Rows equal to
//! their current version are left out, so a document imported twice
//! changes nothing the second time.

pub mod confirm;
mod inbound;
mod merge;
pub mod performance;
mod resolve;
mod schema;
mod tree;
mod write;

use std::collections::HashMap;

use arrow::array::RecordBatch;

use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model::{self, TableDef};
pub use tree::NAMESPACE;

#[derive(Debug, thiserror::Error)]
pub enum B2mmlError {
    #[error("not well-formed XML (line {line}): {reason}")]
    Xml { line: usize, reason: String },
    #[error("<{root}> in namespace '{namespace}' is not a B2MML document (namespace {NAMESPACE})")]
    NotB2mml { root: String, namespace: String },
    #[error(
        "<{0}> is not a document lotline takes: send Process or Sync of OperationsSchedule, \
         MaterialInformation, MaterialDefinition, MaterialLot, EquipmentInformation or Equipment"
    )]
    Unsupported(String),
    #[error("{path} (line {line}): {problem}")]
    Invalid {
        path: String,
        line: usize,
        problem: String,
    },
    #[error(
        "{path} (line {line}): {kind} '{id}' is not known to lotline: no such record and no \
         alias of system '{system}' for it (add one to the aliases table)"
    )]
    Unknown {
        path: String,
        line: usize,
        kind: &'static str,
        id: String,
        system: String,
    },
    #[error(
        "the document has {bytes} bytes; lotline takes B2MML documents of at most {limit} bytes"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("{0}")]
    Write(#[from] IngestError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl B2mmlError {
    /// Whether the document is at fault (else lotline is: a write refused
    /// for want of room, a stopped WAL).
    pub fn is_document_error(&self) -> bool {
        match self {
            Self::Write(e) => e.is_client_error(),
            Self::Internal(_) => false,
            _ => true,
        }
    }
}

/// Longest reason an import gives its rows when the caller gives none.
const MAX_REASON_CHARS: usize = 240;

/// Largest document an import takes (a week's schedule of a large plant
/// is a few megabytes).
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub root: String,
    pub system: String,
    pub bod_id: Option<String>,
    /// Rows written per table (changed or new records only).
    pub written: Vec<(&'static str, usize)>,
    /// Records of the document equal to what lotline had.
    pub unchanged: usize,
}

/// An import's outcome and the `ConfirmBOD` that answers it.
#[derive(Debug)]
pub struct Answer {
    pub outcome: Result<Imported, B2mmlError>,
    pub confirm_bod: Vec<u8>,
}

/// Imports the B2MML document `xml` for `who` (whose reason, if any, is the
/// write's; else the document's identity is) and answers it. See the module
/// comment for what holds when this returns.
pub async fn import(engine: &Engine, who: WriteContext, xml: &[u8]) -> Answer {
    let (original, read) = read(xml).await;
    let outcome = match read {
        Ok(document) => write(engine, who, document).await,
        Err(refused) => Err(refused),
    };
    let confirm_bod = confirm::document(original.as_ref(), outcome.as_ref());
    Answer {
        outcome,
        confirm_bod,
    }
}

/// The document's root and application area (once it parsed) and its rows.
/// Parsing is CPU work: off the async workers.
async fn read(
    xml: &[u8],
) -> (
    Option<confirm::Original>,
    Result<inbound::Document, B2mmlError>,
) {
    if xml.len() > MAX_DOCUMENT_BYTES {
        let too_large = B2mmlError::TooLarge {
            bytes: xml.len(),
            limit: MAX_DOCUMENT_BYTES,
        };
        return (None, Err(too_large));
    }
    let owned = xml.to_vec();
    tokio::task::spawn_blocking(move || match tree::parse(&owned) {
        Ok(root) => (confirm::original(&root), inbound::read(&root)),
        Err(malformed) => (None, Err(malformed)),
    })
    .await
    .unwrap_or_else(|e| {
        (
            None,
            Err(B2mmlError::Internal(format!("reading the document: {e}"))),
        )
    })
}

/// Writes a document's rows (see the module comment).
async fn write(
    engine: &Engine,
    who: WriteContext,
    mut document: inbound::Document,
) -> Result<Imported, B2mmlError> {
    let who = match who.reason {
        Some(_) => who,
        None => {
            let mut reason = format!(
                "B2MML {} {} from {}",
                document.root,
                document.bod_id.as_deref().unwrap_or("(no BODID)"),
                document.system
            );
            if let [first, rest @ ..] = &document.noun_ids[..] {
                reason.push_str(&format!(" ({first}"));
                if !rest.is_empty() {
                    reason.push_str(&format!(" and {} more", rest.len()));
                }
                reason.push(')');
            }
            // Every version row carries the reason: a document's ids never
            // make it large.
            if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
                reason.truncate(cut);
                reason.push('…');
            }
            who.with_reason(Some(reason))
        }
    };
    let mut read: Vec<&'static TableDef> = Vec::new();
    for name in document.parts.iter().map(|p| p.table).chain([
        "equipment",
        "materials",
        "aliases",
        "systems",
        "drafts",
    ]) {
        let def = table(name)?;
        if !read.iter().any(|d| d.name == def.name) {
            read.push(def);
        }
    }
    // Resolved and merged against the current rows under the version lock,
    // so no other write lands between what the import read and what it writes.
    let mut unchanged = 0;
    let mut names: Vec<&'static str> = Vec::new();
    let counts = engine
        .write_tables_from_current(&who, &read, |current| {
            let known = known(current, &document.system)?;
            let drafts = resolve::resolve(&mut document, &known)?;
            add_drafts(&mut document, drafts);
            let mut parts = Vec::new();
            for part in &document.parts {
                let def = table(part.table)?;
                let rows = merge::current(def, &current[part.table])?;
                match merge::changes(def, part, &rows)? {
                    Some(batch) => {
                        unchanged += part.rows.len() - batch.num_rows();
                        names.push(def.name);
                        parts.push((def, vec![batch]));
                    }
                    None => unchanged += part.rows.len(),
                }
            }
            Ok::<_, B2mmlError>(parts)
        })
        .await??;
    Ok(Imported {
        root: document.root,
        system: document.system,
        bod_id: document.bod_id,
        written: names.into_iter().zip(counts).collect(),
        unchanged,
    })
}

/// The rows that create `drafts`: per draft the record (its key only),
/// the alias that names it from now on, and its row of `drafts`.
fn add_drafts(document: &mut inbound::Document, drafts: Vec<resolve::Draft>) {
    let text = |s: &str| inbound::Cell::Text(s.to_string());
    let source = |draft: &resolve::Draft| {
        let bod = document.bod_id.as_deref().unwrap_or("(no BODID)");
        format!(
            "B2MML {} {bod}: {} (line {})",
            document.root, draft.path, draft.line
        )
    };
    let mut rows: Vec<(&'static str, inbound::Row)> = Vec::new();
    for draft in &drafts {
        let Some(table) = model::alias_table(draft.kind) else {
            continue;
        };
        let row = |cells| inbound::Row {
            cells,
            path: draft.path.clone(),
            line: draft.line,
        };
        rows.push((table, row(vec![("id", text(&draft.id))])));
        let alias = vec![
            ("system", text(&document.system)),
            ("kind", text(draft.kind)),
            ("external_id", text(&draft.id)),
            ("key", text(&draft.id)),
        ];
        rows.push(("aliases", row(alias)));
        let flagged = vec![
            ("kind", text(draft.kind)),
            ("key", text(&draft.id)),
            ("system", text(&document.system)),
            ("external_id", text(&draft.id)),
            ("source", inbound::Cell::Text(source(draft))),
        ];
        rows.push(("drafts", row(flagged)));
    }
    for (table, row) in rows {
        inbound::part(&mut document.parts, table).push(row);
    }
}

fn table(name: &str) -> Result<&'static TableDef, B2mmlError> {
    model::table(name).ok_or_else(|| B2mmlError::Internal(format!("no table {name}")))
}

/// The aliases of `system` and the keys of every table resolution looks in.
fn known(
    current: &HashMap<&'static str, RecordBatch>,
    system: &str,
) -> Result<resolve::Known, B2mmlError> {
    let aliases = model::alias_rows(&current["aliases"]).map_err(IngestError::from)?;
    let mut known = resolve::Known {
        aliases: aliases
            .into_iter()
            .filter(|alias| alias.system == system)
            .map(|alias| ((alias.kind, alias.external_id), alias.key))
            .collect(),
        keys: HashMap::new(),
        unknown_ids: model::unknown_ids(&current["systems"], system).map_err(IngestError::from)?,
    };
    for (name, batch) in current {
        let def = table(name)?;
        if let [key] = def.key {
            let keys = model::columns::strings(batch, def.name, key).map_err(IngestError::from)?;
            let keys = keys.iter().flatten().map(str::to_string).collect();
            known.keys.insert(def.name, keys);
        }
    }
    Ok(known)
}
