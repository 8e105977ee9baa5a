//! Map entries named through the `aliases` table (docs/COLLECTORS.md): a
//! collector with `aliases = "SYSTEM"` may leave out an entry's `tag`; the
//! entry's tag is then lotline's key that the alias (SYSTEM, `tag`, the
//! entry's source) names, so the OPC UA node ids, registers or metric names
//! of a machine map to tags in the one vocabulary an integration keeps,
//! instead of in each mapping file. Resolved when the mapping is applied
//! (start and reload); an entry without an alias stops it with the file,
//! line, source and system.

use std::collections::HashMap;
use std::sync::Arc;

use super::mapping::{Mapping, MappingError};
use crate::ingest::{Engine, IngestError};
use crate::model;

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

/// Names every entry of `mapping` that its aliases name; refuses an entry
/// without one, and a tag the mapping would then write twice.
pub fn resolve(mapping: &mut Mapping, aliases: &TagAliases) -> Result<(), MappingError> {
    let error = |line: usize, reason: String| MappingError {
        file: mapping.file.clone(),
        line,
        reason,
    };
    let mut named = Vec::with_capacity(mapping.by_alias.len());
    for entry in &mapping.by_alias {
        let key = (entry.system.clone(), entry.source.clone());
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
        resolve(
            &mut parsed,
            &aliases(&[("holding:0", "line.press.temperature")]),
        )
        .unwrap();
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
        let err = resolve(&mut parsed, &aliases(&[])).unwrap_err();
        assert_eq!(err.line, 8, "{err}");
        assert!(
            err.reason.contains("holding:0") && err.reason.contains("PLC-7"),
            "{err}"
        );
        let mut parsed = mapping::parse(Path::new("plant.toml"), FILE).unwrap();
        let err = resolve(&mut parsed, &aliases(&[("holding:0", "line.press.count")])).unwrap_err();
        assert!(err.reason.contains("mapped twice"), "{err}");
        let without = FILE.replace("aliases = \"PLC-7\"\n", "");
        let err = mapping::parse(Path::new("plant.toml"), &without).unwrap_err();
        assert!(err.reason.contains("needs a tag"), "{err}");
    }
}
