//! The Arrow Flight SQL service: handshake, statements, INSERT, prepared
//! statements (see [`super::prepared`]), bulk ingest, catalog browsing and the
//! custom actions ([`super::actions`]). What lotline does not do
//! (transactions, Substrait) is answered with `Unimplemented` saying what to
//! do instead.
//!
//! Every call but the handshake needs a valid bearer token (unless the server
//! runs `--without-auth`); writes also need a role that may write. Statement
//! tickets carry the SQL text itself, so any replica of the server can answer
//! them; the server that made a ticket also keeps its plan for a while
//! ([`super::plan_cache`]), so its DoGet does not plan the text again.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{DoPutError, FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionCreatePreparedSubstraitPlanRequest,
    ActionEndSavepointRequest, ActionEndTransactionRequest, Any, Command, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementSubstraitPlan,
    CommandStatementUpdate, DoPutPreparedStatementResult, DoPutUpdateResult, ProstMessageExt,
    SqlInfo, TableExistsOption, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest,
    HandshakeResponse, PutResult, Ticket,
};
use datafusion::dataframe::DataFrame;
use prost::Message;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use super::actions;
use super::auth::{Auth, Permission, Principal};
use super::authenticate::caller;
use super::bound_parameters::BoundParameters;
pub use super::execute::df_status;
use super::metrics::Metrics;
use super::prepared::Handle;
use super::{metadata, reason, unsupported};
use crate::ingest::{Engine, WriteContext};
use crate::{model, query};

pub use super::actions::FLUSH_ACTION;

use super::flight_data::one_batch;
pub use super::flight_data::{BoxStream, encode_batches, info_for, ingest_status};

#[derive(Clone)]
pub struct LotlineFlightSql {
    pub(super) engine: Arc<Engine>,
    /// `None`: authentication is off (`--without-auth`).
    auth: Option<Arc<Auth>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) query_options: query::QueryOptions,
    /// For clients that execute the handle they prepared, not the bound one.
    pub(super) bound: Arc<BoundParameters>,
    /// One permit per statement that may run at once (`max_concurrent`).
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    /// Queries planned by GetFlightInfo, waiting for their DoGet.
    pub(super) plans: Arc<super::plan_cache::PlanCache>,
}

impl LotlineFlightSql {
    /// A FlightInfo for a metadata command whose ticket is the command itself.
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        command: impl ProstMessageExt,
        schema: Arc<Schema>,
    ) -> Result<Response<FlightInfo>, Status> {
        caller(&request)?;
        Ok(Response::new(info_for(
            command,
            &schema,
            request.into_inner(),
        )?))
    }

    /// The empty answer to a foreign-key request.
    fn no_foreign_keys(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<BoxStream<FlightData>>, Status> {
        caller(&request)?;
        let schema = metadata::FOREIGN_KEYS_SCHEMA.clone();
        Ok(one_batch(
            schema.clone(),
            Ok(RecordBatch::new_empty(schema)),
        ))
    }

    /// Applies deployment limits to every statement's session.
    pub fn with_query_options(mut self, options: query::QueryOptions) -> Self {
        self.slots = Arc::new(tokio::sync::Semaphore::new(options.max_concurrent.max(1)));
        self.query_options = options;
        self
    }

    pub fn new(engine: Arc<Engine>, auth: Option<Arc<Auth>>, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            auth,
            metrics,
            query_options: query::QueryOptions::default(),
            bound: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(query::DEFAULT_MAX_CONCURRENT)),
            plans: Arc::default(),
        }
    }

    /// Refuses what `principal`'s role may not do, and counts the refusal.
    fn require(&self, principal: &Principal, permission: Permission<'_>) -> Result<(), Status> {
        super::actions::require(&self.metrics, "flight_sql", principal, permission)
    }

    /// The places for statements (`--max-concurrent-queries`), to share
    /// with the other doors that run statements.
    pub fn slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.slots.clone()
    }

    /// The B2MML actions (`lotline load|export --format b2mml`), or `None`
    /// for another action. A refused document is `InvalidArgument` naming
    /// the element; an accepted one answers its `ConfirmBOD`.
    async fn b2mml_action(
        &self,
        principal: &Principal,
        request: &Request<Action>,
    ) -> Result<Option<Vec<u8>>, Status> {
        let action = request.get_ref();
        if action.r#type == super::b2mml::IMPORT_ACTION {
            let who = reason::write_context(principal, "flight.b2mml", request.metadata())?;
            let answer =
                super::b2mml::import(&self.planner(), principal, who, &action.body).await?;
            return match &answer.outcome {
                Ok(_) => Ok(Some(answer.confirm_bod)),
                Err(refused) => Err(super::b2mml::refusal(refused)),
            };
        }
        if action.r#type == super::b2mml::PERFORMANCE_ACTION {
            let asked: super::b2mml::PerformanceRequest = serde_json::from_slice(&action.body)
                .map_err(|e| Status::invalid_argument(format!("{}: {e}", action.r#type)))?;
            let xml =
                super::b2mml::performance(&self.planner(), principal, &self.slots, &asked).await?;
            return Ok(Some(xml));
        }
        Ok(None)
    }

    /// Where this service's statements are planned.
    pub(super) fn planner(&self) -> super::statement::Planner {
        super::statement::Planner {
            engine: self.engine.clone(),
            options: self.query_options.clone(),
            metrics: self.metrics.clone(),
            interface: "flight_sql",
        }
    }

    /// Plans `sql` for `principal` ([`super::statement::Planner::plan`]).
    pub(super) async fn plan(
        &self,
        sql: &str,
        principal: &Principal,
        who: WriteContext,
    ) -> Result<DataFrame, Status> {
        self.planner().plan(sql, principal, who, None).await
    }
}

