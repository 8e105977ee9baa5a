//! `lotline load`: bulk-load a CSV or Parquet file into a table through Flight
//! SQL `CommandStatementIngest`. Columns are matched to the table by name and
//! cast to the table's types on the client, so a bad value is reported with
//! its row and column before anything is sent. Each batch is its own ingest
//! call, i.e. one durable, acknowledged unit: a failure part-way leaves every
//! earlier batch loaded and none of the failing one.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandStatementIngest, TableDefinitionOptions, TableExistsOption, TableNotExistOption,
};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tonic::transport::Channel;

use super::align::Aligner;
use super::{ClientError, ConnectArgs, connect, table_schema};

type Client = FlightSqlServiceClient<Channel>;

const BYTES_TEMPLATE: &str = "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}";
const ROWS_TEMPLATE: &str = "{spinner} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})";

#[derive(Clone, Copy)]
enum FileKind {
    Csv,
    Parquet,
}

/// Load `file` (`.csv` with a header line, or `.parquet`) into `table`
/// (optionally `schema.table` or `catalog.schema.table`), `batch_rows` rows
/// per ingest call. Returns the number of rows the server acknowledged.
pub async fn run_load(
    args: &ConnectArgs,
    file: &Path,
    table: &str,
    batch_rows: usize,
) -> Result<u64, ClientError> {
    let shown = file.display().to_string();
    if batch_rows == 0 {
        return Err(ClientError::Usage(
            "batch rows must be at least 1".to_string(),
        ));
    }
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let kind = match extension.as_deref() {
        Some("csv") => FileKind::Csv,
        Some("parquet") | Some("parq") | Some("pq") => FileKind::Parquet,
        _ => {
            return Err(ClientError::BadFile {
                file: shown,
                message: "unsupported file type: expected a .csv or .parquet file".to_string(),
            });
        }
    };
    // Open before connecting so a wrong path fails fast.
    let data = open(file, &shown)?;

    let mut client = connect(args).await?;
    let target = table_schema(&mut client, table).await?;
    let command = ingest_command(table);

    let started = Instant::now();
    let rows = match kind {
        FileKind::Csv => {
            let header = open(file, &shown)?;
            load_csv(
                &mut client,
                header,
                data,
                &shown,
                table,
                &target,
                &command,
                batch_rows,
            )
            .await?
        }
        FileKind::Parquet => {
            load_parquet(
                &mut client,
                data,
                &shown,
                table,
                &target,
                &command,
                batch_rows,
            )
            .await?
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
    eprintln!("loaded {rows} rows into {table} in {secs:.1} s ({rate:.0} rows/s)");
    Ok(rows)
}

fn open(path: &Path, shown: &str) -> Result<File, ClientError> {
    File::open(path).map_err(|source| ClientError::Io {
        path: shown.to_string(),
        source,
    })
}

/// Append-only ingest into an existing table, honouring `schema.table` and
/// `catalog.schema.table` names.
pub fn ingest_command(table: &str) -> CommandStatementIngest {
    let parts: Vec<&str> = table.split('.').collect();
    let (catalog, schema, name) = match parts.as_slice() {
        [t] => (None, None, *t),
        [s, t] => (None, Some(*s), *t),
        [c, s, t] => (Some(*c), Some(*s), *t),
        _ => (None, None, table),
    };
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Fail as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        table: name.to_string(),
        schema: schema.map(str::to_string),
        catalog: catalog.map(str::to_string),
        ..Default::default()
    }
}

fn progress_bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

#[allow(clippy::too_many_arguments)]
async fn load_csv(
    client: &mut Client,
    header: File,
    data: File,
    file: &str,
    table: &str,
    target: &Schema,
    command: &CommandStatementIngest,
    batch_rows: usize,
) -> Result<u64, ClientError> {
    let bad_file = |message: String| ClientError::BadFile {
        file: file.to_string(),
        message,
    };
    // Column names from the header line (the csv parser handles quoting).
    let (names, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(header, Some(0))
        .map_err(|e| bad_file(format!("cannot read the header line: {e}")))?;
    if names.fields().is_empty() {
        return Err(bad_file("no header line (the file is empty)".to_string()));
    }
    // Read every column as text; the aligner casts to the table's types.
    let text_fields: Vec<Field> = names
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().trim_start_matches('\u{feff}').trim();
            Field::new(name, DataType::Utf8, true)
        })
        .collect();
    let text_schema: SchemaRef = Arc::new(Schema::new(text_fields));
    let aligner = Aligner::new(&text_schema, target, file, table)?;

    let len = data.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(len, BYTES_TEMPLATE);
    let reader = arrow::csv::ReaderBuilder::new(text_schema)
        .with_header(true)
        .with_header_validation(false)
        .with_batch_size(batch_rows)
        .build(bar.wrap_read(data))
        .map_err(|e| bad_file(e.to_string()))?;

    let mut done = 0u64; // data rows read so far
    let mut acked = 0u64;
    let outcome: Result<(), ClientError> = async {
        for batch in reader {
            let batch = batch.map_err(|e| bad_file(format!("after data row {done}: {e}")))?;
            let n = batch.num_rows() as u64;
            let aligned = aligner.apply(&batch, done)?;
            acked += ingest(client, command, aligned, table, done).await?;
            done += n;
            bar.set_message(format!("{done} rows"));
        }
        Ok::<(), ClientError>(())
    }
    .await;
    finish_bar(&bar, &outcome);
    outcome.map(|()| acked)
}

