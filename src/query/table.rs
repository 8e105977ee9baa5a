//! [`LotlineTable`]: one `TableProvider` for every table, over the write
//! buffer plus the live segments that survive pruning.
//!
//! Pruning happens in three layers: the manifest's time and key ranges drop
//! whole segments before any file is opened; DataFusion's Parquet reader then
//! prunes row groups by statistics and bloom filters and pages by the page
//! index, using the same filters as a physical predicate.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::lit;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use super::corrected;
use super::pinned::PinnedReaderFactory;
use super::sink::IngestSink;
use crate::ingest::Engine;
use crate::ingest::corrections::CorrectionMap;
use crate::model::{self, Rule, TableDef};
use crate::storage::{Pins, SegmentMeta};

#[derive(Debug)]
pub struct LotlineTable {
    def: &'static TableDef,
    engine: Arc<Engine>,
    /// What `INSERT` fills into omitted non-nullable columns (e.g. quality 0, Good),
    /// the same default the ingest path applies.
    column_defaults: HashMap<&'static str, Expr>,
    /// `samples_raw`: show rows as written, without corrections.
    raw: bool,
}

impl LotlineTable {
    pub fn new(def: &'static TableDef, engine: Arc<Engine>) -> Self {
        let column_defaults = def
            .rules
            .iter()
            .filter_map(|rule| match rule {
                Rule::DefaultsToZero(column) => Some((*column, lit(0u32))),
                _ => None,
            })
            .collect();
        Self {
            def,
            engine,
            column_defaults,
            raw: false,
        }
    }

