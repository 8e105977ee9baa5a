//! `lotline generate`: a deterministic synthetic ISA-95 plant, from the
//! README demo to 50 k tags over days and 30 M genealogy edges.
//!
//! A plant definition (`datasets/plants/*.toml`, built in or a file) names
//! how many sites, areas, lines, units and tags there are, how long and how
//! often to sample, the seed and the genealogy size. From it come, as Arrow
//! batches: `equipment` (the ISA-95 tree), `tags`, `work_orders` and
//! `production_runs` (each line runs orders back to back), `lots` and
//! `genealogy` (raw → intermediate → finished, with splits, merges and
//! rework; see [`genealogy`]) and `samples` (realistic signals streamed by
//! time chunks; see [`signals`]). Nothing large is held in memory, and the
//! same definition and seed give the same batches, so the same file bytes.
//!
//! They go to files (`--out DIR`, Parquet or CSV, one file per table) or into
//! a running server over Flight SQL bulk ingest; the server takes `samples`,
//! `tags` and whichever context tables it already has.

mod catalog;
pub mod genealogy;
pub mod output;
pub mod plant;
mod rng;
pub mod signals;
pub mod tables;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::client::{ClientError, ConnectArgs};
pub use genealogy::Genealogy;
pub use output::{FileFormat, TableOutput};
pub use plant::{Plant, PlantDef};
pub use signals::SampleStream;
pub use tables::TABLES;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("plant '{source_name}': {message}")]
    Definition {
        source_name: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("internal: {0}")]
    Internal(String),
}

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// A built-in plant (demo, small, large, history: datasets/plants/) or a
    /// definition file (.toml)
    #[arg(long, default_value = "demo")]
    pub plant: String,
    /// Override the definition's seed
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the number of genealogy edges (0: no genealogy)
    #[arg(long)]
    pub edges: Option<u64>,
    /// Override the time covered, e.g. 10m, 6h, 3d
    #[arg(long)]
    pub duration: Option<String>,
    /// Override the sample period, e.g. 100ms, 1s, 10s
    #[arg(long)]
    pub sample_period: Option<String>,
    /// Override the first sample's time (RFC 3339)
    #[arg(long)]
    pub start: Option<String>,
    /// Write one file per table into this directory instead of streaming
    /// into a server
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// File format for --out
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: FileFormat,
    /// Rows per batch (per file write, or per ingest request)
    #[arg(long, default_value_t = 50_000)]
    pub batch_rows: usize,
    /// Concurrent ingest requests when streaming into a server
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

impl GenerateArgs {
    /// The definition with the command line's overrides applied.
    pub fn definition(&self) -> Result<PlantDef, GenerateError> {
        let mut def = PlantDef::load(&self.plant)?;
        if let Some(seed) = self.seed {
            def.seed = seed;
        }
        if let Some(edges) = self.edges {
            def.edges = edges;
        }
        if let Some(d) = &self.duration {
            def.duration = d.clone();
        }
        if let Some(p) = &self.sample_period {
            def.sample_period = p.clone();
        }
        if let Some(s) = &self.start {
            def.start = s.clone();
        }
        Ok(def)
    }
}

/// What `lotline generate` did.
#[derive(Debug, Serialize)]
pub struct GenerateReport {
    pub plant: String,
    pub seed: u64,
    pub start: String,
    pub duration: String,
    pub sample_period: String,
    pub destination: String,
    pub tables: Vec<TableOutput>,
    /// Context tables the server does not have yet (not sent).
    pub skipped_tables: Vec<String>,
    pub seconds: f64,
}

/// A plant's tables as batch streams, in [`TABLES`] order.
pub fn table_batches(
    plant: &Arc<Plant>,
    genealogy: &Arc<Genealogy>,
    table: &str,
    batch_rows: usize,
) -> Box<dyn Iterator<Item = RecordBatch> + Send> {
    let p = plant.clone();
    match table {
        "equipment" => Box::new(std::iter::once(tables::equipment_batch(&p))),
        "tags" => Box::new(std::iter::once(tables::tags_batch(&p))),
        "work_orders" => Box::new(tables::work_orders(p, batch_rows)),
        "production_runs" => Box::new(tables::production_runs(p, batch_rows)),
        "lots" => Box::new(genealogy.clone().lots(batch_rows)),
        "genealogy" => Box::new(genealogy.clone().edges(batch_rows)),
        "samples" => Box::new(SampleStream::new(p, batch_rows)),
        other => panic!("no generated table '{other}'"),
    }
}

