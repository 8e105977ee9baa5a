//! SQL over lotline's tables with DataFusion: catalog `lotline`, schema
//! `public`, one [`table::LotlineTable`] per table definition, the
//! `last_values` table, and lotline's functions (historian retrieval,
//! time-weighted averages, quality classes, traceability).

pub mod computed;
pub mod corrected;
pub mod gapfill;
pub mod genealogy;
pub mod historian;
pub mod last_values;
pub mod lot_samples;
pub mod memory;
pub mod parameterized;
mod pinned;
pub mod quality;
pub mod retrieval;
pub mod sink;
pub mod sql_literal;
pub mod table;
pub mod time_weighted;
pub mod verify_audit;
pub mod versioned;

use std::sync::{Arc, LazyLock};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableFunctionImpl;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionConfig;

use crate::ingest::Engine;
use crate::ingest::genealogy_index::Direction;
use crate::model;
use parameterized::Parameterized;

pub const CATALOG: &str = "lotline";
pub const SCHEMA: &str = "public";

/// Limits a deployment sets on queries.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Largest number of rows (tags x intervals) one historian function call may return.
    pub max_history_intervals: u64,
    /// The memory statements may use, together and each ([`memory`]).
    pub memory: memory::QueryMemory,
    /// Statements that run at once; more wait for one to finish.
    pub max_concurrent: usize,
    /// A statement running longer is cancelled (`None`: no limit).
    pub statement_timeout: Option<std::time::Duration>,
    /// Tables of the layers above (e.g. `collector_status`), registered in
    /// every session beside lotline's own.
    pub extra_tables: Vec<(&'static str, Arc<dyn datafusion::catalog::TableProvider>)>,
}

/// Statements that run at once unless configured.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            max_history_intervals: retrieval::DEFAULT_MAX_INTERVALS,
            memory: memory::QueryMemory::default(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            statement_timeout: None,
            extra_tables: Vec::new(),
        }
    }
}

/// A new SQL session over `engine`'s tables with default options.
pub fn session(engine: &Arc<Engine>) -> SessionContext {
    session_with(engine, &QueryOptions::default())
}

/// What every session shares, so its caches outlive a statement: above all
/// the Parquet footer and page-index cache, which otherwise every statement
/// would read and decode again for each segment it touches. Segments are
/// immutable and never reuse a path, so a cached entry cannot go stale; the
/// cache is bounded by DataFusion's default memory limit.
static RUNTIME: LazyLock<Arc<RuntimeEnv>> = LazyLock::new(|| Arc::new(RuntimeEnv::default()));

/// A statement's runtime: the shared caches, spill directory and object
/// stores, and its own view of the query memory.
fn statement_runtime(memory: &memory::QueryMemory) -> Arc<RuntimeEnv> {
    RuntimeEnvBuilder::from_runtime_env(&RUNTIME)
        .with_memory_pool(memory.for_statement())
        .build_arc()
        .expect("a runtime of existing parts builds")
}

/// `frame` (planned in a session of [`session_with`]) with a runtime of its
/// own, as a new statement's: a plan kept for reuse does not share its
/// view of the query memory with the statements that ran it before.
pub fn with_own_runtime(
    frame: datafusion::dataframe::DataFrame,
    options: &QueryOptions,
) -> datafusion::dataframe::DataFrame {
    let (state, plan) = frame.into_parts();
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(statement_runtime(&options.memory))
        .build();
    // `now()` is this run's start, not the planning's.
    state.mark_start_execution();
    datafusion::dataframe::DataFrame::new(state, plan)
}

/// A new SQL session over `engine`'s tables. Sessions are cheap; the server
/// makes one per statement so session settings never leak between clients.
pub fn session_with(engine: &Arc<Engine>, options: &QueryOptions) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_information_schema(true)
        .with_extension(Arc::new(parameterized::ArgumentPlaceholders::default()));
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pruning = true;
    parquet.enable_page_index = true;
    parquet.bloom_filter_on_read = true;
    parquet.pushdown_filters = true;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(statement_runtime(&options.memory))
        .with_default_features();
    let state = gapfill::enable(state, options.max_history_intervals);
    let ctx = SessionContext::new_with_state(state.build());
    for def in model::tables() {
        ctx.register_table(
            def.name,
            Arc::new(table::LotlineTable::new(def, engine.clone())),
        )
        .expect("registering a table in a fresh session");
    }
    ctx.register_table(
        "samples_raw",
        Arc::new(table::LotlineTable::raw(model::samples(), engine.clone())),
    )
    .expect("registering samples_raw");
    for def in model::tables().into_iter().filter(|d| d.is_versioned()) {
        let history = versioned::HistoryTable::new(def, engine.clone());
        ctx.register_table(history.name(), Arc::new(history))
            .expect("registering a history table");
    }
    ctx.register_table(
        last_values::TABLE_NAME,
        last_values::LastValuesTable::provider(model::samples(), engine.clone()),
    )
    .expect("registering last_values");
    for (name, table) in &options.extra_tables {
        ctx.register_table(*name, table.clone())
            .expect("registering an extra table in a fresh session");
    }
    ctx.register_udf(ScalarUDF::from(quality::QualityClass::default()));
    ctx.register_udaf(AggregateUDF::from(time_weighted::TimeWeightedAvg::default()));
    // Table functions whose arguments may be bound parameters (see `parameterized`).
    let max = options.max_history_intervals;
    let functions: [(&'static str, SchemaRef, Arc<dyn TableFunctionImpl>); 5] = [
        (
            "history_interpolated",
            retrieval::output_schema(false),
            Arc::new(retrieval::HistoryFunction::interpolated(
                engine.clone(),
                max,
            )),
        ),
        (
            "history_aggregate",
            retrieval::output_schema(true),
            Arc::new(retrieval::HistoryFunction::aggregate(engine.clone(), max)),
        ),
        (
            "trace_backward",
            genealogy::output_schema(),
            Arc::new(genealogy::TraceFunction::new(
                engine.clone(),
                Direction::Backward,
            )),
        ),
        (
            "trace_forward",
            genealogy::output_schema(),
            Arc::new(genealogy::TraceFunction::new(
                engine.clone(),
                Direction::Forward,
            )),
        ),
        (
            "lot_samples",
            lot_samples::output_schema(),
            Arc::new(lot_samples::LotSamplesFunction::new(engine.clone())),
        ),
    ];
    for (name, schema, function) in functions {
        ctx.register_udtf(name, Parameterized::wrap(name, schema, function));
    }
    ctx.register_udtf(
        verify_audit::NAME,
        Arc::new(verify_audit::VerifyAuditFunction::new(engine.clone())),
    );
    ctx
}
