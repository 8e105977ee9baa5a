//! Where generated tables go: files (`DIR/<table>.parquet` or `.csv`,
//! written batch by batch, deterministic to the byte) or a running server
//! (Flight SQL bulk ingest, several requests in flight, each one durable
//! before it is acknowledged).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::CommandStatementIngest;
use arrow_flight::sql::client::FlightSqlServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use tonic::transport::Channel;

use super::GenerateError;
use crate::client::{self, ClientError, ConnectArgs};

/// File format of `--out`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
        }
    }
}

/// What was written for one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableOutput {
    pub table: String,
    pub rows: u64,
    /// The file, for `--out`.
    pub file: Option<PathBuf>,
    pub bytes: Option<u64>,
}

enum Writer {
    Parquet(ArrowWriter<BufWriter<File>>),
    Csv(arrow::csv::Writer<BufWriter<File>>),
}

/// Writes one table's batches to `DIR/<table>.<ext>`.
pub fn write_file(
    dir: &Path,
    table: &str,
    schema: SchemaRef,
    format: FileFormat,
    batches: impl Iterator<Item = RecordBatch>,
    bar: &ProgressBar,
) -> Result<TableOutput, GenerateError> {
    let path = dir.join(format!("{table}.{}", format.extension()));
    let shown = path.display().to_string();
    let io = |e: std::io::Error| GenerateError::Io {
        path: shown.clone(),
        source: e,
    };
    let parquet_err = |e: parquet::errors::ParquetError| GenerateError::Parquet {
        path: shown.clone(),
        source: e,
    };
    let out = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
    let mut writer = match format {
        FileFormat::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(3).expect("zstd level"),
                ))
                .set_dictionary_enabled(true)
                .set_max_row_group_row_count(Some(1_000_000))
                .build();
            Writer::Parquet(ArrowWriter::try_new(out, schema, Some(props)).map_err(parquet_err)?)
        }
        FileFormat::Csv => Writer::Csv(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.3fZ".into())
                .build(out),
        ),
    };
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        match &mut writer {
            Writer::Parquet(w) => w.write(&batch).map_err(parquet_err)?,
            Writer::Csv(w) => w.write(&batch)?,
        }
        bar.inc(batch.num_rows() as u64);
    }
    let out = match writer {
        Writer::Parquet(w) => w.into_inner().map_err(parquet_err)?,
        Writer::Csv(w) => w.into_inner(),
    };
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes = file.metadata().map_err(io)?.len();
    Ok(TableOutput {
        table: table.into(),
        rows,
        file: Some(path),
        bytes: Some(bytes),
    })
}

/// A progress bar counting rows, hidden when stderr is not a terminal.
pub fn rows_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
        )
        .expect("progress template"),
    );
    bar.set_message(what.to_string());
    bar
}

/// One durable ingest request of one batch.
pub async fn ingest_batch(
    flight: &mut FlightSqlServiceClient<Channel>,
    command: &CommandStatementIngest,
    batch: RecordBatch,
) -> Result<(), ClientError> {
    let stream = futures::stream::iter([Ok::<_, FlightError>(batch)]);
    flight
        .execute_ingest(command.clone(), stream)
        .await
        .map_err(|e| ClientError::flight(format!("ingest into '{}'", command.table), e))?;
    Ok(())
}

/// Streams `batches` (produced on a blocking thread) into `table` with
/// `writers` connections, each sending one request at a time.
pub async fn ingest_stream(
    connect: &ConnectArgs,
    table: &str,
    batches: impl Iterator<Item = RecordBatch> + Send + 'static,
    writers: usize,
    bar: &ProgressBar,
) -> Result<TableOutput, GenerateError> {
    let writers = writers.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<RecordBatch>(writers * 2);
    let producer = tokio::task::spawn_blocking(move || {
        for batch in batches {
            if tx.blocking_send(batch).is_err() {
                break; // every writer stopped: an error is reported below
            }
        }
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let (rx, connect, bar) = (rx.clone(), connect.clone(), bar.clone());
        let command = client::ingest_command(table);
        tasks.push(tokio::spawn(async move {
            let mut flight = client::connect(&connect).await?;
            let mut rows = 0u64;
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                let n = batch.num_rows() as u64;
                ingest_batch(&mut flight, &command, batch).await?;
                rows += n;
                bar.inc(n);
            }
            Ok::<u64, ClientError>(rows)
        }));
    }
    drop(rx);
    let mut rows = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(n)) => rows += n,
            Ok(Err(e)) => {
                first_error.get_or_insert(GenerateError::Client(e));
            }
            Err(e) => {
                first_error.get_or_insert(GenerateError::Internal(e.to_string()));
            }
        }
    }
    producer
        .await
        .map_err(|e| GenerateError::Internal(e.to_string()))?;
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(TableOutput {
        table: table.into(),
        rows,
        file: None,
        bytes: None,
    })
}

/// Names of the tables in the server's `public` schema.
pub async fn server_tables(connect: &ConnectArgs) -> Result<Vec<String>, ClientError> {
    let mut flight = client::connect(connect).await?;
    let batches = client::query(
        &mut flight,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await?;
    Ok(string_column(&batches))
}

/// The first column of a result, as strings (nulls skipped).
pub fn string_column(batches: &[RecordBatch]) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for batch in batches {
        let Ok(column) = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)
        else {
            continue;
        };
        let column = column.as_string::<i32>();
        out.extend(
            (0..column.len())
                .filter(|&i| column.is_valid(i))
                .map(|i| column.value(i).to_string()),
        );
    }
    out
}
