//! Flight SQL prepared statements, as stateless as statement tickets: the
//! handle *is* the statement. It carries the SQL text (with the reason of the
//! call that made or bound it as its prefix, [`reason::carry`]) and, once a client has
//! bound parameters for a query (DoPut `CommandPreparedStatementQuery`), those
//! parameters as Arrow IPC; that DoPut answers with the new handle
//! (`DoPutPreparedStatementResult`), so any replica can plan and run it.
//! Clients that ignore that answer and execute the handle they prepared find
//! the values in a small server-side store ([`super::bound_parameters`]),
//! under the random id each prepared handle carries; closing frees them.
//!
//! Placeholders may stand in table-function arguments too
//! (`history_interpolated(?, ?, ?, ?)`); such a statement is planned again
//! per bound row (`query::parameterized`).
//!
//! Parameters are DataFusion placeholders, `$1`, `$2`, … or `?` (numbered in
//! order of appearance). DataFusion infers their types from where they stand
//! (`tag = ?` is Utf8); bound values are cast to those types, so a client may
//! send an int64 for a float or a string for a timestamp, and a value that
//! does not convert is refused naming the parameter. A bound batch of several
//! rows runs the statement once per row: a query returns the rows' results one
//! after the other; an INSERT writes all rows as one request (all or none).

use std::borrow::Cow;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{CastOptions, cast, cast_with_options, concat_batches};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{ActionCreatePreparedStatementResult, DoPutPreparedStatementResult};
use arrow_flight::{IpcMessage, SchemaAsIpc};
use bytes::Bytes;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, LogicalPlanBuilder, Union, WriteOp};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::{FutureExt, StreamExt, TryStreamExt};
use tonic::{Request, Status};

use super::auth::Principal;
use super::execute::df_status;
use super::flight::LotlineFlightSql;
pub use super::handle::Handle;
use super::handle::{HandleError, MAX_HANDLE_PARAMETER_BYTES};
use super::ipc_guard;
use super::reason;
use crate::ingest::{IngestError, WriteContext, request_bytes};
use crate::query::{self, parameterized::ArgumentPlaceholders};

#[derive(Debug, thiserror::Error)]
pub enum PreparedError {
    #[error("not a lotline prepared statement handle ({0}); prepare the statement again")]
    BadHandle(String),
    #[error(
        "the statement mixes placeholder styles ({0}); use either `?`, `$1`, `$2`, … or `$name`"
    )]
    MixedPlaceholders(String),
    #[error(
        "the statement has {expected} parameter(s) ({names}) but {got} column(s) were bound; bind one column per parameter, in order"
    )]
    ParameterCount {
        expected: usize,
        got: usize,
        names: String,
    },
    #[error("parameter {name} has no column of that name in the bound parameters")]
    MissingNamed { name: String },
    #[error(
        "parameter {name} must be {expected}, but the bound {got} value does not convert: {reason}"
    )]
    ParameterType {
        name: String,
        expected: DataType,
        got: DataType,
        reason: String,
    },
    #[error(
        "parameter {name} is {expected} where it stands, and the bound {got} value {value} would become {became}; \
         write the parameter with the type you mean, e.g. CAST(? AS DOUBLE)"
    )]
    Lossy {
        name: String,
        expected: DataType,
        got: DataType,
        value: String,
        became: String,
    },
    #[error(
        "the statement has {count} parameter(s) ({names}) but none are bound; bind them before executing"
    )]
    Unbound { count: usize, names: String },
    #[error(
        "bound query parameters take {bytes} bytes, more than {limit}: they travel in the statement handle; use fewer rows, or bulk ingest for data"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("parameters: {0}")]
    Plan(String),
    #[error("bound parameters: {0}")]
    Arrow(#[from] ArrowError),
}

impl From<HandleError> for PreparedError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::BadHandle(why) => Self::BadHandle(why),
            HandleError::Arrow(e) => Self::Arrow(e),
        }
    }
}

impl From<HandleError> for Status {
    fn from(e: HandleError) -> Self {
        PreparedError::from(e).into()
    }
}

