//! `quality_class(quality)`: the OPC UA StatusCode severity of a sample as
//! 'good', 'uncertain' or 'bad' (the two top bits: 00, 01, 1x).

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{DataType, UInt32Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QualityClass {
    signature: Signature,
}

impl Default for QualityClass {
    fn default() -> Self {
        Self {
            signature: Signature::uniform(1, vec![DataType::UInt32], Volatility::Immutable),
        }
    }
}

/// Severity name of a StatusCode.
pub fn class_of(quality: u32) -> &'static str {
    match quality >> 30 {
        0 => "good",
        1 => "uncertain",
        _ => "bad",
    }
}

impl ScalarUDFImpl for QualityClass {
    fn name(&self) -> &str {
        "quality_class"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::UInt32(q)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(q.map(|q| class_of(q).to_string())),
            )),
            ColumnarValue::Array(array) => {
                let codes = array.as_primitive::<UInt32Type>();
                let classes: StringArray = (0..codes.len())
                    .map(|i| codes.is_valid(i).then(|| class_of(codes.value(i))))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(classes)))
            }
            other => exec_err!("quality_class expects a UInt32 StatusCode, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::class_of;

    #[test]
    fn severity_bits() {
        assert_eq!(class_of(0), "good");
        assert_eq!(class_of(0x0000_0400), "good");
        assert_eq!(class_of(0x4090_0000), "uncertain");
        assert_eq!(class_of(0x809B_0000), "bad");
        assert_eq!(class_of(0xC000_0000), "bad");
    }
}