#[tonic::async_trait]
impl FlightSqlService for LotlineFlightSql {
    type FlightService = LotlineFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let source = request.remote_addr().map(|a| a.ip());
        super::handshake::handshake(&self.engine, self.auth.as_ref(), request.metadata(), source)
            .await
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = caller(&request)?;
        unsupported::no_transaction(&query.transaction_id)?;
        let who = reason::dml(&principal, &request)?;
        // DoGet runs the ticket's text: it carries this call's reason.
        let carried = reason::carry(&query.query, &who)?;
        let frame = self.plan(&query.query, &principal, who).await?;
        let schema = frame.schema().as_arrow().clone();
        let ticket = match self.write_now(std::slice::from_ref(&frame)).await? {
            Some(written) => written,
            // The plan waits for the DoGet that runs it (planned once).
            None => TicketStatementQuery {
                statement_handle: self.plans.keep(&principal.user, &carried, frame).into(),
            },
        };
        Ok(Response::new(info_for(
            ticket,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let principal = caller(&request)?;
        if let Some(written) = super::execute::written_result(&ticket.statement_handle) {
            let batch = written?;
            return Ok(one_batch(batch.schema(), Ok(batch)));
        }
        let (sql, kept) = self.plans.take(&ticket.statement_handle, &principal.user);
        // Metrics hook: count the query.
        let timer = self.metrics.query_started();
        let frame = match kept {
            Some(frame) => query::with_own_runtime(frame, &self.query_options),
            None => {
                let sql = std::str::from_utf8(sql)
                    .map_err(|_| Status::invalid_argument("statement handle is not UTF-8 SQL"))?;
                let who = reason::dml(&principal, &request)?;
                self.plan(sql, &principal, who).await?
            }
        };
        let schema = Arc::new(frame.schema().as_arrow().clone());
        self.stream_results(timer, schema, vec![frame]).await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = caller(&request)?;
        unsupported::no_transaction(&command.transaction_id)?;
        let who = reason::dml(&principal, &request)?;
        let frame = self.plan(&command.query, &principal, who).await?;
        self.run_updates(vec![frame]).await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = caller(&request)?;
        unsupported::no_transaction(&command.transaction_id)?;
        let who = reason::write_context(&principal, "flight_sql.ingest", request.metadata())?
            .with_request_id(reason::request_id(request.metadata())?)
            .map_err(ingest_status)?;
        let def = model::table(&command.table).ok_or_else(|| {
            Status::not_found(format!(
                "unknown table '{}' (writable tables: {})",
                command.table,
                model::writable_table_names()
            ))
        })?;
        self.require(&principal, Permission::Write { table: def.name })?;
        if command.temporary {
            return Err(Status::invalid_argument(
                "temporary tables are not supported",
            ));
        }
        let exists = command
            .table_definition_options
            .as_ref()
            .map(|o| o.if_exists());
        match exists {
            None | Some(TableExistsOption::Append) | Some(TableExistsOption::Unspecified) => {}
            Some(TableExistsOption::Fail) => {
                return Err(Status::already_exists(format!(
                    "table '{}' exists; ingest with mode 'append'",
                    def.name
                )));
            }
            Some(TableExistsOption::Replace) => {
                return Err(Status::invalid_argument(format!(
                    "replacing table '{}' is not supported; lotline tables are append-only",
                    def.name
                )));
            }
        }
        let (_, batches) = self.read_batches(request, "ingest").await?;
        let result = self.engine.write_as(&who, def, batches).await;
        self.metrics.record_write("flight_sql", def.name, &result);
        let rows = result.map_err(|e| {
            warn!("rejected ingest of {} by {}: {e}", def.name, principal.user);
            ingest_status(e)
        })?;
        Ok(rows as i64)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let mut builder = query.into_builder();
        builder.append(query::CATALOG);
        let schema = builder.schema();
        Ok(one_batch(
            schema,
            builder.build().map_err(FlightError::from),
        ))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let mut builder = query.into_builder();
        builder.append(query::CATALOG, query::SCHEMA);
        let schema = builder.schema();
        Ok(one_batch(
            schema,
            builder.build().map_err(FlightError::from),
        ))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let session = query::session_with(&self.engine, &self.query_options);
        let batch = metadata::tables(query, &session)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(one_batch(batch.schema(), Ok(batch)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let mut builder = query.into_builder();
        for table_type in metadata::TABLE_TYPES {
            builder.append(table_type);
        }
        let schema = builder.schema();
        Ok(one_batch(
            schema,
            builder.build().map_err(FlightError::from),
        ))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(metadata::sql_info()).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let builder = query.into_builder(metadata::sql_info());
        let schema = builder.schema();
        Ok(one_batch(
            schema,
            builder.build().map_err(FlightError::from),
        ))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata::PRIMARY_KEYS_SCHEMA.clone();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let batch = metadata::primary_keys(&query);
        Ok(one_batch(metadata::PRIMARY_KEYS_SCHEMA.clone(), batch))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(metadata::xdbc_types()).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        let builder = query.into_builder(metadata::xdbc_types());
        Ok(one_batch(builder.schema(), builder.build()))
    }

    // Foreign keys: lotline has none, so these answer with no rows.

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, metadata::FOREIGN_KEYS_SCHEMA.clone())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_foreign_keys(request)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, metadata::FOREIGN_KEYS_SCHEMA.clone())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_foreign_keys(request)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, metadata::FOREIGN_KEYS_SCHEMA.clone())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.no_foreign_keys(request)
    }

