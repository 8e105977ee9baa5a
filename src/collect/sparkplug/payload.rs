//! Sparkplug B payloads (specification 3.0, chapter 6), decoded with the
//! types generated from `proto/sparkplug_b/payload.proto`, and one metric's
//! value and quality as lotline stores them: numbers and booleans in
//! `value`, strings (and DateTime, as RFC 3339) in `text`, quality as an OPC
//! UA StatusCode.
//!
//! Quality: the metric property `Quality` (Int32) 192 GOOD → Good (0),
//! 0 BAD → Bad (0x80000000), 500 STALE → UncertainLastUsableValue
//! (0x40900000), any other code → Uncertain (0x40000000); no property is
//! GOOD. `is_null` stores no value, with quality Bad unless the metric says
//! otherwise.

/// The messages generated from `proto/sparkplug_b/payload.proto`.
mod generated {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/org.eclipse.tahu.protobuf.rs"));
}

pub use generated::{Payload, payload};

use payload::Metric;
use payload::metric::Value;

/// OPC UA StatusCodes a Sparkplug quality becomes.
pub const GOOD: u32 = 0;
pub const BAD: u32 = 0x8000_0000;
pub const UNCERTAIN: u32 = 0x4000_0000;
pub const UNCERTAIN_LAST_USABLE_VALUE: u32 = 0x4090_0000;

/// Sparkplug B data types (the `datatype` field) that lotline stores.
pub mod datatype {
    pub const INT8: u32 = 1;
    pub const INT16: u32 = 2;
    pub const INT32: u32 = 3;
    pub const INT64: u32 = 4;
    pub const UINT8: u32 = 5;
    pub const UINT16: u32 = 6;
    pub const UINT32: u32 = 7;
    pub const UINT64: u32 = 8;
    pub const FLOAT: u32 = 9;
    pub const DOUBLE: u32 = 10;
    pub const BOOLEAN: u32 = 11;
    pub const STRING: u32 = 12;
    pub const DATE_TIME: u32 = 13;
    pub const TEXT: u32 = 14;
    pub const UUID: u32 = 15;
}

/// One metric's value as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub value: Option<f64>,
    pub text: Option<String>,
    pub quality: u32,
}

/// Why a metric is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unstorable {
    #[error("data type {0} is not stored (arrays, data sets, templates, bytes and files are not)")]
    DataType(u32),
    #[error("no value for data type {0}")]
    NoValue(u32),
}

/// The value and quality of `metric`, whose data type is `datatype` (from
/// the metric itself in a birth, from the birth for an alias).
pub fn decode(metric: &Metric, datatype: u32) -> Result<Decoded, Unstorable> {
    use datatype::*;
    let quality = quality(metric);
    if metric.is_null() {
        return Ok(Decoded {
            value: None,
            text: None,
            quality: if quality == GOOD { BAD } else { quality },
        });
    }
    // Integers may come in either integer field (Tahu's Java encoder puts
    // UInt32 in long_value); signed ones are the low bits in two's
    // complement, whichever width the encoder sign-extended to.
    let integer = match &metric.value {
        Some(Value::IntValue(v)) => Some(u64::from(*v)),
        Some(Value::LongValue(v)) => Some(*v),
        _ => None,
    };
    let number = |n: Option<f64>| {
        n.map(|v| Decoded {
            value: Some(v),
            text: None,
            quality,
        })
        .ok_or(Unstorable::NoValue(datatype))
    };
    let text = |t: Option<String>| {
        t.map(|t| Decoded {
            value: None,
            text: Some(t),
            quality,
        })
        .ok_or(Unstorable::NoValue(datatype))
    };
    match datatype {
        INT8 => number(integer.map(|v| f64::from(v as u8 as i8))),
        INT16 => number(integer.map(|v| f64::from(v as u16 as i16))),
        INT32 => number(integer.map(|v| f64::from(v as u32 as i32))),
        INT64 => number(integer.map(|v| v as i64 as f64)),
        UINT8 => number(integer.map(|v| f64::from(v as u8))),
        UINT16 => number(integer.map(|v| f64::from(v as u16))),
        UINT32 => number(integer.map(|v| f64::from(v as u32))),
        UINT64 => number(integer.map(|v| v as f64)),
        FLOAT => number(match metric.value {
            Some(Value::FloatValue(v)) => Some(f64::from(v)),
            _ => None,
        }),
        DOUBLE => number(match metric.value {
            Some(Value::DoubleValue(v)) => Some(v),
            _ => None,
        }),
        BOOLEAN => number(match metric.value {
            Some(Value::BooleanValue(b)) => Some(f64::from(u8::from(b))),
            _ => None,
        }),
        STRING | TEXT | UUID => text(match &metric.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        }),
        DATE_TIME => text(
            integer
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        ),
        other => Err(Unstorable::DataType(other)),
    }
}

/// The metric's `Quality` property as an OPC UA StatusCode.
pub fn quality(metric: &Metric) -> u32 {
    let Some(code) = property(metric, "Quality").and_then(|v| match v.value {
        Some(payload::property_value::Value::IntValue(v)) => Some(i64::from(v as i32)),
        Some(payload::property_value::Value::LongValue(v)) => Some(v as i64),
        _ => None,
    }) else {
        return GOOD;
    };
    match code {
        192 => GOOD,
        0 => BAD,
        500 => UNCERTAIN_LAST_USABLE_VALUE,
        _ => UNCERTAIN,
    }
}

