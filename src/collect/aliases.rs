//! Map entries named through the `aliases` table (docs/COLLECTORS.md): a
//! collector with `aliases = "SYSTEM"` may leave out an entry's `tag`; the
//! entry's tag is then lotline's key that the alias (SYSTEM, `tag`, the
//! entry's source) names, so the OPC UA node ids, registers or metric names
//! of a machine map to tags in the one vocabulary an integration keeps,
//! instead of in each mapping file. Resolved when the mapping is applied
//! (start and reload); an entry without an alias stops it with the file,
//! line, source and system, unless the system's row of `systems` says
//! `unknown_ids = 'draft'`: then the source itself is the tag, and an
//! alias and a row of `drafts` (written before the collector starts) flag
//! it for review.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};

use super::INTERFACE;
use super::mapping::{Mapping, MappingError};
use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model::{self, UnknownIds};

/// (system, external id) → tag, of the aliases of kind `tag`.
pub type TagAliases = HashMap<(String, String), String>;

/// The tag aliases of `engine`'s current `aliases` rows.
pub async fn current(engine: &Arc<Engine>) -> Result<TagAliases, IngestError> {
    let def = model::table("aliases").expect("the aliases table");
    let rows = model::alias_rows(&engine.current_rows(def).await?)?;
    Ok(rows
        .into_iter()
        .filter(|alias| alias.kind == "tag")
        .map(|alias| ((alias.system, alias.external_id), alias.key))
        .collect())
}

/// A source named as its own tag, for review ([`write_drafts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftTag {
    pub system: String,
    pub source: String,
    pub line: usize,
}

