//! Planning one SQL statement for an authenticated caller: the one place
//! where every interface that takes SQL (Flight SQL statements and prepared
//! statements, the web console's API) turns text into a plan, so roles
//! apply to a statement exactly alike whichever door it came through.
//!
//! When [`plan`] returns `Ok`, the statement parsed, is not DDL, not a
//! session statement, not `COPY ... TO`, and every table it would write
//! (subqueries included) is one the caller's role may write. Nothing has run
//! yet: executing the frame is the caller's business.

use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;
use tonic::Status;

use super::auth::{Permission, Principal};
use super::execute::{Writes, df_status};
use super::metrics::Metrics;
use super::{actions, reason};
use crate::ingest::{Engine, WriteContext};
use crate::query;

/// Where a statement is planned: the engine, the deployment's query limits
/// and the metrics its refusals are counted in, under `interface`.
#[derive(Clone)]
pub struct Planner {
    pub engine: Arc<Engine>,
    pub options: query::QueryOptions,
    pub metrics: Arc<Metrics>,
    pub interface: &'static str,
}

impl Planner {
    /// Plans `sql` in a fresh session for `principal`; `who` writes what the
    /// statement writes, with its `SET lotline.reason` prefix if any
    /// ([`reason::writer`]). Table functions take the placeholders in their
    /// arguments from `arguments` ([`query::parameterized`]).
    pub async fn plan(
        &self,
        sql: &str,
        principal: &Principal,
        who: WriteContext,
        arguments: Option<ParamValues>,
    ) -> Result<DataFrame, Status> {
        let (who, sql) = reason::writer(sql, who)?;
        self.metrics.planned();
        let ctx = query::session_with(&self.engine, &self.options);
        query::sink::set_write_context(&ctx, who);
        if let Some(values) = arguments {
            query::parameterized::bind_arguments(&ctx, values);
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_statements(false);
        let frame = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(df_status)
            // Metrics hook: statements that fail to plan, counted once here.
            .inspect_err(|status| self.metrics.query_failed(status))?;
        let writes = Writes::of(frame.logical_plan());
        if writes.copies {
            self.metrics.rejected(self.interface, "permission_denied");
            return Err(Status::permission_denied(
                "COPY ... TO writes files on the server's disk, which lotline allows no one; \
                 fetch the query's result with the client instead",
            ));
        }
        for table in &writes.tables {
            actions::require(
                &self.metrics,
                self.interface,
                principal,
                Permission::Write { table },
            )?;
        }
        Ok(frame)
    }
}
