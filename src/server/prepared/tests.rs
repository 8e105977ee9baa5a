//! Unit tests of prepared statements: placeholder numbering, handles,
//! binding and its casts.

use super::*;
use arrow::array::{Float64Array, Int64Array, StringArray};

#[test]
fn question_marks_are_numbered_in_order_outside_strings() {
    let sql = "SELECT '?' AS q, \"a?\" FROM t -- ?\nWHERE tag = ? AND\n  ts >= ? AND x = ?3";
    assert_eq!(
        number_question_marks(sql).unwrap(),
        "SELECT '?' AS q, \"a?\" FROM t -- ?\nWHERE tag = $1 AND\n  ts >= $2 AND x = $3"
    );
    assert!(matches!(
        number_question_marks("SELECT 1").unwrap(),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        number_question_marks("SELECT ? + $1"),
        Err(PreparedError::MixedPlaceholders(_))
    ));
    // Multi-byte characters before a mark: columns count characters.
    assert_eq!(
        number_question_marks("SELECT 'é' = ?").unwrap(),
        "SELECT 'é' = $1"
    );
}

#[test]
fn handle_round_trips_with_and_without_parameters() {
    let bare = Handle {
        sql: "SELECT 1".into(),
        parameters: None,
        id: 0,
    };
    assert_eq!(Handle::decode(&bare.encode().unwrap()).unwrap(), bare);
    let batch = RecordBatch::try_from_iter([
        ("0", Arc::new(StringArray::from(vec!["a", "b"])) as _),
        ("1", Arc::new(Int64Array::from(vec![1, 2])) as _),
    ])
    .unwrap();
    let bound = Handle {
        sql: "SELECT $1, $2".into(),
        parameters: Some(batch),
        id: u128::MAX - 7,
    };
    assert_eq!(Handle::decode(&bound.encode().unwrap()).unwrap(), bound);
    assert!(matches!(
        Handle::decode(b"SELECT 1"),
        Err(HandleError::BadHandle(_))
    ));
}

fn positional(types: Vec<Option<DataType>>) -> Parameters {
    Parameters {
        ids: (1..=types.len()).map(|n| format!("${n}")).collect(),
        types,
        named: false,
        replan: false,
    }
}

#[test]
fn binding_casts_to_the_inferred_types_and_names_what_fails() {
    let params = positional(vec![Some(DataType::Float64), None]);
    let batch = RecordBatch::try_from_iter([
        ("0", Arc::new(Int64Array::from(vec![7, 8])) as _),
        ("1", Arc::new(StringArray::from(vec!["x", "y"])) as _),
    ])
    .unwrap();
    let rows = params.bind(&batch).unwrap();
    assert_eq!(rows.len(), 2);
    let ParamValues::List(first) = &rows[1] else {
        panic!("positional")
    };
    assert_eq!(first[0].value, ScalarValue::Float64(Some(8.0)));
    assert_eq!(first[1].value, ScalarValue::Utf8(Some("y".into())));

    let words = RecordBatch::try_from_iter([
        ("0", Arc::new(StringArray::from(vec!["hot"])) as _),
        ("1", Arc::new(Float64Array::from(vec![1.0])) as _),
    ])
    .unwrap();
    let err = params.bind(&words).unwrap_err().to_string();
    assert!(err.contains("$1") && err.contains("Float64"), "{err}");

    let one =
        RecordBatch::try_from_iter([("0", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
    let err = params.bind(&one).unwrap_err().to_string();
    assert!(
        err.contains("2 parameter(s) ($1, $2)") && err.contains("1 column"),
        "{err}"
    );
}

#[test]
fn a_cast_that_changes_the_value_is_refused() {
    let params = positional(vec![Some(DataType::Int64), Some(DataType::UInt32)]);
    let exact = RecordBatch::try_from_iter([
        ("0", Arc::new(Float64Array::from(vec![2.0, 1e15])) as _),
        ("1", Arc::new(Int64Array::from(vec![192, 0])) as _),
    ])
    .unwrap();
    assert_eq!(params.bind(&exact).unwrap().len(), 2);
    let fraction = RecordBatch::try_from_iter([
        ("0", Arc::new(Float64Array::from(vec![2.0, 1.25])) as _),
        ("1", Arc::new(Int64Array::from(vec![192, 0])) as _),
    ])
    .unwrap();
    let err = params.bind(&fraction).unwrap_err().to_string();
    assert!(
        err.contains("$1") && err.contains("1.25") && err.contains("would become 1"),
        "{err}"
    );
    let double = positional(vec![Some(DataType::Float64)]);
    let huge =
        RecordBatch::try_from_iter([("0", Arc::new(Int64Array::from(vec![(1 << 53) + 1])) as _)])
            .unwrap();
    assert!(double.bind(&huge).is_err(), "2^53 + 1 is not a double");
    let real = positional(vec![Some(DataType::Float32)]);
    let tenth =
        RecordBatch::try_from_iter([("0", Arc::new(Float64Array::from(vec![0.1])) as _)]).unwrap();
    assert!(real.bind(&tenth).is_ok(), "floats round to the nearest");
}

#[test]
fn named_parameters_bind_by_column_name() {
    let params = Parameters {
        ids: vec!["$lot".into(), "$tag".into()],
        replan: false,
        types: vec![Some(DataType::Utf8), Some(DataType::Utf8)],
        named: true,
    };
    let batch = RecordBatch::try_from_iter([
        ("tag", Arc::new(StringArray::from(vec!["t1"])) as _),
        ("lot", Arc::new(StringArray::from(vec!["L-1"])) as _),
    ])
    .unwrap();
    let rows = params.bind(&batch).unwrap();
    let ParamValues::Map(values) = &rows[0] else {
        panic!("named")
    };
    assert_eq!(values["lot"].value, ScalarValue::Utf8(Some("L-1".into())));
    assert_eq!(values["tag"].value, ScalarValue::Utf8(Some("t1".into())));
    let missing =
        RecordBatch::try_from_iter([("tag", Arc::new(StringArray::from(vec!["t1"])) as _)])
            .unwrap();
    assert!(matches!(
        params.bind(&missing),
        Err(PreparedError::MissingNamed { name }) if name == "$lot"
    ));
}