/// Names every entry of `mapping` that its aliases name; refuses an entry
/// without one (or names it by its source, a [`DraftTag`], when
/// `unknown_ids` of its system is [`UnknownIds::Draft`]), and a tag the
/// mapping would then write twice.
pub fn resolve(
    mapping: &mut Mapping,
    aliases: &TagAliases,
    unknown_ids: impl Fn(&str) -> UnknownIds,
    tag_exists: impl Fn(&str) -> bool,
) -> Result<Vec<DraftTag>, MappingError> {
    let error = |line: usize, reason: String| MappingError {
        file: mapping.file.clone(),
        line,
        reason,
    };
    let mut named = Vec::with_capacity(mapping.by_alias.len());
    let mut drafts = Vec::new();
    for entry in &mapping.by_alias {
        let key = (entry.system.clone(), entry.source.clone());
        if !aliases.contains_key(&key) && unknown_ids(&entry.system) == UnknownIds::Draft {
            // A draft is a new tag: samples of another source never join
            // an existing tag's history unasked.
            if tag_exists(&entry.source) {
                return Err(error(
                    entry.line,
                    format!(
                        "source '{}' of system '{}' has no alias, and drafting it as a tag of \
                         that name would write into the existing tag '{}': add an alias",
                        entry.source, entry.system, entry.source
                    ),
                ));
            }
            drafts.push(DraftTag {
                system: entry.system.clone(),
                source: entry.source.clone(),
                line: entry.line,
            });
            named.push((
                entry.collector,
                entry.point,
                entry.source.clone(),
                entry.line,
            ));
            continue;
        }
        let tag = aliases.get(&key).ok_or_else(|| {
            error(
                entry.line,
                format!(
                    "source '{}' has no tag: no alias of system '{}' (kind tag) names it in the \
                     aliases table",
                    entry.source, entry.system
                ),
            )
        })?;
        named.push((entry.collector, entry.point, tag.clone(), entry.line));
    }
    for (collector, point, tag, _) in &named {
        mapping.collectors[*collector].tag_mut(*point).name = tag.clone();
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for collector in &mapping.collectors {
        for tag in collector.tags() {
            if let Some(other) = seen.insert(&tag.name, &collector.name) {
                let line = named.iter().find(|n| n.2 == tag.name).map_or(1, |n| n.3);
                return Err(error(
                    line,
                    format!(
                        "tag '{}' is mapped twice (through aliases; also by collector '{other}')",
                        tag.name
                    ),
                ));
            }
        }
    }
    Ok(drafts)
}

/// Writes, for each of `drafts`, its tag (with what the mapping says of
/// it), the alias that names it from now on and its row of `drafts`, in
/// one audited write; when this returns `Ok` all are durable and the next
/// start resolves the source by its alias. On `Err` nothing was written.
pub async fn write_drafts(
    engine: &Arc<Engine>,
    mapping: &Mapping,
    drafts: &[DraftTag],
) -> Result<(), IngestError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let column = |values: Vec<String>| Arc::new(StringArray::from(values)) as ArrayRef;
    let each = |f: &dyn Fn(&DraftTag) -> String| column(drafts.iter().map(f).collect());
    let systems = || each(&|d| d.system.clone());
    let sources = || each(&|d| d.source.clone());
    let kinds = || each(&|_| "tag".to_string());
    let batch = |columns: Vec<(&str, ArrayRef)>| {
        RecordBatch::try_from_iter(columns).map_err(|e| IngestError::Internal(e.to_string()))
    };
    let alias_rows = batch(vec![
        ("system", systems()),
        ("kind", kinds()),
        ("external_id", sources()),
        ("key", sources()),
    ])?;
    let file = mapping.file.display();
    let draft_rows = batch(vec![
        ("kind", kinds()),
        ("key", sources()),
        ("system", systems()),
        ("external_id", sources()),
        (
            "source",
            each(&|d| format!("collector mapping {file}:{}", d.line)),
        ),
    ])?;
    let meta = |d: &DraftTag| {
        let tags = mapping.collectors.iter().flat_map(|c| c.tags());
        tags.into_iter()
            .find(|t| t.name == d.source)
            .cloned()
            .unwrap_or_default()
    };
    let metas: Vec<_> = drafts.iter().map(meta).collect();
    let optional = |f: &dyn Fn(&super::mapping::TagMeta) -> Option<String>| {
        Arc::new(StringArray::from(metas.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    let tag_rows = batch(vec![
        ("tag", sources()),
        ("description", optional(&|m| m.description.clone())),
        ("unit", optional(&|m| m.unit.clone())),
        ("equipment", optional(&|m| m.equipment.clone())),
    ])?;
    let table = |name| model::table(name).expect("a table of the model");
    let reason = format!("collector mapping {file}: sources without an alias, drafted for review");
    let who = WriteContext::new("lotline", INTERFACE).with_reason(Some(reason));
    let parts = vec![
        (model::tags(), vec![tag_rows]),
        (table("aliases"), vec![alias_rows]),
        (table("drafts"), vec![draft_rows]),
    ];
    engine.write_tables_as(&who, parts).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::collect::mapping;

    const FILE: &str = r#"
[[collector]]
name = "press"
kind = "modbus"
endpoint = "127.0.0.1:502"
aliases = "PLC-7"

[[collector.map]]
source = "holding:0"

[[collector.map]]
source = "holding:1"
tag = "line.press.count"
"#;

    fn aliases(pairs: &[(&str, &str)]) -> TagAliases {
        pairs
            .iter()
            .map(|(source, tag)| (("PLC-7".to_string(), source.to_string()), tag.to_string()))
            .collect()
    }

    #[test]
    fn entries_without_a_tag_take_their_alias() {
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        assert_eq!(parsed.by_alias.len(), 1);
        let drafts = resolve(
            &mut parsed,
            &aliases(&[("holding:0", "line.press.temperature")]),
            |_| UnknownIds::Draft,
            |_| false,
        )
        .unwrap();
        assert!(drafts.is_empty(), "an alias is used where there is one");
        let names: Vec<&str> = parsed.collectors[0]
            .tags()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["line.press.temperature", "line.press.count"]);
    }

    #[test]
    fn a_missing_alias_or_a_tag_twice_is_refused_with_its_line() {
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        let err = resolve(
            &mut parsed,
            &aliases(&[]),
            |_| UnknownIds::Refuse,
            |_| false,
        )
        .unwrap_err();
        assert_eq!(err.line, 8, "{err}");
        assert!(
            err.reason.contains("holding:0") && err.reason.contains("PLC-7"),
            "{err}"
        );
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        let taken = aliases(&[("holding:0", "line.press.count")]);
        let err = resolve(&mut parsed, &taken, |_| UnknownIds::Refuse, |_| false).unwrap_err();
        assert!(err.reason.contains("mapped twice"), "{err}");
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        let policy = |system: &str| match system {
            "PLC-7" => UnknownIds::Draft,
            _ => UnknownIds::Refuse,
        };
        let drafts = resolve(&mut parsed, &aliases(&[]), policy, |_| false).unwrap();
        let draft = DraftTag {
            system: "PLC-7".into(),
            source: "holding:0".into(),
            line: 8,
        };
        assert_eq!(
            drafts,
            [draft],
            "a system set to draft names the tag by its source"
        );
        assert_eq!(parsed.collectors[0].tags()[0].name, "holding:0");
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        let err =
            resolve(&mut parsed, &aliases(&[]), policy, |tag| tag == "holding:0").unwrap_err();
        assert!(err.reason.contains("existing tag 'holding:0'"), "{err}");
        let without = FILE.replace("aliases = \"PLC-7\"\n", "");
        let err = mapping::parse(Path::new("plant.toml"), &without).unwrap_err();
        assert!(err.reason.contains("needs a tag"), "{err}");
    }
}
