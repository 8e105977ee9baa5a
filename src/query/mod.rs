//! SQL over lotline's tables with DataFusion: catalog `lotline`, schema
//! `public`, one [`table::LotlineTable`] per table definition.

pub mod sink;
pub mod table;

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

use crate::ingest::Engine;
use crate::model;

pub const CATALOG: &str = "lotline";
pub const SCHEMA: &str = "public";

/// A new SQL session over `engine`'s tables. Sessions are cheap; the server
/// makes one per statement so session settings never leak between clients.
pub fn session(engine: &Arc<Engine>) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_information_schema(true);
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pruning = true;
    parquet.enable_page_index = true;
    parquet.bloom_filter_on_read = true;
    parquet.pushdown_filters = true;
    let ctx = SessionContext::new_with_config(config);
    for def in model::tables() {
        ctx.register_table(
            def.name,
            Arc::new(table::LotlineTable::new(def, engine.clone())),
        )
        .expect("registering a table in a fresh session");
    }
    ctx
}
