//! Table functions whose arguments are bound parameters:
//! `history_interpolated(?, ?, ?, ?)`. DataFusion calls a table function while
//! it plans, before any value is bound, so the function would see `$1` where
//! it needs a tag list or a time. [`Parameterized`] wraps a table function:
//! called with a placeholder among its arguments, it answers with a table of
//! the function's result schema that refuses to be scanned. That is enough to
//! prepare the statement (its result schema and parameter count). To run it,
//! the server plans again in a session that holds one row of bound values
//! ([`bind_arguments`]): the wrapper writes them into the arguments, folds
//! them to literals and calls the function, which sees literals as always.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ParamValues, Result as DfResult, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;

/// A table function that tolerates placeholders in its arguments at prepare time.
#[derive(Debug)]
pub struct Parameterized {
    name: &'static str,
    schema: SchemaRef,
    inner: Arc<dyn TableFunctionImpl>,
}

impl Parameterized {
    /// `schema` is what `inner` returns whatever its arguments.
    pub fn wrap(
        name: &'static str,
        schema: SchemaRef,
        inner: Arc<dyn TableFunctionImpl>,
    ) -> Arc<dyn TableFunctionImpl> {
        Arc::new(Self {
            name,
            schema,
            inner,
        })
    }
}

/// Whether `expr` holds a placeholder (`$1`, `?` once numbered).
pub fn has_placeholder(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))
        .unwrap_or(false)
}

/// One row of bound parameter values, kept in a session's config.
#[derive(Debug)]
struct BoundArguments(ParamValues);

/// The placeholders met in table-function arguments while a session planned,
/// kept in its config: they are parameters of the statement that the plan
/// itself no longer shows.
#[derive(Debug, Default)]
pub struct ArgumentPlaceholders(Mutex<BTreeSet<String>>);

impl ArgumentPlaceholders {
    /// The ids (`$1`, `$lot`) met so far, sorted.
    pub fn ids(config: &SessionConfig) -> Vec<String> {
        config
            .get_extension::<Self>()
            .map(|seen| {
                seen.0
                    .lock()
                    .expect("not poisoned")
                    .iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(config: &SessionConfig, args: &[Expr]) {
        let Some(seen) = config.get_extension::<Self>() else {
            return;
        };
        let mut seen = seen.0.lock().expect("not poisoned");
        for arg in args {
            let _ = arg.apply(|e| {
                if let Expr::Placeholder(p) = e {
                    seen.insert(p.id.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
    }
}

/// Table functions that `ctx` plans from now on take their placeholder
/// arguments from `values`.
pub fn bind_arguments(ctx: &SessionContext, values: ParamValues) {
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(BoundArguments(values)));
}

impl TableFunctionImpl for Parameterized {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        if !args.exprs().iter().any(has_placeholder) {
            return self.inner.call_with_args(args);
        }
        let session = args.session();
        let Some(bound) = session.config().get_extension::<BoundArguments>() else {
            ArgumentPlaceholders::record(session.config(), args.exprs());
            return Ok(Arc::new(Unbound {
                name: self.name,
                schema: self.schema.clone(),
            }));
        };
        // Folded as DataFusion folds arguments: `CAST(? AS TIMESTAMP)` too.
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_config_options(Arc::clone(session.config().options()))
                .build(),
        );
        let exprs = args
            .exprs()
            .iter()
            .map(|arg| {
                let bound = arg
                    .clone()
                    .transform(|e| match e {
                        Expr::Placeholder(p) => {
                            let value = bound.0.get_placeholders_with_values(&p.id)?;
                            Ok(Transformed::yes(Expr::Literal(value.value, None)))
                        }
                        other => Ok(Transformed::no(other)),
                    })?
                    .data;
                let coerced = simplifier.coerce(bound, &DFSchema::empty())?;
                simplifier.simplify(coerced)
            })
            .collect::<DfResult<Vec<_>>>()?;
        self.inner
            .call_with_args(TableFunctionArgs::new(&exprs, session))
    }
}

/// The result of a table function whose arguments are not bound yet.
#[derive(Debug)]
struct Unbound {
    name: &'static str,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for Unbound {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan_err!(
            "{}: an argument is a parameter that was never bound; prepare the statement and \
             bind its parameters, or write the value into the SQL",
            self.name
        )
    }
}
