//! The mapped tags' metadata goes to `tags`, so it is kept in one place: a
//! tag new to `tags` is inserted, one whose description, unit or equipment
//! the mapping changes gets a new version (the mapping file as its reason),
//! and the columns the mapping does not set keep their current values.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take;

use super::INTERFACE;
use super::mapping::{Mapping, TagMeta};
use crate::ingest::{Engine, IngestError, WriteContext};
use crate::model::{self, columns};

/// The columns a mapping sets, in this order in [`Meta`].
const MAPPED: [&str; 3] = ["description", "unit", "equipment"];

type Meta = [Option<String>; 3];

fn mapped(tag: &TagMeta) -> Meta {
    [
        tag.description.clone(),
        tag.unit.clone(),
        tag.equipment.clone(),
    ]
}

/// Upserts what `mapping` says of its tags.
pub(super) async fn upsert(mapping: &Mapping, engine: &Arc<Engine>) -> Result<(), IngestError> {
    let tags = mapping.collectors.iter().flat_map(|c| c.tags());
    write(tags, reason(mapping), engine).await
}

/// Upserts tags a collector learned while running (e.g. a Sparkplug birth's
/// metrics and units).
pub(super) async fn upsert_learned(
    tags: &[TagMeta],
    engine: &Arc<Engine>,
) -> Result<(), IngestError> {
    write(tags, "declared by a collector's source".to_string(), engine).await
}

async fn write<'a>(
    tags: impl IntoIterator<Item = &'a TagMeta>,
    reason: String,
    engine: &Arc<Engine>,
) -> Result<(), IngestError> {
    let def = model::tags();
    let current = engine.current_rows(def).await?;
    let Some(batch) = changes_of(tags, &current)? else {
        return Ok(());
    };
    let who = WriteContext::new("lotline", INTERFACE).with_reason(Some(reason));
    engine.write_as(&who, def, vec![batch]).await?;
    Ok(())
}

/// Why the mapped tags are written: the mapping file.
pub fn reason(mapping: &Mapping) -> String {
    format!("collector mapping {}", mapping.file.display())
}

/// The rows of `tags` to write so that `current` (the current rows, in the
/// `tags` schema) says what `mapping` says of its tags; `None` when it does.
pub fn changes(
    mapping: &Mapping,
    current: &RecordBatch,
) -> Result<Option<RecordBatch>, IngestError> {
    changes_of(mapping.collectors.iter().flat_map(|c| c.tags()), current)
}

/// The rows of `tags` to write so that `current` says what `tags` say.
fn changes_of<'a>(
    tags: impl IntoIterator<Item = &'a TagMeta>,
    current: &RecordBatch,
) -> Result<Option<RecordBatch>, IngestError> {
    let def = model::tags();
    let names = columns::strings(current, def.name, "tag")?;
    let mut rows: HashMap<&str, (u32, Meta)> = HashMap::new();
    for row in 0..current.num_rows() {
        let mut meta: Meta = Default::default();
        for (slot, column) in meta.iter_mut().zip(MAPPED) {
            let values = columns::strings(current, def.name, column)?;
            *slot = values.is_valid(row).then(|| values.value(row).to_string());
        }
        rows.insert(names.value(row), (row as u32, meta));
    }
    // Per tag to write: its current row (if any) and its new metadata.
    let mut changes: Vec<(&str, Option<u32>, Meta)> = Vec::new();
    for tag in tags {
        let (row, mut meta) = match rows.get(tag.name.as_str()) {
            Some((row, meta)) => (Some(*row), meta.clone()),
            None => (None, Meta::default()),
        };
        let before = meta.clone();
        for (slot, given) in meta.iter_mut().zip(mapped(tag)) {
            if given.is_some() {
                *slot = given;
            }
        }
        if row.is_none() || meta != before {
            changes.push((&tag.name, row, meta));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let indices = UInt32Array::from(changes.iter().map(|c| c.1).collect::<Vec<_>>());
    let schema = def.schema.clone();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let arrow = |e: arrow::error::ArrowError| IngestError::Internal(format!("tags batch: {e}"));
    for field in schema.fields() {
        let name = field.name().as_str();
        let array: ArrayRef = if name == "tag" {
            Arc::new(StringArray::from_iter_values(changes.iter().map(|c| c.0)))
        } else if let Some(slot) = MAPPED.iter().position(|m| *m == name) {
            Arc::new(StringArray::from(
                changes
                    .iter()
                    .map(|c| c.2[slot].clone())
                    .collect::<Vec<_>>(),
            ))
        } else {
            // Columns the mapping does not set: as they are (null when new).
            let column = current.column_by_name(name).ok_or_else(|| {
                IngestError::Internal(format!("current tags rows without '{name}'"))
            })?;
            take(column, &indices, None).map_err(arrow)?
        };
        arrays.push(array);
    }
    Ok(Some(RecordBatch::try_new(schema, arrays).map_err(arrow)?))
}
