//! gRPC `lotline.v1` write requests mapped onto the `samples` table. Pure
//! translation, no checks (the write path validates); the fuzz target
//! `grpc_messages` compiles this file as it is, with the generated types.

use arrow::array::RecordBatch;

use crate::model::{SampleRow, SampleRows};
use crate::proto::{Context, WriteRequest};

/// Maps one request's samples to a `samples` batch; a sample's context
/// fields override the request's, one by one. Nothing is checked here: the
/// write path validates (empty tag, ts before 1970, NaN with Good quality).
pub fn to_samples(request: &WriteRequest) -> RecordBatch {
    let defaults = context_fields(request.context.as_ref());
    let mut rows = SampleRows::with_capacity(request.samples.len());
    for sample in &request.samples {
        let own = context_fields(sample.context.as_ref());
        let mut context = defaults;
        for (field, value) in context.iter_mut().zip(own) {
            if value.is_some() {
                *field = value;
            }
        }
        rows.push(SampleRow {
            tag: &sample.tag,
            ts_ns: sample.ts_ns,
            value: sample.value,
            text: sample.text.as_deref(),
            quality: sample.quality,
            context,
        });
    }
    rows.finish()
}

/// `equipment`, `work_order`, `lot` of a context, in [`crate::model::CONTEXT_COLUMNS`] order.
fn context_fields(context: Option<&Context>) -> [Option<&str>; 3] {
    context.map_or([None; 3], |c| {
        [
            c.equipment.as_deref(),
            c.work_order.as_deref(),
            c.lot.as_deref(),
        ]
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt32Type};

    use super::*;
    use crate::model;
    use crate::proto::Sample;

    fn context(equipment: Option<&str>, lot: Option<&str>) -> Option<Context> {
        Some(Context {
            equipment: equipment.map(str::to_string),
            work_order: None,
            lot: lot.map(str::to_string),
        })
    }

    #[test]
    fn samples_map_to_rows_with_context_defaults() {
        let request = WriteRequest {
            context: context(Some("line1.oven"), Some("L-1")),
            samples: vec![
                Sample {
                    tag: "oven.temp".into(),
                    ts_ns: 7,
                    value: Some(198.5),
                    ..Default::default()
                },
                Sample {
                    tag: "oven.state".into(),
                    ts_ns: 8,
                    text: Some("heating".into()),
                    quality: 0x4000_0000,
                    context: context(None, Some("L-2")),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let batch = to_samples(&request);
        assert_eq!(batch.schema(), model::samples().schema);
        let strings = |name: &str| -> Vec<Option<String>> {
            let column = batch.column_by_name(name).unwrap().as_string::<i32>();
            column.iter().map(|v| v.map(str::to_string)).collect()
        };
        assert_eq!(
            strings("equipment"),
            [Some("line1.oven".into()), Some("line1.oven".into())]
        );
        assert_eq!(strings("lot"), [Some("L-1".into()), Some("L-2".into())]);
        assert_eq!(strings("work_order"), [None, None]);
        assert_eq!(strings("text"), [None, Some("heating".into())]);
        let value = batch.column(2).as_primitive::<Float64Type>();
        assert!(value.value(0) == 198.5 && value.is_null(1));
        let quality = batch.column(4).as_primitive::<UInt32Type>();
        assert_eq!(quality.values().to_vec(), [0, 0x4000_0000]);
    }
}