impl From<PreparedError> for Status {
    fn from(e: PreparedError) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

impl Handle {
    /// This statement with `who`'s reason carried in its text
    /// ([`reason::carry`]), for the calls that run it later.
    pub fn carrying(self, who: &WriteContext) -> Result<Self, Status> {
        Ok(Self {
            sql: reason::carry(&self.sql, who)?,
            ..self
        })
    }
}

/// DataFusion understands `$n` placeholders only, while JDBC, ODBC and most
/// drivers write `?`: numbers each `?` in order of appearance. Works on tokens,
/// so a `?` in a string, a quoted name or a comment stays as it is; SQL that
/// does not tokenize is passed on unchanged for DataFusion to report.
pub fn number_question_marks(sql: &str) -> Result<Cow<'_, str>, PreparedError> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(Cow::Borrowed(sql));
    };
    let mut marks = HashSet::new();
    let mut dollar = None;
    for token in &tokens {
        if let Token::Placeholder(p) = &token.token {
            if p.starts_with('?') {
                marks.insert((token.span.start.line, token.span.start.column));
            } else {
                dollar.get_or_insert_with(|| p.clone());
            }
        }
    }
    if marks.is_empty() {
        return Ok(Cow::Borrowed(sql));
    }
    if let Some(p) = dollar {
        return Err(PreparedError::MixedPlaceholders(format!("`?` and `{p}`")));
    }
    // Lines and columns count characters the way the tokenizer does.
    let (mut line, mut column, mut number) = (1, 1, 0);
    let mut chars = sql.chars().peekable();
    let mut out = String::with_capacity(sql.len() + marks.len() * 2);
    while let Some(ch) = chars.next() {
        if ch == '?' && marks.contains(&(line, column)) {
            out.push('$');
            // `?3` names its position itself.
            if !chars.peek().is_some_and(char::is_ascii_digit) {
                number += 1;
                out.push_str(&number.to_string());
            }
        } else {
            out.push(ch);
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Ok(Cow::Owned(out))
}

/// The placeholders of a planned statement, in binding order.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// Placeholder ids as DataFusion names them (`$1`, `$name`).
    ids: Vec<String>,
    /// `None` where DataFusion cannot tell (e.g. `SELECT $1`).
    types: Vec<Option<DataType>>,
    named: bool,
    /// Some stand in table-function arguments: each row of values is planned
    /// again with the values written into them (`query::parameterized`).
    replan: bool,
}

