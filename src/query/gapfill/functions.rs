//! The SQL functions of gap filling: `date_bin_gapfill(interval, ts [, origin])`,
//! `locf(aggregate)` and `interpolate(aggregate)`.
//!
//! None of them computes anything: they are markers that the analyzer rule in
//! [`super::rule`] rewrites into a `GapFill` node (and `date_bin_gapfill` into
//! DataFusion's `date_bin`). They exist as UDFs so that the SQL planner
//! resolves and type-checks them like any function. Reaching `invoke` means
//! the rule could not place the call, which it reports before execution.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub const DATE_BIN_GAPFILL: &str = "date_bin_gapfill";
pub const LOCF: &str = "locf";
pub const INTERPOLATE: &str = "interpolate";

/// `date_bin_gapfill(interval, ts [, origin])`: `date_bin` whose buckets are
/// completed by a `GapFill` node. Same arguments and type as `date_bin`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateBinGapfill {
    signature: Signature,
}

impl Default for DateBinGapfill {
    fn default() -> Self {
        // date_bin's own signature, so both coerce their arguments alike and
        // the rewrite can hand the coerced arguments to date_bin unchanged.
        let date_bin = datafusion::functions::datetime::date_bin();
        Self {
            signature: date_bin.signature().clone(),
        }
    }
}

impl ScalarUDFImpl for DateBinGapfill {
    fn name(&self) -> &str {
        DATE_BIN_GAPFILL
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.get(1) {
            Some(time @ DataType::Timestamp(_, _)) => Ok(time.clone()),
            other => plan_err!(
                "date_bin_gapfill(interval, ts [, origin]) needs a timestamp column as its \
                 second argument, got {other:?}"
            ),
        }
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "date_bin_gapfill can only be used as a GROUP BY expression of an aggregate query"
        )
    }
}

/// How a fill function completes an aggregate column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum FillStrategy {
    /// Every missing (or null) bucket takes the last non-null value before it.
    Locf,
    /// Missing (or null) buckets between two non-null ones lie on the line
    /// through them; buckets before the first or after the last stay null.
    Interpolate,
}

impl FillStrategy {
    pub fn function_name(self) -> &'static str {
        match self {
            FillStrategy::Locf => LOCF,
            FillStrategy::Interpolate => INTERPOLATE,
        }
    }

    pub fn from_function_name(name: &str) -> Option<Self> {
        match name {
            LOCF => Some(FillStrategy::Locf),
            INTERPOLATE => Some(FillStrategy::Interpolate),
            _ => None,
        }
    }
}

/// `locf(aggregate)` or `interpolate(aggregate)`: returns its argument's type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FillFunction {
    strategy: FillStrategy,
    signature: Signature,
}

impl FillFunction {
    pub fn new(strategy: FillStrategy) -> Self {
        Self {
            strategy,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FillFunction {
    fn name(&self) -> &str {
        self.strategy.function_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "{}() can only be used on an aggregate in the SELECT list of a query that \
             groups by date_bin_gapfill(interval, ts)",
            self.name()
        )
    }
}

/// The three functions, for registration in a session.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(DateBinGapfill::default())),
        Arc::new(ScalarUDF::from(FillFunction::new(FillStrategy::Locf))),
        Arc::new(ScalarUDF::from(FillFunction::new(
            FillStrategy::Interpolate,
        ))),
    ]
}

/// Which of our marker functions `func` is, if any.
pub enum Marker {
    DateBinGapfill,
    Fill(FillStrategy),
}

pub fn marker_of(func: &ScalarUDF) -> Option<Marker> {
    let inner = func.inner();
    if inner.is::<DateBinGapfill>() {
        Some(Marker::DateBinGapfill)
    } else {
        inner
            .downcast_ref::<FillFunction>()
            .map(|fill| Marker::Fill(fill.strategy))
    }
}
