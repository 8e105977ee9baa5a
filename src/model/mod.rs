//! The data model SQL users see: every table's schema, key and storage hints.
//!
//! Tables are data, not code paths: the write path, the segment writer and the
//! query layer all work from a [`TableDef`], so adding a table means adding a
//! definition here, never a new branch elsewhere.

mod audit;
pub mod columns;
mod context;
mod master_data;
mod sample_rows;
pub mod units;
mod validate;
mod versioned;

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use master_data::{
    ALIAS_KINDS, Alias, MATERIAL_USES, UnknownIds, alias_rows, alias_table, unknown_ids,
};
pub use sample_rows::{CONTEXT_COLUMNS, SampleRow, SampleRows};
pub use validate::{
    Grandfathered, ValidationError, normalize_batch, normalize_batch_keeping, quoted,
};
pub use versioned::{
    HISTORY_SUFFIX, Op, Stamp, VERSION_COLUMNS, describe_key, is_tombstone, key_rows,
    resolve_current, stamp, stored_schema,
};

/// Timezone every timestamp is stored in.
pub const UTC: &str = "UTC";

/// Longest value of a name column ([`TableDef::name_columns`]: tag names,
/// ids, lots), in bytes of UTF-8. Names are copied into the manifest's key
/// ranges, bloom filters and in-memory indexes, so one runaway name must
/// not reach them; a write with a longer one is refused whole.
pub const MAX_NAME_BYTES: usize = 1024;

/// How rows with the same key relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// Every row is kept (`audit_log`, `sample_corrections`).
    AppendOnly,
    /// One row per key (time series: `samples` by (tag, ts)), so a writer
    /// may resend: an exact resend is not written again; another reading at
    /// a written key is kept in the table with [`Cache::Corrections`] and
    /// supersedes the first when read (newest write wins). The write path's
    /// `unique_keys` module keeps this.
    OneRowPerKey,
    /// Context and master data (such as `tags`): a write of an existing key
    /// appends a new version; the newest one is current, a delete appends a
    /// tombstone (see [`versioned`]).
    Versioned,
}

/// Everything the engine needs to know about one table.
#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub schema: SchemaRef,
    /// Columns that identify a row; also the segment sort order.
    pub key: &'static [&'static str],
    /// Column used for Hive `date=` partitions and time pruning, if any.
    pub time_column: Option<&'static str>,
    /// Column whose min/max the manifest keeps for pruning (the first key column).
    pub range_column: &'static str,
    /// Columns that get a Parquet bloom filter.
    pub bloom_columns: &'static [&'static str],
    pub key_policy: KeyPolicy,
    /// Value rules checked on every write, beyond types and nullability.
    pub rules: &'static [Rule],
    /// In-memory indexes the write path keeps for this table.
    pub caches: &'static [Cache],
}

/// An in-memory structure the write path keeps up to date on every accepted
/// write of a table and rebuilds on start (segments and WAL replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The newest row per range-column value, by the time column (`last_values`).
    LastValues,
    /// The lot graph of `genealogy` (input_lot → output_lot) for the trace functions.
    Genealogy,
    /// The newest correction per (tag, ts) of `sample_corrections`, which
    /// `samples` applies over the raw rows.
    Corrections,
    /// Runs per equipment (`production_runs`) and equipment per tag (`tags`),
    /// from which samples are stamped with their work order and lot.
    Stamping,
}