async fn load_parquet(
    client: &mut Client,
    data: File,
    file: &str,
    table: &str,
    target: &Schema,
    command: &CommandStatementIngest,
    batch_rows: usize,
) -> Result<u64, ClientError> {
    let parquet_err = |source| ClientError::Parquet {
        path: file.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(parquet_err)?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let source_schema: SchemaRef = builder.schema().clone();
    let aligner = Aligner::new(&source_schema, target, file, table)?;
    let reader = builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(parquet_err)?;

    let bar = progress_bar(total, ROWS_TEMPLATE);
    let mut done = 0u64;
    let mut acked = 0u64;
    let outcome: Result<(), ClientError> = async {
        for batch in reader {
            let batch = batch
                .map_err(|e| ClientError::arrow(format!("{file}: reading after row {done}"), e))?;
            let n = batch.num_rows() as u64;
            let aligned = aligner.apply(&batch, done)?;
            acked += ingest(client, command, aligned, table, done).await?;
            done += n;
            bar.inc(n);
        }
        Ok::<(), ClientError>(())
    }
    .await;
    finish_bar(&bar, &outcome);
    outcome.map(|()| acked)
}

fn finish_bar(bar: &ProgressBar, outcome: &Result<(), ClientError>) {
    if outcome.is_ok() {
        bar.finish_and_clear();
    } else {
        bar.abandon();
    }
}

/// One ingest call for one batch; returns the rows the server acknowledged.
async fn ingest(
    client: &mut Client,
    command: &CommandStatementIngest,
    batch: RecordBatch,
    table: &str,
    first_row: u64,
) -> Result<u64, ClientError> {
    let n = batch.num_rows() as u64;
    if n == 0 {
        return Ok(0);
    }
    let stream = futures::stream::iter([Ok::<RecordBatch, FlightError>(batch)]);
    let count = client
        .execute_ingest(command.clone(), stream)
        .await
        .map_err(|e| {
            ClientError::flight(
                format!(
                    "loading rows {}..{} into '{table}' (earlier rows are loaded)",
                    first_row + 1,
                    first_row + n
                ),
                e,
            )
        })?;
    Ok(if count >= 0 { count as u64 } else { n })
}

#[cfg(test)]
mod tests {
    use super::ingest_command;

    #[test]
    fn ingest_command_splits_qualified_names() {
        let c = ingest_command("public.samples");
        assert_eq!(c.table, "samples");
        assert_eq!(c.schema.as_deref(), Some("public"));
        assert_eq!(c.catalog, None);
    }
}
