//! `GapFillExec`: the physical gap-filling operator and its stream.
//!
//! It asks DataFusion for its input in one partition, sorted by the series
//! columns and then the bucket time, so the stream can cut it into series
//! and fill each as soon as the next begins: memory holds one series at a
//! time, never the whole result. The number of rows it returns is capped
//! (`max_history_intervals`), checked before each series is built.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::SortOptions;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, exec_err, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr, PhysicalSortExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    InputDistributionRequirements, Partitioning, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream,
};
use futures::StreamExt;

use super::fill::{FillSpec, fill_series, plan_slots, times_ns};

#[derive(Debug)]
pub struct GapFillExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<FillSpec>,
    /// Largest number of rows the operator may return.
    max_rows: u64,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl GapFillExec {
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        spec: FillSpec,
        schema: SchemaRef,
        max_rows: u64,
    ) -> Result<Self> {
        let input_columns = input.schema().fields().len();
        if schema.fields().len() != input_columns + spec.filled.len() {
            return internal_err!("GapFillExec's schema does not fit its input and fills");
        }
        // The output is in the order the input is required to be in.
        let ordering = sort_columns(&input.schema(), &spec)
            .into_iter()
            .map(|column| PhysicalSortExpr::new(column, SERIES_ORDER));
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema.clone(), [ordering]),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            input,
            spec: Arc::new(spec),
            max_rows,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// Ascending with nulls last, SQL's default: `ORDER BY tag, minute` over
/// the output needs no further sort.
const SERIES_ORDER: SortOptions = SortOptions {
    descending: false,
    nulls_first: false,
};

/// The series columns, then the bucket time.
fn sort_columns(input_schema: &SchemaRef, spec: &FillSpec) -> Vec<Arc<dyn PhysicalExpr>> {
    spec.series
        .iter()
        .chain(std::iter::once(&spec.time))
        .map(|&index| {
            Arc::new(Column::new(input_schema.field(index).name(), index)) as Arc<dyn PhysicalExpr>
        })
        .collect()
}

impl DisplayAs for GapFillExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let spec = &self.spec;
        let input_schema = self.input.schema();
        let name = |index: usize| input_schema.field(index).name().clone();
        let fills: Vec<String> = spec
            .filled
            .iter()
            .map(|(source, strategy)| format!("{}({})", strategy.function_name(), name(*source)))
            .collect();
        let buckets = &spec.buckets;
        write!(
            f,
            "GapFillExec: series=[{}], time={}, buckets={} x {:?} from {}, fills=[{}], max_rows={}",
            spec.series
                .iter()
                .map(|&i| name(i))
                .collect::<Vec<_>>()
                .join(", "),
            name(spec.time),
            buckets.count,
            std::time::Duration::from_nanos(buckets.stride.unsigned_abs()),
            chrono::DateTime::from_timestamp_nanos(buckets.first).to_rfc3339(),
            fills.join(", "),
            self.max_rows
        )
    }
}