    // Prepared statements (src/server/prepared.rs): the handle is the statement.

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let principal = caller(&request)?;
        unsupported::no_transaction(&query.transaction_id)?;
        let who = reason::dml(&principal, &request)?;
        self.create_prepared(query.query, &principal, who).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let principal = caller(&request)?;
        // All the server may hold for a statement is what was bound to it.
        if let Ok(handle) = Handle::decode(&query.prepared_statement_handle) {
            self.bound.forget(handle.id, &principal.user);
        }
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let principal = caller(&request)?;
        self.bind_prepared_query(&query.prepared_statement_handle, request, &principal)
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = caller(&request)?;
        let who = reason::dml(&principal, &request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?.carrying(&who)?;
        let parameters = self.parameters_of(&handle, &principal);
        // Plans and binds now so that a bad statement fails here, not in DoGet.
        let (schema, frames) = self
            .bound_frames(&handle.sql, parameters.as_ref(), &principal, who)
            .await?;
        if let Some(written) = self.write_now(&frames).await? {
            return Ok(Response::new(info_for(
                written,
                &schema,
                request.into_inner(),
            )?));
        }
        // The ticket is the command: the handle holds all DoGet needs.
        let ticket = CommandPreparedStatementQuery {
            prepared_statement_handle: Handle {
                parameters,
                ..handle
            }
            .encode()?,
        };
        Ok(Response::new(info_for(
            ticket,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let principal = caller(&request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?;
        let timer = self.metrics.query_started();
        let who = reason::dml(&principal, &request)?;
        let parameters = self.parameters_of(&handle, &principal);
        let (schema, frames) = self
            .bound_frames(&handle.sql, parameters.as_ref(), &principal, who)
            .await?;
        self.stream_results(timer, schema, frames).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = caller(&request)?;
        let who = reason::prepared_update(&principal, &request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?;
        // Clients send an update's parameters with it; a handle bound by an
        // earlier DoPut serves when they send none.
        let kept = self.parameters_of(&handle, &principal);
        let rows = self.read_parameters(request).await?.or(kept);
        let (_, frames) = self
            .bound_frames(&handle.sql, rows.as_ref(), &principal, who)
            .await?;
        self.run_updates(frames).await
    }

    // Not supported: each answers Unimplemented with what to do instead.

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        caller(&request)?;
        Err(unsupported::substrait())
    }

    async fn do_put_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        caller(&request)?;
        Err(unsupported::substrait())
    }

    async fn do_action_create_prepared_substrait_plan(
        &self,
        _query: ActionCreatePreparedSubstraitPlanRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        caller(&request)?;
        Err(unsupported::substrait())
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        caller(&request)?;
        Err(unsupported::transactions())
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        caller(&request)?;
        Err(unsupported::transactions())
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        caller(&request)?;
        Err(unsupported::transactions())
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        caller(&request)?;
        Err(unsupported::transactions())
    }

    async fn do_action_cancel_query(
        &self,
        _query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        caller(&request)?;
        Ok(unsupported::cancel_query())
    }

    async fn get_flight_info_fallback(
        &self,
        command: Command,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        caller(&request)?;
        Err(unsupported::command("GetFlightInfo", &command.type_url()))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        caller(&request)?;
        Err(unsupported::command("DoGet", &message.type_url))
    }

    async fn do_put_fallback(
        &self,
        request: Request<PeekableFlightDataStream>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        caller(&request)?;
        Err(unsupported::command("DoPut", &message.type_url))
    }

    async fn do_put_error_callback(
        &self,
        request: Request<PeekableFlightDataStream>,
        error: DoPutError,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        caller(&request)?;
        match error {
            // A stream without a single message: what ADBC sends to ingest an
            // empty table. Nothing to write, and nothing went wrong.
            DoPutError::MissingCommand => {
                let result = DoPutUpdateResult { record_count: 0 };
                let put = PutResult {
                    app_metadata: result.encode_to_vec().into(),
                };
                Ok(Response::new(Box::pin(futures::stream::once(async {
                    Ok(put)
                }))))
            }
            DoPutError::MissingFlightDescriptor => Err(Status::invalid_argument(
                "the first message of a DoPut must carry a FlightDescriptor with a Flight SQL \
                 command (CommandStatementIngest, CommandStatementUpdate, \
                 CommandPreparedStatementQuery or CommandPreparedStatementUpdate)",
            )),
        }
    }

    async fn do_exchange_fallback(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<<Self as FlightService>::DoExchangeStream>, Status> {
        caller(&request)?;
        Err(unsupported::exchange())
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let mut types: Vec<Result<ActionType, Status>> =
            actions::action_types().into_iter().map(Ok).collect();
        types.push(Ok(unsupported::cancel_flight_info_type()));
        Some(types)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let principal = caller(&request)?;
        if let Some(body) = self.b2mml_action(&principal, &request).await? {
            let result = arrow_flight::Result { body: body.into() };
            return Ok(Response::new(Box::pin(futures::stream::once(async {
                Ok(result)
            }))));
        }
        let action = request.into_inner();
        let body = if action.r#type == unsupported::CANCEL_FLIGHT_INFO {
            unsupported::cancel_flight_info(&action.body)?
        } else {
            actions::run(&self.engine, self.auth.as_ref(), principal, action)
                .await
                .inspect_err(|status| {
                    if status.code() == tonic::Code::PermissionDenied {
                        warn!("{}", status.message());
                        self.metrics.rejected("flight_sql", "permission_denied");
                    }
                })?
                .into()
        };
        let result = arrow_flight::Result { body };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