impl Parameters {
    /// The parameters of `plan`, and those in table-function arguments
    /// (`in_arguments`, which planning does not keep in the plan).
    pub fn of(plan: &LogicalPlan, in_arguments: Vec<String>) -> Result<Self, PreparedError> {
        let mut found = plan
            .get_parameter_types()
            .map_err(|e| PreparedError::Plan(e.to_string()))?;
        let replan = !in_arguments.is_empty();
        for id in in_arguments {
            found.entry(id).or_insert(None);
        }
        let position = |id: &str| id.get(1..).and_then(|n| n.parse::<usize>().ok());
        let positional: Vec<_> = found.keys().filter_map(|id| position(id)).collect();
        if positional.is_empty() {
            let mut ids: Vec<String> = found.keys().cloned().collect();
            ids.sort();
            let types = ids.iter().map(|id| found[id].clone()).collect();
            return Ok(Self {
                ids,
                types,
                named: true,
                replan,
            });
        }
        if positional.len() != found.len() {
            let mut names: Vec<&str> = found.keys().map(String::as_str).collect();
            names.sort();
            return Err(PreparedError::MixedPlaceholders(names.join(", ")));
        }
        // `$1` and `$3` without `$2` still take three values: the list is positional.
        let count = positional.into_iter().max().unwrap_or(0);
        let ids: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
        let types = ids
            .iter()
            .map(|id| found.get(id).cloned().flatten())
            .collect();
        Ok(Self {
            ids,
            types,
            named: false,
            replan,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn names(&self) -> String {
        self.ids.join(", ")
    }

    /// The parameter schema a client binds against: one nullable field per
    /// placeholder, named after it, `Null` where the type is open.
    pub fn schema(&self) -> Schema {
        Schema::new(
            self.ids
                .iter()
                .zip(&self.types)
                .map(|(id, t)| Field::new(id, t.clone().unwrap_or(DataType::Null), true))
                .collect::<Vec<_>>(),
        )
    }

    /// One set of values per row of `batch`, each cast to its parameter's type.
    pub fn bind(&self, batch: &RecordBatch) -> Result<Vec<ParamValues>, PreparedError> {
        let columns = if self.named {
            self.ids
                .iter()
                .map(|id| {
                    batch
                        .column_by_name(&id[1..])
                        .cloned()
                        .ok_or_else(|| PreparedError::MissingNamed { name: id.clone() })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else if batch.num_columns() == self.ids.len() {
            batch.columns().to_vec()
        } else {
            return Err(PreparedError::ParameterCount {
                expected: self.ids.len(),
                got: batch.num_columns(),
                names: self.names(),
            });
        };
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let mut cast = Vec::with_capacity(columns.len());
        for ((column, id), wanted) in columns.into_iter().zip(&self.ids).zip(&self.types) {
            let column = without_union(id, column)?;
            cast.push(match wanted {
                Some(t) if t != column.data_type() => {
                    let converted = cast_with_options(&column, t, &options).map_err(|e| {
                        PreparedError::ParameterType {
                            name: id.clone(),
                            expected: t.clone(),
                            got: column.data_type().clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    refuse_lossy(id, &column, &converted)?;
                    converted
                }
                _ => column,
            });
        }
        (0..batch.num_rows())
            .map(|row| {
                let values = cast
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, row))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
                Ok(if self.named {
                    ParamValues::Map(
                        self.ids
                            .iter()
                            .map(|id| id[1..].to_string())
                            .zip(values.into_iter().map(Into::into))
                            .collect(),
                    )
                } else {
                    values.into()
                })
            })
            .collect()
    }
}

/// The values of a union column (flightsql-dbapi binds each parameter as a
/// dense union of int64, float64, utf8, binary and bool) as a plain column
/// of the type they were bound with; other columns as they are.
fn without_union(id: &str, column: ArrayRef) -> Result<ArrayRef, PreparedError> {
    if !matches!(column.data_type(), DataType::Union(..)) {
        return Ok(column);
    }
    let scalar_error = |e: DataFusionError| ArrowError::ComputeError(e.to_string());
    let mut values = Vec::with_capacity(column.len());
    for row in 0..column.len() {
        values.push(
            match ScalarValue::try_from_array(&column, row).map_err(scalar_error)? {
                ScalarValue::Union(Some((_, value)), ..) => *value,
                _ => ScalarValue::Null,
            },
        );
    }
    let types: HashSet<DataType> = values
        .iter()
        .filter(|v| !v.is_null())
        .map(ScalarValue::data_type)
        .collect();
    if types.len() > 1 {
        let mut names: Vec<String> = types.iter().map(ToString::to_string).collect();
        names.sort();
        return Err(PreparedError::Plan(format!(
            "parameter {id} is bound with values of different types in different rows ({}); \
             bind one type per parameter",
            names.join(", ")
        )));
    }
    let Some(data_type) = types.into_iter().next() else {
        return Ok(arrow::array::new_null_array(&DataType::Null, column.len()));
    };
    let values = values.into_iter().map(|v| {
        if v.is_null() {
            ScalarValue::try_from(&data_type)
        } else {
            Ok(v)
        }
    });
    let values = values
        .collect::<Result<Vec<_>, _>>()
        .map_err(scalar_error)?;
    Ok(ScalarValue::iter_to_array(values).map_err(scalar_error)?)
}

/// A number cast to the parameter's inferred type must keep its value:
/// 1.25 bound where DataFusion inferred an integer (`? + 1`) would silently
/// become 1, and an integer beyond 2^53 bound as a double changes too. Cast
/// back and compare; the first value that changed is named.
fn refuse_lossy(id: &str, bound: &ArrayRef, converted: &ArrayRef) -> Result<(), PreparedError> {
    let (from, to) = (bound.data_type(), converted.data_type());
    // A float narrowed to a float rounds to the nearest, as SQL's REAL does.
    if !(from.is_numeric() && to.is_numeric()) || (from.is_floating() && to.is_floating()) {
        return Ok(());
    }
    let back = cast(converted, bound.data_type())?;
    for row in 0..bound.len() {
        let original = ScalarValue::try_from_array(bound, row)
            .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
        let round_trip = ScalarValue::try_from_array(&back, row)
            .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
        if original != round_trip {
            let became = ScalarValue::try_from_array(converted, row)
                .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
            return Err(PreparedError::Lossy {
                name: id.to_string(),
                expected: converted.data_type().clone(),
                got: bound.data_type().clone(),
                value: original.to_string(),
                became: became.to_string(),
            });
        }
    }
    Ok(())
}

/// A schema as the IPC message Flight SQL puts in prepared-statement results.
fn schema_ipc(schema: &Schema) -> Result<Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// `plan` with each row of values bound: one plan per row, except for an
/// INSERT, whose rows become one statement so they reach the engine as one
/// request: durable together or not at all.
fn bind_plan(
    plan: LogicalPlan,
    rows: Vec<ParamValues>,
) -> Result<Vec<LogicalPlan>, DataFusionError> {
    let insert = matches!(&plan, LogicalPlan::Dml(d) if matches!(d.op, WriteOp::Insert(_)));
    if insert && rows.len() > 1 {
        if let Some(merged) = insert_values(&plan, &rows)? {
            return Ok(vec![merged]);
        }
    }
    let plans = rows
        .into_iter()
        .map(|v| plan.clone().with_param_values(v))
        .collect::<Result<Vec<_>, _>>()?;
    union_inserts(plans)
}

/// Bound copies of one statement; for an INSERT, one statement writing the
/// rows of all copies.
fn union_inserts(plans: Vec<LogicalPlan>) -> Result<Vec<LogicalPlan>, DataFusionError> {
    let insert =
        matches!(plans.first(), Some(LogicalPlan::Dml(d)) if matches!(d.op, WriteOp::Insert(_)));
    if !insert || plans.len() < 2 {
        return Ok(plans);
    }
    // Any other INSERT (`INSERT … SELECT … WHERE x = ?`): the union of the
    // bound copies. Planning that grows faster than the rows; fine for tens.
    let mut first = None;
    let mut inputs = Vec::with_capacity(plans.len());
    for plan in plans {
        if let LogicalPlan::Dml(dml) = plan {
            inputs.push(dml.input.clone());
            first.get_or_insert(dml);
        }
    }
    let dml = first.expect("at least two inserts");
    let union = Union::try_new_with_loose_types(inputs)?;
    Ok(vec![LogicalPlan::Dml(DmlStatement::new(
        dml.table_name,
        dml.target,
        dml.op,
        Arc::new(LogicalPlan::Union(union)),
    ))])
}

/// The usual prepared INSERT, `INSERT … VALUES (?, ?, …)`: its one VALUES row
/// of placeholders becomes one VALUES row per bound row, which plans in time
/// linear in the rows. `None` when the placeholders stand anywhere else.
fn insert_values(
    plan: &LogicalPlan,
    rows: &[ParamValues],
) -> Result<Option<LogicalPlan>, DataFusionError> {
    let mut merged = false;
    let plan = plan
        .clone()
        .transform_up(|node| {
            let is_values = matches!(node, LogicalPlan::Values(_));
            if !is_values || merged || node.get_parameter_names()?.is_empty() {
                return Ok(Transformed::no(node));
            }
            let mut all = Vec::with_capacity(rows.len());
            for row in rows {
                if let LogicalPlan::Values(bound) = node.clone().with_param_values(row.clone())? {
                    all.extend(bound.values);
                }
            }
            merged = true;
            Ok(Transformed::yes(LogicalPlanBuilder::values(all)?.build()?))
        })?
        .data;
    if !merged || !plan.get_parameter_names()?.is_empty() {
        return Ok(None);
    }
    // The nodes above see new input schemas (nullability may differ).
    let plan = plan
        .transform_up(|node| node.recompute_schema().map(Transformed::yes))?
        .data;
    Ok(Some(plan))
}

impl LotlineFlightSql {
    /// Plans a prepared statement's SQL and finds its parameters.
    async fn plan_prepared(
        &self,
        sql: &str,
        principal: &Principal,
        who: WriteContext,
    ) -> Result<(DataFrame, Parameters), Status> {
        let sql = number_question_marks(sql)?;
        let frame = match self.plans.prepared(&principal.user, &sql) {
            Some(kept) => query::with_own_runtime(kept, &self.query_options),
            None => {
                let frame = self.plan(&sql, principal, who).await?;
                if super::execute::Writes::of(frame.logical_plan())
                    .tables
                    .is_empty()
                {
                    self.plans
                        .keep_prepared(&principal.user, &sql, frame.clone());
                }
                frame
            }
        };
        let in_arguments = ArgumentPlaceholders::ids(frame.task_ctx().session_config());
        let parameters = Parameters::of(frame.logical_plan(), in_arguments)?;
        Ok((frame, parameters))
    }

    /// The result schema of a prepared statement's SQL, planned, not run.
    pub(super) async fn prepared_schema(
        &self,
        sql: &str,
        principal: &Principal,
        who: WriteContext,
    ) -> Result<(Schema, Parameters), Status> {
        let (frame, parameters) = self.plan_prepared(sql, principal, who).await?;
        Ok((frame.schema().as_arrow().clone(), parameters))
    }

    /// CreatePreparedStatement: checks the SQL plans and answers with its
    /// result and parameter schemas.
    pub(super) async fn create_prepared(
        &self,
        sql: String,
        principal: &Principal,
        who: WriteContext,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let handle = Handle {
            sql,
            parameters: None,
            id: rand::random(),
        }
        .carrying(&who)?;
        let (frame, parameters) = self.plan_prepared(&handle.sql, principal, who).await?;
        Ok(ActionCreatePreparedStatementResult {
            dataset_schema: schema_ipc(frame.schema().as_arrow())?,
            parameter_schema: schema_ipc(&parameters.schema())?,
            prepared_statement_handle: handle.encode()?,
        })
    }

    /// DoPut CommandPreparedStatementQuery: checks the parameters against the
    /// statement now (so a bad one is reported at once) and returns the handle
    /// that carries them.
    pub(super) async fn bind_prepared_query(
        &self,
        handle: &[u8],
        request: Request<PeekableFlightDataStream>,
        principal: &Principal,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let who = reason::dml(principal, &request)?;
        let handle = Handle::decode(handle)?.carrying(&who)?;
        let parameters = self.read_parameters(request).await?;
        let (_, placeholders) = self.plan_prepared(&handle.sql, principal, who).await?;
        if let Some(batch) = &parameters {
            placeholders.bind(batch)?;
            let bytes = batch.get_array_memory_size();
            if bytes > MAX_HANDLE_PARAMETER_BYTES {
                return Err(PreparedError::TooLarge {
                    bytes,
                    limit: MAX_HANDLE_PARAMETER_BYTES,
                }
                .into());
            }
        }
        if let Some(batch) = &parameters {
            if handle.id != 0 {
                self.bound.keep(handle.id, &principal.user, batch.clone());
            }
        }
        let handle = Handle {
            parameters,
            ..handle
        };
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode()?),
        })
    }

    /// The parameters to run `handle` with: those it carries, else those
    /// `principal` last bound to it (for clients that keep the handle they
    /// prepared, [`super::bound_parameters`]).
    pub(super) fn parameters_of(
        &self,
        handle: &Handle,
        principal: &Principal,
    ) -> Option<RecordBatch> {
        handle.parameters.clone().or_else(|| {
            (handle.id != 0)
                .then(|| self.bound.get(handle.id, &principal.user))
                .flatten()
        })
    }

    /// The statement with `rows` bound: one frame per row for queries (none
    /// for zero rows), one for an INSERT of any number of rows. The schema is
    /// that of the results.
    pub(super) async fn bound_frames(
        &self,
        sql: &str,
        rows: Option<&RecordBatch>,
        principal: &Principal,
        who: WriteContext,
    ) -> Result<(Arc<Schema>, Vec<DataFrame>), Status> {
        let (frame, parameters) = self.plan_prepared(sql, principal, who.clone()).await?;
        let unbound_schema = Arc::new(frame.schema().as_arrow().clone());
        let Some(rows) = rows else {
            if !parameters.is_empty() {
                return Err(PreparedError::Unbound {
                    count: parameters.ids.len(),
                    names: parameters.names(),
                }
                .into());
            }
            return Ok((unbound_schema, vec![frame]));
        };
        let values = parameters.bind(rows)?;
        let (state, plan) = frame.into_parts();
        let plans = if parameters.replan {
            let sql = number_question_marks(sql)?;
            let mut plans = Vec::with_capacity(values.len());
            for row in values {
                let frame = self
                    .planner()
                    .plan(&sql, principal, who.clone(), Some(row.clone()))
                    .await?;
                plans.push(frame.into_parts().1.with_param_values(row));
            }
            plans
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .and_then(union_inserts)
        } else {
            bind_plan(plan, values)
        };
        let frames: Vec<DataFrame> = plans
            .map_err(df_status)?
            .into_iter()
            .map(|p| DataFrame::new(state.clone(), p))
            .collect();
        let schema = frames
            .first()
            .map_or(unbound_schema, |f| Arc::new(f.schema().as_arrow().clone()));
        Ok((schema, frames))
    }

    /// The parameter rows a client sent with a DoPut, if any: a stream with no
    /// columns (what clients send when nothing is bound) is none.
    pub(super) async fn read_parameters(
        &self,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<Option<RecordBatch>, Status> {
        let (schema, batches) = self.read_batches(request, "parameters").await?;
        match schema {
            Some(schema) if !schema.fields().is_empty() => Ok(Some(
                concat_batches(&schema, &batches).map_err(PreparedError::from)?,
            )),
            _ => Ok(None),
        }
    }

    /// Every record batch of a DoPut stream, within `max_request_bytes`.
    pub(super) async fn read_batches(
        &self,
        request: Request<PeekableFlightDataStream>,
        what: &str,
    ) -> Result<(Option<Arc<Schema>>, Vec<RecordBatch>), Status> {
        let limit = self.engine.config().max_request_bytes;
        // Each message's claimed lengths are checked before Arrow decodes it.
        let stream_name = what.to_string();
        let mut guard = ipc_guard::StreamGuard::new(limit);
        let checked = request.into_inner().map(move |data| {
            let data = data?;
            if !data.data_header.is_empty() {
                guard
                    .check(&data.data_header, &data.data_body)
                    .map_err(|e| {
                        Status::invalid_argument(format!("decoding {stream_name} stream: {e}"))
                    })?;
            }
            Ok::<_, Status>(data)
        });
        let mut stream =
            FlightRecordBatchStream::new_from_flight_data(checked.map_err(FlightError::from));
        let mut batches = Vec::new();
        let mut bytes = 0;
        // The guard checks what Arrow's decoder is known to panic on; should
        // it still panic on something, the request ends with an error.
        while let Some(batch) = AssertUnwindSafe(stream.next())
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Some(Err(FlightError::DecodeError(
                    "not a well-formed Arrow IPC stream".into(),
                )))
            })
        {
            let batch = batch
                .map_err(|e| Status::invalid_argument(format!("decoding {what} stream: {e}")))?;
            bytes += request_bytes(std::slice::from_ref(&batch));
            if bytes > limit {
                self.metrics.rejected("flight_sql", "too_large");
                return Err(super::flight::ingest_status(IngestError::TooLarge {
                    bytes,
                    limit,
                }));
            }
            batches.push(batch);
        }
        Ok((stream.schema().cloned(), batches))
    }
}

#[cfg(test)]
mod tests;