    /// `samples_raw`: the samples as written, without corrections.
    pub fn raw(def: &'static TableDef, engine: Arc<Engine>) -> Self {
        Self {
            raw: true,
            ..Self::new(def, engine)
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

/// Bounds on time and range key that a query's filters imply.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Bounds {
    /// Inclusive nanosecond bounds.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Key values the range column must be one of, when known.
    pub keys: Option<Vec<String>>,
}

impl Bounds {
    pub fn from_filters(def: &TableDef, filters: &[Expr]) -> Self {
        let mut bounds = Bounds::default();
        for filter in filters {
            bounds.add(def, filter);
        }
        bounds
    }

    fn add(&mut self, def: &TableDef, expr: &Expr) {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.add(def, left);
                self.add(def, right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, literal, op) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
                    (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                        Some(op) => (c, v, op),
                        None => return,
                    },
                    _ => return,
                };
                if Some(column.name.as_str()) == def.time_column {
                    if let Some(t) = nanos(literal) {
                        self.time(op, t);
                    }
                } else if column.name == def.range_column && op == Operator::Eq {
                    if let ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)) = literal
                    {
                        self.restrict_keys(vec![s.clone()]);
                    }
                }
            }
            Expr::Between(between) if !between.negated => {
                if let Expr::Column(c) = between.expr.as_ref() {
                    if Some(c.name.as_str()) == def.time_column {
                        if let (Expr::Literal(lo, _), Expr::Literal(hi, _)) =
                            (between.low.as_ref(), between.high.as_ref())
                        {
                            if let (Some(lo), Some(hi)) = (nanos(lo), nanos(hi)) {
                                self.time(Operator::GtEq, lo);
                                self.time(Operator::LtEq, hi);
                            }
                        }
                    }
                }
            }
            Expr::InList(list) if !list.negated => {
                if let Expr::Column(c) = list.expr.as_ref() {
                    if c.name == def.range_column {
                        let keys: Option<Vec<String>> = list
                            .list
                            .iter()
                            .map(|e| match e {
                                Expr::Literal(
                                    ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
                                    _,
                                ) => Some(s.clone()),
                                _ => None,
                            })
                            .collect();
                        if let Some(keys) = keys {
                            self.restrict_keys(keys);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn time(&mut self, op: Operator, t: i64) {
        let (lo, hi) = match op {
            Operator::Eq => (Some(t), Some(t)),
            Operator::Gt => (t.checked_add(1), None),
            Operator::GtEq => (Some(t), None),
            Operator::Lt => (None, t.checked_sub(1)),
            Operator::LtEq => (None, Some(t)),
            _ => (None, None),
        };
        if let Some(lo) = lo {
            self.min_time = Some(self.min_time.map_or(lo, |m| m.max(lo)));
        }
        if let Some(hi) = hi {
            self.max_time = Some(self.max_time.map_or(hi, |m| m.min(hi)));
        }
    }

    fn restrict_keys(&mut self, keys: Vec<String>) {
        self.keys = Some(match self.keys.take() {
            Some(old) => old.into_iter().filter(|k| keys.contains(k)).collect(),
            None => keys,
        });
    }

    /// Whether a segment may hold rows within these bounds.
    pub fn may_match(&self, segment: &SegmentMeta) -> bool {
        let time_ok = match (segment.min_time, segment.max_time) {
            (Some(lo), Some(hi)) => {
                self.min_time.is_none_or(|m| hi >= m) && self.max_time.is_none_or(|m| lo <= m)
            }
            _ => true,
        };
        let keys_ok = match (&self.keys, &segment.min_key, &segment.max_key) {
            (Some(keys), Some(lo), Some(hi)) => keys.iter().any(|k| k >= lo && k <= hi),
            _ => true,
        };
        time_ok && keys_ok
    }
}

fn nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for LotlineTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    /// `samples_raw` is another view of `samples`' rows, not a table of its own.
    fn table_type(&self) -> TableType {
        if self.raw {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.column_defaults.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.def.is_versioned() {
            // Master data is small: read it whole and resolve the current versions.
            return super::versioned::scan_current(&self.engine, self.def, projection).await;
        }
        if let Some(map) = self.corrections() {
            let (widened, output) = corrected::widen(&self.def.schema, projection);
            let filters = corrected::raw_safe_filters(filters);
            let raw = self.scan_raw(state, widened, &filters)?;
            return Ok(Arc::new(corrected::CorrectExec::new(raw, map, output)));
        }
        self.scan_raw(state, projection.cloned(), filters)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return datafusion::common::not_impl_err!(
                "{insert_op} is not supported on '{}': only INSERT INTO appends",
                self.def.name
            );
        }
        let sink = IngestSink::new(self.def, self.engine.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.changeable()?;
        super::versioned::change_plan(state, self.def, self.engine.clone(), None, filters)
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.changeable()?;
        super::versioned::change_plan(
            state,
            self.def,
            self.engine.clone(),
            Some(assignments),
            filters,
        )
    }
}

impl LotlineTable {
    /// The raw rows: live segments that survive pruning, plus the buffer.
    fn scan_raw(
        &self,
        state: &dyn Session,
        projection: Option<Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let snapshot = self.engine.snapshot(self.def);
        let schema = self.def.schema.clone();
        let bounds = Bounds::from_filters(self.def, filters);
        let files: Vec<PartitionedFile> = snapshot
            .segments
            .iter()
            .filter(|s| bounds.may_match(s))
            .map(|s| {
                PartitionedFile::new(
                    self.engine
                        .data_dir()
                        .join(&s.file)
                        .to_string_lossy()
                        .into_owned(),
                    s.bytes,
                )
            })
            .collect();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let pins = snapshot.pins.clone();
            inputs.push(self.parquet_scan(state, files, pins, projection.clone(), filters)?);
        }
        if !snapshot.buffered.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[snapshot.buffered],
                schema.clone(),
                projection.clone(),
            )?);
        }
        match inputs.len() {
            0 => {
                let projected = match &projection {
                    Some(p) => Arc::new(schema.project(p)?),
                    None => schema,
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            1 => Ok(inputs.pop().expect("one input")),
            _ => UnionExec::try_new(inputs),
        }
    }

    /// The corrections `samples` applies, unless this is `samples_raw` or
    /// there are none.
    fn corrections(&self) -> Option<Arc<CorrectionMap>> {
        if self.raw || !std::ptr::eq(self.def, model::samples()) {
            return None;
        }
        Some(self.engine.corrections()).filter(|map| !map.is_empty())
    }

    /// UPDATE and DELETE exist for versioned tables only: samples are
    /// immutable (corrections go to `sample_corrections`), and so is the
    /// audit trail, which no client writes at all.
    fn changeable(&self) -> DfResult<()> {
        if self.def.is_versioned() {
            return Ok(());
        }
        if !model::client_writable(self.def) {
            return datafusion::common::not_impl_err!(
                "'{}' is the append-only, hash-chained audit trail, written by lotline only: \
                 its entries are never updated or deleted",
                self.def.name
            );
        }
        datafusion::common::not_impl_err!(
            "'{}' is append-only: rows are never updated or deleted; \
             write a correction to sample_corrections instead",
            self.def.name
        )
    }

    fn parquet_scan(
        &self,
        state: &dyn Session,
        files: Vec<PartitionedFile>,
        pins: Pins,
        projection: Option<Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.def.schema.clone();
        // Footers and page indexes come from the runtime's metadata cache,
        // shared by all sessions (see `query::session_with`).
        let runtime = state.runtime_env();
        let cached = CachedParquetFileReaderFactory::new(
            runtime.object_store(ObjectStoreUrl::local_filesystem())?,
            runtime.cache_manager.get_file_metadata_cache(),
        );
        // The plan and its readers keep the snapshot's files until done.
        let reader = PinnedReaderFactory::new(Arc::new(cached), pins);
        let mut source = ParquetSource::new(schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(reader));
        // DataFusion's filter pushdown hands the same filters to the Parquet
        // source when `pushdown_filters` is on; without it we must do so here.
        if !state.config_options().execution.parquet.pushdown_filters {
            if let Some(predicate) = conjunction(filters.to_vec()) {
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
            }
        }
        // Spread files over the available partitions so segments are read in parallel.
        let partitions = state.config_options().execution.target_partitions.max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions.min(files.len())];
        let n = groups.len();
        for (i, file) in files.into_iter().enumerate() {
            groups[i % n].push(file);
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection)?
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
