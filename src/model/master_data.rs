//! Master data and plans that Level 4 (ERP) sends down (ISA-95 Part 2,
//! B2MML): `materials` (material definitions), the work orders' planned
//! segments, materials and parameters (`work_order_segments`,
//! `work_order_materials`, `work_order_parameters`, from an operations
//! schedule's segment requirements), and
//! `aliases`, the one vocabulary that maps each system's identifiers (an
//! ERP material number, an MES equipment id, an OPC UA node id) to
//! lotline's key; `systems`, how lotline treats each other system's
//! unknown ids, and `drafts`, the records created for such ids that wait
//! for review. All versioned, like the other context tables.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use super::columns::{self, ColumnError};
use super::context::CONTEXT_KEY_POLICY;
use super::{Rule, TableDef, ts_type};

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// What an alias can name: the tables whose key is one id column.
pub const ALIAS_KINDS: &[&str] = &["equipment", "material", "lot", "work_order", "tag"];

/// The table whose key an alias of `kind` ([`ALIAS_KINDS`]) names.
pub fn alias_table(kind: &str) -> Option<&'static str> {
    match kind {
        "equipment" => Some("equipment"),
        "material" => Some("materials"),
        "lot" => Some("lots"),
        "work_order" => Some("work_orders"),
        "tag" => Some("tags"),
        _ => None,
    }
}

/// One row of `aliases`: system `system` calls lotline's record `key` (of
/// the table [`alias_table`] gives for `kind`) by `external_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub system: String,
    pub kind: String,
    pub external_id: String,
    pub key: String,
}

/// The rows of an `aliases` batch (user schema, current rows).
pub fn alias_rows(batch: &RecordBatch) -> Result<Vec<Alias>, ColumnError> {
    let column = |name| columns::strings(batch, "aliases", name);
    let (systems, kinds, ids, keys) = (
        column("system")?,
        column("kind")?,
        column("external_id")?,
        column("key")?,
    );
    Ok((0..batch.num_rows())
        .map(|i| Alias {
            system: systems.value(i).to_string(),
            kind: kinds.value(i).to_string(),
            external_id: ids.value(i).to_string(),
            key: keys.value(i).to_string(),
        })
        .collect())
}

/// What an import does with an id of a system that names no record
/// lotline has (`systems.unknown_ids`; a system without a row refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownIds {
    /// The document is refused, naming the id (the default).
    Refuse,
    /// A record with the id as key is created, with an alias and a row of
    /// `drafts` that flags it for review.
    Draft,
}

/// The values of `systems.unknown_ids`.
pub const UNKNOWN_IDS: &[&str] = &["refuse", "draft"];

/// How `system` treats unknown ids, from the current rows of `systems`.
pub fn unknown_ids(systems: &RecordBatch, system: &str) -> Result<UnknownIds, ColumnError> {
    let names = columns::strings(systems, "systems", "system")?;
    let policies = columns::strings(systems, "systems", "unknown_ids")?;
    let draft = (0..systems.num_rows())
        .any(|i| names.value(i) == system && policies.is_valid(i) && policies.value(i) == "draft");
    Ok(if draft {
        UnknownIds::Draft
    } else {
        UnknownIds::Refuse
    })
}

/// ISA-95 material use of a planned or actual material (B2MML V0701 `MaterialUse`).
pub const MATERIAL_USES: &[&str] = &[
    "Consumable",
    "Consumed",
    "Produced",
    "By-product Produced",
    "Co-product Produced",
    "Yield Produced",
    "Material Consumed",
    "Material Produced",
    "Destructive Sample",
    "Returned Sample",
    "Retained Sample",
    "Inventoried",
    "Other",
];

pub(super) static MATERIALS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "materials",
    schema: Arc::new(Schema::new(vec![
        utf8("id", false),
        utf8("description", true),
        utf8("material_class", true),
        utf8("uom", true),
    ])),
    key: &["id"],
    time_column: None,
    range_column: "id",
    bloom_columns: &["id"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[Rule::NotEmpty("id")],
    caches: &[],
});

