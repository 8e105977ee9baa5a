//! `samples` with corrections applied: [`CorrectExec`] replaces value, text
//! and quality of raw rows that `sample_corrections` corrected, as the rows
//! stream by, from the write path's in-memory map (corrections are rare).
//! `samples_raw` is the same scan without it.
//!
//! Filters on the corrected columns must not reach the raw scan (Parquet
//! pruning by raw statistics could drop a row whose corrected value matches),
//! so [`raw_safe_filters`] keeps only the others for it; DataFusion applies
//! every filter again above the scan.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result as DfResult, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use crate::ingest::corrections::{self, CorrectionMap};

/// Columns a correction replaces.
pub const CORRECTED: [&str; 3] = ["value", "text", "quality"];
/// Columns a correction is found by.
const LOOKUP: [&str; 2] = ["tag", "ts"];

/// The filters that may be evaluated against raw rows.
pub fn raw_safe_filters(filters: &[Expr]) -> Vec<Expr> {
    filters
        .iter()
        .filter(|f| {
            !f.column_refs()
                .iter()
                .any(|c| CORRECTED.contains(&c.name.as_str()))
        })
        .cloned()
        .collect()
}

/// The projection to scan so corrections can be applied to `projection` of
/// `schema`: it adds `tag` and `ts` where a corrected column is asked for.
/// Returns the scan projection and the output positions within it.
pub fn widen(
    schema: &arrow::datatypes::Schema,
    projection: Option<&Vec<usize>>,
) -> (Option<Vec<usize>>, Vec<usize>) {
    let Some(wanted) = projection else {
        return (None, (0..schema.fields().len()).collect());
    };
    let name = |i: usize| schema.field(i).name().as_str();
    let mut scan = wanted.clone();
    if wanted.iter().any(|&i| CORRECTED.contains(&name(i))) {
        for column in LOOKUP {
            let i = schema.index_of(column).expect("samples has tag and ts");
            if !scan.contains(&i) {
                scan.push(i);
            }
        }
    }
    let output = (0..wanted.len()).collect();
    (Some(scan), output)
}

#[derive(Debug)]
pub struct CorrectExec {
    input: Arc<dyn ExecutionPlan>,
    map: Arc<CorrectionMap>,
    /// Columns of the input to return, in order.
    output: Vec<usize>,
    properties: Arc<PlanProperties>,
}

impl CorrectExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, map: Arc<CorrectionMap>, output: Vec<usize>) -> Self {
        assert!(!map.is_empty(), "no CorrectExec without corrections");
        let schema = Arc::new(
            input
                .schema()
                .project(&output)
                .expect("output columns of the input"),
        );
        let partitions = input.properties().partitioning.partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            input,
            map,
            output,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for CorrectExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrectExec: corrections={}", self.map.len())
    }
}

impl ExecutionPlan for CorrectExec {
    fn name(&self) -> &str {
        "CorrectExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("CorrectExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::new(
            children.remove(0),
            self.map.clone(),
            self.output.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let map = self.map.clone();
        let output = self.output.clone();
        let schema = self.properties.eq_properties.schema().clone();
        let stream = input.map(move |batch| {
            let fixed = corrections::apply(&map, &batch?)
                .map_err(|e| DataFusionError::External(e.into()))?;
            Ok(fixed.project(&output)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