/// A check on column values that the type system alone does not express.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// A timestamp column must not be before 1970-01-01 (the upper bound,
    /// 2262-04-11, is the end of nanosecond timestamps and checked by the cast).
    NotBeforeEpoch(&'static str),
    /// A non-finite value (NaN, ±inf) is only acceptable with a non-Good quality.
    FiniteWhenGood {
        value: &'static str,
        quality: &'static str,
    },
    /// A string column is null or not empty (a key such as a tag name).
    NotEmpty(&'static str),
    /// A string column is null or one of the listed values.
    OneOf(&'static str, &'static [&'static str]),
    /// An integer column is null or at most this value.
    AtMost(&'static str, u64),
    /// A non-nullable integer column that a writer may omit: it is filled with 0
    /// (for `quality`, 0 is OPC UA Good).
    DefaultsToZero(&'static str),
    /// A float column is null or ≥ 0 (quantities).
    NonNegative(&'static str),
    /// Where both are set, the first timestamp column is not before the second
    /// (`end_ts` ≥ `start_ts`).
    NotBefore {
        later: &'static str,
        earlier: &'static str,
    },
    /// A string column is null or a UN/ECE Recommendation 20 unit code; a
    /// symbol lotline knows for a code is stored as the code ([`units`]).
    UnitCode(&'static str),
}

impl TableDef {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name).ok()
    }

    pub fn has_cache(&self, cache: Cache) -> bool {
        self.caches.contains(&cache)
    }

    /// The string columns that hold names, at most [`MAX_NAME_BYTES`] each:
    /// the key columns and the columns rows are looked up by (bloom filters).
    pub fn name_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        let key = self.key.iter().filter(|k| !self.bloom_columns.contains(k));
        key.chain(self.bloom_columns).copied().filter(|name| {
            self.schema
                .field_with_name(name)
                .expect("table column")
                .data_type()
                == &DataType::Utf8
        })
    }
}

pub(crate) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

/// What a sample and a correction of it have in common: (tag, ts) and the reading.
fn reading_fields(extra: impl IntoIterator<Item = Field>) -> SchemaRef {
    let mut fields = vec![
        Field::new("tag", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("value", DataType::Float64, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("quality", DataType::UInt32, false),
    ];
    fields.extend(extra);
    Arc::new(Schema::new(fields))
}

/// The rules of a reading, for samples and their corrections alike.
const READING_RULES: &[Rule] = &[
    Rule::NotEmpty("tag"),
    Rule::NotBeforeEpoch("ts"),
    Rule::DefaultsToZero("quality"),
    Rule::FiniteWhenGood {
        value: "value",
        quality: "quality",
    },
];

static SAMPLES: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "samples",
    schema: reading_fields([
        Field::new("equipment", DataType::Utf8, true),
        Field::new("work_order", DataType::Utf8, true),
        Field::new("lot", DataType::Utf8, true),
    ]),
    key: &["tag", "ts"],
    time_column: Some("ts"),
    range_column: "tag",
    bloom_columns: &["tag", "lot", "work_order"],
    key_policy: KeyPolicy::OneRowPerKey,
    rules: READING_RULES,
    caches: &[Cache::LastValues],
});

static TAGS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "tags",
    schema: Arc::new(Schema::new(vec![
        Field::new("tag", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, true),
        Field::new("unit", DataType::Utf8, true),
        Field::new("equipment", DataType::Utf8, true),
        Field::new("value_type", DataType::Utf8, true),
        Field::new("interpolation", DataType::Utf8, true),
        Field::new("eng_low", DataType::Float64, true),
        Field::new("eng_high", DataType::Float64, true),
        Field::new("treat_uncertain_as_bad", DataType::Boolean, true),
        Field::new("percent_data_good", DataType::UInt8, true),
        Field::new("percent_data_bad", DataType::UInt8, true),
        Field::new("use_sloped_extrapolation", DataType::Boolean, true),
    ])),
    key: &["tag"],
    time_column: None,
    range_column: "tag",
    bloom_columns: &["tag"],
    key_policy: KeyPolicy::Versioned,
    rules: &[
        Rule::NotEmpty("tag"),
        Rule::OneOf("value_type", &["float", "int", "bool", "string"]),
        Rule::OneOf("interpolation", &["linear", "step"]),
        Rule::AtMost("percent_data_good", 100),
        Rule::AtMost("percent_data_bad", 100),
        Rule::UnitCode("unit"),
    ],
    caches: &[Cache::Stamping],
});

/// Corrections of samples, which stay immutable: `samples` shows the newest
/// correction's value, text and quality for its (tag, ts), `samples_raw` the
/// original. `corrected_by` and `corrected_at` are set by the server; a
/// `reason` is required (per row, or for the request).
static SAMPLE_CORRECTIONS: LazyLock<TableDef> = LazyLock::new(|| TableDef {
    name: "sample_corrections",
    // Nullable for writers, always set once stored.
    schema: reading_fields([
        Field::new("corrected_by", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("corrected_at", ts_type(), true),
    ]),
    key: &["tag", "ts"],
    time_column: Some("ts"),
    range_column: "tag",
    bloom_columns: &["tag"],
    key_policy: KeyPolicy::AppendOnly,
    rules: READING_RULES,
    caches: &[Cache::Corrections],
});

/// All tables, in a stable order (their index is their id in the WAL: a new
/// table goes at the end).
pub fn tables() -> [&'static TableDef; 16] {
    [
        &SAMPLES,
        &TAGS,
        &context::EQUIPMENT,
        &context::WORK_ORDERS,
        &context::LOTS,
        &context::PRODUCTION_RUNS,
        &context::GENEALOGY,
        &audit::AUDIT_LOG,
        &SAMPLE_CORRECTIONS,
        &master_data::MATERIALS,
        &master_data::WORK_ORDER_SEGMENTS,
        &master_data::WORK_ORDER_MATERIALS,
        &master_data::ALIASES,
        &master_data::SYSTEMS,
        &master_data::DRAFTS,
        &master_data::WORK_ORDER_PARAMETERS,
    ]
}

pub fn sample_corrections() -> &'static TableDef {
    &SAMPLE_CORRECTIONS
}

/// Names of the tables clients may write (all but `audit_log`), for the
/// messages that refuse an unknown table.
pub fn writable_table_names() -> String {
    let writable = tables().into_iter().filter(|t| client_writable(t));
    writable.map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// The table whose writes feed the genealogy index, if any.
pub fn genealogy() -> &'static TableDef {
    &context::GENEALOGY
}

/// The hash-chained audit trail, written by the server only.
pub fn audit_log() -> &'static TableDef {
    &audit::AUDIT_LOG
}

/// False for tables no client may write (`audit_log`).
pub fn client_writable(def: &TableDef) -> bool {
    def.name != audit::TABLE_NAME
}

pub fn production_runs() -> &'static TableDef {
    &context::PRODUCTION_RUNS
}

pub fn table(name: &str) -> Option<&'static TableDef> {
    tables()
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

pub fn samples() -> &'static TableDef {
    &SAMPLES
}

pub fn tags() -> &'static TableDef {
    &TAGS
}

/// OPC UA StatusCode severity, from the two top bits: 00 Good.
pub fn is_good(quality: u32) -> bool {
    quality & 0xC000_0000 == 0
}

/// OPC UA StatusCode severity: 1x Bad.
pub fn is_bad(quality: u32) -> bool {
    quality & 0x8000_0000 != 0
}

/// A normalized `samples` batch of (tag, ts in ns, value) rows, the other
/// columns null or default: the input most write-path unit tests start from.
#[cfg(test)]
pub fn test_samples(rows: &[(&str, i64, f64)]) -> arrow::array::RecordBatch {
    use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    let raw = RecordBatch::try_from_iter([
        (
            "tag",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as _,
        ),
        (
            "ts",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )) as _,
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))) as _,
        ),
    ])
    .expect("test rows form a batch");
    normalize_batch(samples(), &raw, 0).expect("test rows are valid samples")
}
