//! `verify_audit()`: the SQL face of `lotline verify-audit`. Checks the
//! audit chain (segments, then the rows not yet flushed) and every live
//! segment's SHA-256 against the manifest, when the query runs.
//!
//! Rows: first a `summary` row (`ok` for the whole check, the first broken
//! `seq` and first bad `file` if any, and the counts), then one `chain` row
//! if the chain is broken, one `segment` row per file that does not match,
//! one `lineage` row per segment where the manifest and the chain's segment
//! entries disagree, and `note` rows for what is worth knowing but no failure.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DataFusionError, Result as DfResult, plan_err};
use datafusion::datasource::TableProvider;

use super::computed::{ComputeRows, ComputedTable};
use crate::audit::verify::{Report, verify_parts};
use crate::ingest::Engine;

pub const NAME: &str = "verify_audit";

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("check", DataType::Utf8, false),
        Field::new("ok", DataType::Boolean, false),
        Field::new("seq", DataType::UInt64, true),
        Field::new("file", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, false),
        Field::new("entries_checked", DataType::UInt64, false),
        Field::new("segments_checked", DataType::UInt64, false),
    ]))
}

#[derive(Debug)]
pub struct VerifyAuditFunction {
    engine: Arc<Engine>,
}

impl VerifyAuditFunction {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl TableFunctionImpl for VerifyAuditFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("{NAME}() takes no arguments");
        }
        Ok(ComputedTable::provider(VerifyAuditTable {
            engine: self.engine.clone(),
        }))
    }
}

#[derive(Debug)]
struct VerifyAuditTable {
    engine: Arc<Engine>,
}

#[async_trait]
impl ComputeRows for VerifyAuditTable {
    fn schema(&self) -> SchemaRef {
        output_schema()
    }

    async fn compute(&self) -> DfResult<RecordBatch> {
        let engine = self.engine.clone();
        let (manifest, unflushed, pins) = engine.audit_view().await;
        // Hashes every segment file: blocking I/O, off the async workers.
        let report = tokio::task::spawn_blocking(move || {
            let report = verify_parts(engine.data_dir(), &manifest, &unflushed);
            drop(pins);
            report
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        report_batch(&report)
    }
}

/// One row per finding, the summary first.
fn report_batch(report: &Report) -> DfResult<RecordBatch> {
    struct Row {
        check: &'static str,
        ok: bool,
        seq: Option<u64>,
        file: Option<String>,
        detail: String,
    }
    let mut rows = vec![Row {
        check: "summary",
        ok: report.ok(),
        seq: report.first_broken_seq,
        file: report
            .bad_files
            .iter()
            .chain(&report.lineage)
            .next()
            .map(|f| f.file.clone()),
        detail: report.summary(),
    }];
    if let (Some(seq), Some(reason)) = (report.first_broken_seq, &report.broken_reason) {
        rows.push(Row {
            check: "chain",
            ok: false,
            seq: Some(seq),
            file: None,
            detail: reason.clone(),
        });
    }
    let files = (report.bad_files.iter().map(|f| ("segment", f)))
        .chain(report.lineage.iter().map(|f| ("lineage", f)));
    rows.extend(files.map(|(check, f)| Row {
        check,
        ok: false,
        seq: None,
        file: Some(f.file.clone()),
        detail: f.reason.clone(),
    }));
    rows.extend(report.notes.iter().map(|n| Row {
        check: "note",
        ok: true,
        seq: None,
        file: None,
        detail: n.clone(),
    }));
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.check))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.ok)))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.seq))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.file.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.detail.as_str()),
        )),
        Arc::new(UInt64Array::from_value(report.entries_checked, n)),
        Arc::new(UInt64Array::from_value(report.segments_checked, n)),
    ];
    Ok(RecordBatch::try_new(output_schema(), columns)?)
}