/// Rows a table will have (samples: before gaps), for progress bars.
fn expected_rows(plant: &Plant, genealogy: &Genealogy, table: &str) -> u64 {
    match table {
        "equipment" => {
            let d = &plant.def;
            1 + d.sites as u64 * (1 + d.areas_per_site as u64)
                + (plant.lines.len() + plant.units.len()) as u64
        }
        "tags" => plant.tags.len() as u64,
        "work_orders" => plant.runs.len() as u64,
        "production_runs" => plant.runs.len() as u64 * plant.def.units_per_line as u64,
        "lots" => {
            let sizes = &genealogy.plan.sizes;
            if genealogy.plan.edges == 0 {
                plant.runs.len() as u64
            } else {
                sizes.iter().sum()
            }
        }
        "genealogy" => genealogy.plan.edges,
        _ => plant.sample_estimate(),
    }
}

pub async fn run(args: &GenerateArgs) -> Result<GenerateReport, GenerateError> {
    let began = Instant::now();
    let def = args.definition()?;
    let plant = Arc::new(Plant::new(def)?);
    let genealogy = Arc::new(Genealogy::new(plant.clone())?);
    let batch_rows = args.batch_rows.max(1);
    let mut outputs = Vec::new();
    let mut skipped = Vec::new();
    let destination;
    if let Some(dir) = &args.out {
        destination = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|e| GenerateError::Io {
            path: destination.clone(),
            source: e,
        })?;
        for table in TABLES {
            let bar = output::rows_bar(expected_rows(&plant, &genealogy, table), table);
            let (dir, format, schema) = (dir.clone(), args.format, tables::schema(table));
            let batches = table_batches(&plant, &genealogy, table, batch_rows);
            let bar2 = bar.clone();
            let written = tokio::task::spawn_blocking(move || {
                output::write_file(&dir, table, schema, format, batches, &bar2)
            })
            .await
            .map_err(|e| GenerateError::Internal(e.to_string()))??;
            bar.finish_and_clear();
            outputs.push(written);
        }
    } else {
        destination = args.connect.endpoint.clone();
        let present = output::server_tables(&args.connect).await?;
        for table in TABLES {
            if !present.iter().any(|t| t == table) {
                skipped.push(table.to_string());
                continue;
            }
            let bar = output::rows_bar(expected_rows(&plant, &genealogy, table), table);
            let batches = table_batches(&plant, &genealogy, table, batch_rows);
            outputs.push(
                output::ingest_stream(&args.connect, table, batches, args.writers, &bar).await?,
            );
            bar.finish_and_clear();
        }
    }
    Ok(GenerateReport {
        plant: plant.def.name.clone(),
        seed: plant.seed,
        start: plant.def.start.clone(),
        duration: plant.def.duration.clone(),
        sample_period: plant.def.sample_period.clone(),
        destination,
        tables: outputs,
        skipped_tables: skipped,
        seconds: began.elapsed().as_secs_f64(),
    })
}

pub fn render(report: &GenerateReport) -> String {
    let mut out = format!(
        "plant {} (seed {}), {} from {} at {} → {} in {:.1} s\n",
        report.plant,
        report.seed,
        report.duration,
        report.start,
        report.sample_period,
        report.destination,
        report.seconds
    );
    for t in &report.tables {
        let size = t.bytes.map_or(String::new(), |b| format!(", {b} bytes"));
        out.push_str(&format!("  {:<16} {:>12} rows{size}\n", t.table, t.rows));
    }
    if !report.skipped_tables.is_empty() {
        out.push_str(&format!(
            "  not sent (the server has no such table yet): {}\n",
            report.skipped_tables.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
