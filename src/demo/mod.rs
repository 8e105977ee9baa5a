//! `lotline serve --demo`: writes the built-in demo plant of `lotline
//! generate` (`datasets/plants/demo.toml`: 3 lines, 300 tags, one hour of
//! 1 s samples) through the real ingest path (validation, WAL, buffer) and
//! tells the user how to look at it.

use std::sync::Arc;

use chrono::{DurationRound, SecondsFormat, TimeDelta, Utc};
use tracing::info;

use crate::generate::{self, Genealogy, Plant, PlantDef};
use crate::ingest::{Engine, IngestError};
use crate::model;

/// Rows per write request.
const BATCH_ROWS: usize = 50_000;

/// Writes the demo plant: the hour before the current full hour. Every table
/// of the plant the server has is written (samples, tags and the context
/// tables, genealogy included).
/// Writing it twice appends a second copy of the samples, so a data directory
/// that already holds samples is left alone.
pub async fn load_demo(engine: &Arc<Engine>) -> Result<(), IngestError> {
    let existing = engine.snapshot(model::samples());
    if !existing.segments.is_empty() || existing.buffered.iter().any(|b| b.num_rows() > 0) {
        info!("demo: the data directory already holds samples; not writing the demo plant again");
        return Ok(());
    }
    let start = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("hour truncation")
        - TimeDelta::hours(1);
    let internal = |e: generate::GenerateError| IngestError::Internal(format!("demo plant: {e}"));
    let mut def = PlantDef::load("demo").map_err(internal)?;
    def.start = start.to_rfc3339_opts(SecondsFormat::Secs, true);
    let plant = Arc::new(Plant::new(def).map_err(internal)?);
    let genealogy = Arc::new(Genealogy::new(plant.clone()).map_err(internal)?);
    let mut written = Vec::new();
    for table in generate::TABLES {
        let Some(def) = model::table(table) else {
            continue;
        };
        let mut rows = 0;
        for batch in generate::table_batches(&plant, &genealogy, table, BATCH_ROWS) {
            rows += engine.write(def, vec![batch]).await?;
        }
        written.push(format!("{rows} {table}"));
    }
    info!(
        "demo: wrote {} from {} ({} work orders)",
        written.join(", "),
        plant.def.start,
        plant.runs.len()
    );
    Ok(())
}

/// What to do next, printed once the demo server listens.
/// `endpoint` is `grpc://host:port`, or `grpc+tls://host:port` with TLS;
/// `console` the web console's URL.
pub fn print_welcome(endpoint: &str, console: &str, without_auth: bool) {
    let auth = if without_auth {
        " --no-auth"
    } else {
        " --password <admin password>"
    };
    println!(
        r#"
The demo plant is loaded: 3 lines, 300 tags, one hour of 1 s samples.

Open the web console (trends, lot genealogy, audit trail) in a browser:
  {console}   (user admin)

Connect:
  lotline sql --endpoint {endpoint}{auth}
  Python:  adbc_driver_flightsql.dbapi.connect("{endpoint}", db_kwargs={{"username": "admin", "password": ...}})

Try:
  SELECT tag, count(*) AS n, avg(value) AS mean FROM samples WHERE tag LIKE 'line1.oven.%' GROUP BY tag ORDER BY tag;
  SELECT lot, work_order, min(ts) AS first, max(ts) AS last, avg(value) AS oven_temp FROM samples WHERE tag = 'line2.oven.temperature' GROUP BY lot, work_order ORDER BY first;
  SELECT tag, ts, value, quality FROM samples WHERE quality <> 0 ORDER BY ts LIMIT 20;
  SELECT lot, depth, path, quantity FROM trace_backward('L-1003', 2);
  SELECT t.lot, avg(s.value) AS oven_temp FROM trace_backward('L-1003') t JOIN lot_samples((SELECT lot FROM trace_backward('L-1003'))) s ON s.lot = t.lot WHERE s.tag LIKE '%.oven.temperature' GROUP BY t.lot;
"#
    );
}