impl ExecutionPlan for GapFillExec {
    fn name(&self) -> &str {
        "GapFillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![Distribution::SinglePartition])
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        let requirement = sort_columns(&self.input.schema(), &self.spec)
            .into_iter()
            .map(|column| PhysicalSortRequirement::new(column, Some(SERIES_ORDER)));
        vec![LexRequirement::new(requirement).map(OrderingRequirements::new)]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        // All parameters were evaluated to constants when the plan was made.
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("GapFillExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::try_new(
            children.remove(0),
            self.spec.as_ref().clone(),
            self.schema.clone(),
            self.max_rows,
        )?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("GapFillExec has one partition, asked for {partition}");
        }
        let filler = SeriesFiller::new(
            self.spec.clone(),
            self.input.schema(),
            self.schema.clone(),
            self.max_rows,
            context.session_config().batch_size(),
        )?;
        let state = StreamState {
            input: self.input.execute(0, context)?,
            filler,
            input_done: false,
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let output = futures::stream::try_unfold(state, |mut state| async move {
            loop {
                if let Some(batch) = state.filler.ready.pop_front() {
                    state.metrics.record_output(batch.num_rows());
                    return Ok(Some((batch, state)));
                }
                if state.input_done {
                    return Ok(None);
                }
                match state.input.next().await {
                    Some(batch) => state.filler.push(batch?)?,
                    None => {
                        state.filler.finish_series()?;
                        state.input_done = true;
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            output,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

struct StreamState {
    input: SendableRecordBatchStream,
    filler: SeriesFiller,
    input_done: bool,
    metrics: BaselineMetrics,
}

/// Cuts sorted input into series and fills each one when it is complete.
pub struct SeriesFiller {
    spec: Arc<FillSpec>,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    /// Encodes the series columns so keys compare as bytes; none without series columns.
    keys: Option<RowConverter>,
    current_key: Option<OwnedRow>,
    /// The rows of the current series so far.
    pending: Vec<RecordBatch>,
    pub ready: VecDeque<RecordBatch>,
    rows_returned: u64,
    max_rows: u64,
    batch_size: usize,
}

impl SeriesFiller {
    pub fn new(
        spec: Arc<FillSpec>,
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        max_rows: u64,
        batch_size: usize,
    ) -> Result<Self> {
        let keys = if spec.series.is_empty() {
            None
        } else {
            let fields = spec
                .series
                .iter()
                .map(|&index| SortField::new(input_schema.field(index).data_type().clone()))
                .collect();
            Some(RowConverter::new(fields)?)
        };
        Ok(Self {
            spec,
            input_schema,
            output_schema,
            keys,
            current_key: None,
            pending: Vec::new(),
            ready: VecDeque::new(),
            rows_returned: 0,
            max_rows,
            batch_size: batch_size.max(1),
        })
    }

    /// Takes the next input batch; fills every series it completes.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let Some(keys) = &self.keys else {
            self.pending.push(batch);
            return Ok(());
        };
        let columns: Vec<_> = self
            .spec
            .series
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let keys = keys.convert_columns(&columns)?;
        let continues_current = self
            .current_key
            .as_ref()
            .is_some_and(|key| key.row() == keys.row(0));
        let mut series_starts: Vec<usize> = if continues_current { vec![] } else { vec![0] };
        series_starts.extend((1..rows).filter(|&row| keys.row(row) != keys.row(row - 1)));
        let last_key = keys.row(rows - 1).owned();

        let mut run_start = 0;
        for start in series_starts {
            if start > run_start {
                self.pending.push(batch.slice(run_start, start - run_start));
            }
            self.finish_series()?;
            run_start = start;
        }
        self.pending.push(batch.slice(run_start, rows - run_start));
        self.current_key = Some(last_key);
        Ok(())
    }

    /// Fills the pending series, if any, into `ready`.
    pub fn finish_series(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let series = concat_batches(&self.input_schema, &self.pending)?;
        self.pending.clear();
        let times = times_ns(&series, &self.spec)?;
        let slots = plan_slots(&times, &self.spec.buckets)?;
        self.rows_returned += slots.len() as u64;
        if self.rows_returned > self.max_rows {
            return exec_err!(
                "date_bin_gapfill would return more than {} rows ({} buckets per series); \
                 narrow the time range, use a longer interval or select fewer series \
                 (the limit is max_history_intervals)",
                self.max_rows,
                self.spec.buckets.count
            );
        }
        let filled = fill_series(&self.spec, &self.output_schema, &series, &times, &slots)?;
        let mut offset = 0;
        while offset < filled.num_rows() {
            let length = self.batch_size.min(filled.num_rows() - offset);
            self.ready.push_back(filled.slice(offset, length));
            offset += length;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::gapfill::fill::Buckets;
    use crate::query::gapfill::functions::FillStrategy;
    use arrow::array::{Array, AsArray, Float64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Float64Type, Schema, TimeUnit};
    use datafusion::common::ScalarValue;

    fn schemas() -> (SchemaRef, SchemaRef) {
        let fields = vec![
            Field::new("tag", DataType::Utf8, true),
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("avg", DataType::Float64, true),
        ];
        let input = Arc::new(Schema::new(fields.clone()));
        let mut output = fields;
        output.push(Field::new("locf", DataType::Float64, true));
        (input, Arc::new(Schema::new(output)))
    }

    fn filler(max_rows: u64, batch_size: usize) -> SeriesFiller {
        let (input, output) = schemas();
        let spec = FillSpec {
            series: vec![0],
            time: 1,
            buckets: Buckets::covering(0, 39, 10, 0).unwrap(),
            aggregates: vec![(2, ScalarValue::Float64(None))],
            filled: vec![(2, FillStrategy::Locf)],
        };
        SeriesFiller::new(Arc::new(spec), input, output, max_rows, batch_size).unwrap()
    }

    fn batch(rows: &[(&str, i64, f64)]) -> RecordBatch {
        RecordBatch::try_new(
            schemas().0,
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.1))
                        .collect::<TimestampNanosecondArray>(),
                ),
                Arc::new(rows.iter().map(|r| Some(r.2)).collect::<Float64Array>()),
            ],
        )
        .unwrap()
    }

    fn rows(filler: &SeriesFiller) -> Vec<(String, i64, Option<f64>, Option<f64>)> {
        let mut out = Vec::new();
        for batch in &filler.ready {
            let tags = batch.column(0).as_string::<i32>();
            let times = batch
                .column(1)
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>();
            let avg = batch.column(2).as_primitive::<Float64Type>();
            let locf = batch.column(3).as_primitive::<Float64Type>();
            for row in 0..batch.num_rows() {
                let value = |a: &arrow::array::Float64Array| a.is_valid(row).then(|| a.value(row));
                out.push((
                    tags.value(row).to_string(),
                    times.value(row),
                    value(avg),
                    value(locf),
                ));
            }
        }
        out
    }

    #[test]
    fn multiple_series_across_batch_boundaries_are_filled_separately() {
        let mut filler = filler(100, 3);
        // Series "a" spans two batches; "b" starts in the second; "c" has one row.
        filler.push(batch(&[("a", 10, 1.0)])).unwrap();
        filler
            .push(batch(&[("a", 30, 3.0), ("b", 0, 5.0)]))
            .unwrap();
        filler.push(batch(&[("c", 20, 7.0)])).unwrap();
        filler.finish_series().unwrap();
        let a = |t, avg, locf| ("a".to_string(), t, avg, locf);
        let b = |t, avg, locf| ("b".to_string(), t, avg, locf);
        let c = |t, avg, locf| ("c".to_string(), t, avg, locf);
        assert_eq!(
            rows(&filler),
            vec![
                a(0, None, None),
                a(10, Some(1.0), Some(1.0)),
                a(20, None, Some(1.0)),
                a(30, Some(3.0), Some(3.0)),
                b(0, Some(5.0), Some(5.0)),
                b(10, None, Some(5.0)),
                b(20, None, Some(5.0)),
                b(30, None, Some(5.0)),
                c(0, None, None),
                c(10, None, None),
                c(20, Some(7.0), Some(7.0)),
                c(30, None, Some(7.0)),
            ]
        );
        // Output batches are at most batch_size rows.
        assert!(filler.ready.iter().all(|b| b.num_rows() <= 3));
    }

    #[test]
    fn too_many_rows_is_an_error_naming_the_limit() {
        let mut filler = filler(6, 100);
        filler
            .push(batch(&[("a", 10, 1.0), ("b", 10, 2.0)]))
            .unwrap();
        let error = filler.finish_series().unwrap_err().to_string();
        assert!(error.contains("more than 6 rows"), "{error}");
        assert!(error.contains("max_history_intervals"), "{error}");
    }
}