pub(super) static WORK_ORDER_SEGMENTS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "work_order_segments",
    schema: Arc::new(Schema::new(vec![
        utf8("work_order", false),
        utf8("segment", false),
        utf8("process_segment", true),
        utf8("equipment", true),
        Field::new("earliest_start", ts_type(), true),
        Field::new("latest_end", ts_type(), true),
    ])),
    key: &["work_order", "segment"],
    time_column: None,
    range_column: "work_order",
    bloom_columns: &["work_order", "equipment"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("work_order"),
        Rule::NotEmpty("segment"),
        Rule::NotBeforeEpoch("earliest_start"),
        Rule::NotBeforeEpoch("latest_end"),
        Rule::NotBefore {
            later: "latest_end",
            earlier: "earliest_start",
        },
    ],
    caches: &[],
});

pub(super) static WORK_ORDER_MATERIALS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "work_order_materials",
    schema: Arc::new(Schema::new(vec![
        utf8("work_order", false),
        utf8("segment", false),
        // The requirement's own id within its segment.
        utf8("requirement", false),
        utf8("material_use", true),
        utf8("material", true),
        utf8("lot", true),
        Field::new("quantity", DataType::Float64, true),
        utf8("uom", true),
    ])),
    key: &["work_order", "segment", "requirement"],
    time_column: None,
    range_column: "work_order",
    bloom_columns: &["work_order", "lot"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("work_order"),
        Rule::NotEmpty("segment"),
        Rule::NotEmpty("requirement"),
        Rule::OneOf("material_use", MATERIAL_USES),
        Rule::NonNegative("quantity"),
    ],
    caches: &[],
});

/// A segment requirement's parameters (B2MML `SegmentParameter`: a recipe
/// setpoint such as a bake temperature), as the ERP sent them: the value
/// is the text of its `ValueString` (SQL casts it), a child parameter's id
/// is its path (`BAKE/ZONE1`).
pub(super) static WORK_ORDER_PARAMETERS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "work_order_parameters",
    schema: Arc::new(Schema::new(vec![
        utf8("work_order", false),
        utf8("segment", false),
        utf8("parameter", false),
        utf8("value", true),
        // B2MML's DataType (`double`, `string`, ...).
        utf8("data_type", true),
        utf8("uom", true),
        utf8("description", true),
    ])),
    key: &["work_order", "segment", "parameter"],
    time_column: None,
    range_column: "work_order",
    bloom_columns: &["work_order"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("work_order"),
        Rule::NotEmpty("segment"),
        Rule::NotEmpty("parameter"),
    ],
    caches: &[],
});

pub(super) static ALIASES: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "aliases",
    schema: Arc::new(Schema::new(vec![
        // The other system, as it names itself (a B2MML sender's LogicalID,
        // an OPC UA server's application URI).
        utf8("system", false),
        utf8("kind", false),
        utf8("external_id", false),
        // lotline's key of the record: `equipment.id`, `materials.id`, ...
        utf8("key", false),
    ])),
    key: &["system", "kind", "external_id"],
    time_column: None,
    range_column: "system",
    bloom_columns: &["system", "external_id", "key"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("system"),
        Rule::OneOf("kind", ALIAS_KINDS),
        Rule::NotEmpty("external_id"),
        Rule::NotEmpty("key"),
    ],
    caches: &[],
});

pub(super) static SYSTEMS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "systems",
    schema: Arc::new(Schema::new(vec![
        // As in `aliases.system`.
        utf8("system", false),
        utf8("description", true),
        // `refuse` (also when null) or `draft`: see [`UnknownIds`].
        utf8("unknown_ids", true),
    ])),
    key: &["system"],
    time_column: None,
    range_column: "system",
    bloom_columns: &["system"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::NotEmpty("system"),
        Rule::OneOf("unknown_ids", UNKNOWN_IDS),
    ],
    caches: &[],
});

/// Records created for ids another system sent and lotline did not know,
/// one row each while it waits for review; reviewing it is deleting its
/// row (with a reason, like any change), after fixing the record or
/// pointing the alias at the right one.
pub(super) static DRAFTS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "drafts",
    schema: Arc::new(Schema::new(vec![
        // As in `aliases.kind`; `key` is the record's key in that table.
        utf8("kind", false),
        utf8("key", false),
        utf8("system", false),
        utf8("external_id", false),
        // What sent the id: a document's root, BODID and element.
        utf8("source", true),
    ])),
    key: &["kind", "key"],
    time_column: None,
    range_column: "kind",
    bloom_columns: &["key"],
    key_policy: CONTEXT_KEY_POLICY,
    rules: &[
        Rule::OneOf("kind", ALIAS_KINDS),
        Rule::NotEmpty("key"),
        Rule::NotEmpty("system"),
        Rule::NotEmpty("external_id"),
    ],
    caches: &[],
});