/// The engineering unit a birth gives a metric (property `engUnit`, as the
/// Eclipse Tahu examples name it; the specification names none).
pub fn unit(metric: &Metric) -> Option<String> {
    match &property(metric, "engUnit")?.value {
        Some(payload::property_value::Value::StringValue(unit)) if !unit.is_empty() => {
            Some(unit.clone())
        }
        _ => None,
    }
}

fn property<'a>(metric: &'a Metric, key: &str) -> Option<&'a payload::PropertyValue> {
    let set = metric.properties.as_ref()?;
    let index = set.keys.iter().position(|k| k == key)?;
    set.values.get(index)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::datatype::*;
    use super::*;

    pub fn metric(datatype: u32, value: Value) -> Metric {
        Metric {
            name: Some("Temperature".into()),
            datatype: Some(datatype),
            value: Some(value),
            ..Default::default()
        }
    }

    pub fn with_property(
        mut metric: Metric,
        key: &str,
        value: payload::property_value::Value,
    ) -> Metric {
        let set = metric.properties.get_or_insert_with(Default::default);
        set.keys.push(key.into());
        set.values.push(payload::PropertyValue {
            r#type: Some(INT32),
            value: Some(value),
            ..Default::default()
        });
        metric
    }

    fn value(metric: &Metric) -> Option<f64> {
        decode(metric, metric.datatype.unwrap()).unwrap().value
    }

    #[test]
    fn every_scalar_type_decodes_as_encoders_send_it() {
        // -1 as pysparkplug sends it (width bits) and as Tahu's Java encoder
        // does (sign-extended to 32 bits).
        assert_eq!(value(&metric(INT8, Value::IntValue(255))), Some(-1.0));
        assert_eq!(value(&metric(INT8, Value::IntValue(u32::MAX))), Some(-1.0));
        assert_eq!(value(&metric(INT16, Value::IntValue(0xFFFE))), Some(-2.0));
        assert_eq!(
            value(&metric(INT32, Value::IntValue(u32::MAX - 4))),
            Some(-5.0)
        );
        assert_eq!(
            value(&metric(INT64, Value::LongValue(u64::MAX))),
            Some(-1.0)
        );
        // UInt32 in either field.
        assert_eq!(
            value(&metric(UINT32, Value::LongValue(4_000_000_000))),
            Some(4e9)
        );
        assert_eq!(
            value(&metric(UINT32, Value::IntValue(4_000_000_000))),
            Some(4e9)
        );
        assert_eq!(
            value(&metric(UINT64, Value::LongValue(1 << 40))),
            Some((1u64 << 40) as f64)
        );
        assert_eq!(value(&metric(FLOAT, Value::FloatValue(21.5))), Some(21.5));
        assert_eq!(value(&metric(DOUBLE, Value::DoubleValue(0.1))), Some(0.1));
        assert_eq!(
            value(&metric(BOOLEAN, Value::BooleanValue(true))),
            Some(1.0)
        );
        let text = decode(
            &metric(STRING, Value::StringValue("RUNNING".into())),
            STRING,
        )
        .unwrap();
        assert_eq!((text.value, text.text.as_deref()), (None, Some("RUNNING")));
        let when = decode(
            &metric(DATE_TIME, Value::LongValue(1_764_662_400_123)),
            DATE_TIME,
        )
        .unwrap();
        assert_eq!(when.text.as_deref(), Some("2025-12-02T08:00:00.123Z"));
    }

    #[test]
    fn what_cannot_be_stored_says_why() {
        let bytes = metric(17, Value::BytesValue(vec![1, 2]));
        assert_eq!(decode(&bytes, 17), Err(Unstorable::DataType(17)));
        let wrong = metric(FLOAT, Value::StringValue("x".into()));
        assert_eq!(decode(&wrong, FLOAT), Err(Unstorable::NoValue(FLOAT)));
    }

    #[test]
    fn quality_and_null_become_status_codes() {
        use payload::property_value::Value as P;
        let plain = metric(DOUBLE, Value::DoubleValue(1.0));
        assert_eq!(quality(&plain), GOOD);
        assert_eq!(
            quality(&with_property(plain.clone(), "Quality", P::IntValue(192))),
            GOOD
        );
        assert_eq!(
            quality(&with_property(plain.clone(), "Quality", P::IntValue(0))),
            BAD
        );
        let stale = with_property(plain.clone(), "Quality", P::IntValue(500));
        assert_eq!(quality(&stale), UNCERTAIN_LAST_USABLE_VALUE);
        assert_eq!(
            quality(&with_property(plain.clone(), "Quality", P::IntValue(7))),
            UNCERTAIN
        );
        let mut null = plain.clone();
        null.is_null = Some(true);
        null.value = None;
        assert_eq!(
            decode(&null, DOUBLE).unwrap(),
            Decoded {
                value: None,
                text: None,
                quality: BAD
            }
        );
        let unit = with_property(plain, "engUnit", P::StringValue("degC".into()));
        assert_eq!(super::unit(&unit).as_deref(), Some("degC"));
    }
}
