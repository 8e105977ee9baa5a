//! `lotline serve --demo`: writes a small synthetic plant through the real
//! ingest path (validation, WAL, buffer) and tells the user how to look at it.

mod catalog;
mod plant;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DurationRound, TimeDelta, Utc};
use tracing::info;

use crate::ingest::{Engine, IngestError};
use crate::model;
pub use plant::*;

/// Seed of the demo plant, so every demo shows the same data.
pub const DEMO_SEED: u64 = 1042;

/// Writes the demo plant: the hour before the current full hour, every tag of
/// three lines. Writing it twice appends a second copy of the samples, so a
/// data directory that already holds samples is left alone.
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
    let plant = demo_plant(
        DEMO_SEED,
        start,
        model::samples().schema.clone(),
        model::tags().schema.clone(),
    );
    engine
        .write(model::tags(), vec![plant.tags.clone()])
        .await?;
    let mut rows = 0;
    for batch in plant.samples {
        rows += engine.write(model::samples(), vec![batch]).await?;
    }
    info!(
        "demo: wrote {} tags and {rows} samples from {} ({} work orders)",
        plant.tags.num_rows(),
        start.format("%Y-%m-%dT%H:%M:%SZ"),
        plant.work_orders.len()
    );
    Ok(())
}

/// What to do next, printed once the demo server listens.
pub fn print_welcome(addr: &SocketAddr, without_auth: bool) {
    let auth = if without_auth {
        " --no-auth"
    } else {
        " --password <admin password>"
    };
    println!(
        r#"
The demo plant is loaded: 3 lines, 300 tags, one hour of 1 s samples.

Connect:
  lotline sql --endpoint http://{addr}{auth}
  Python:  adbc_driver_flightsql.dbapi.connect("grpc://{addr}", db_kwargs={{"username": "admin", "password": ...}})

Try:
  SELECT tag, count(*) AS n, avg(value) AS mean FROM samples WHERE tag LIKE 'line1.oven.%' GROUP BY tag ORDER BY tag;
  SELECT lot, work_order, min(ts) AS first, max(ts) AS last, avg(value) AS oven_temp FROM samples WHERE tag = 'line2.oven.temperature' GROUP BY lot, work_order ORDER BY first;
  SELECT tag, ts, value, quality FROM samples WHERE quality <> 0 ORDER BY ts LIMIT 20;
"#
    );
}
