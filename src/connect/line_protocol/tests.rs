//! Unit tests of the line-protocol parser: syntax, escapes, value types,
//! precisions and the line/column of errors.

use super::*;

const NOW: i64 = 1_767_225_600_000_000_000;

fn one(line: &str) -> Point<'_> {
    let mut points = parse(line, Precision::Ns, NOW).unwrap();
    assert_eq!(points.len(), 1, "{line}");
    points.pop().unwrap()
}

fn err(body: &str) -> LineError {
    parse(body, Precision::Ns, NOW).expect_err(body)
}

fn field<'p>(p: &'p Point<'_>, key: &str) -> &'p FieldValue<'p> {
    &p.fields.iter().find(|(k, _)| k == key).expect(key).1
}

#[test]
fn telegraf_style_line() {
    let p = one("cpu,cpu=cpu0,host=plc1 usage_idle=98.5,usage_user=1.25 1767225600000000001");
    assert_eq!(p.line, 1);
    assert_eq!(p.measurement, "cpu");
    assert_eq!(
        p.tags,
        vec![
            ("cpu".into(), "cpu0".into()),
            ("host".into(), "plc1".into())
        ]
    );
    assert_eq!(*field(&p, "usage_idle"), FieldValue::Float(98.5));
    assert_eq!(*field(&p, "usage_user"), FieldValue::Float(1.25));
    assert_eq!(p.time_ns, 1_767_225_600_000_000_001);
}

#[test]
fn value_types() {
    let p =
        one(r#"m f=1,g=-2.5e3,h=.5,i=-42i,u=42u,b1=t,b2=True,b3=FALSE,b4=f,s="hi there",e="" 5"#);
    assert_eq!(*field(&p, "f"), FieldValue::Float(1.0));
    assert_eq!(*field(&p, "g"), FieldValue::Float(-2500.0));
    assert_eq!(*field(&p, "h"), FieldValue::Float(0.5));
    assert_eq!(*field(&p, "i"), FieldValue::Int(-42));
    assert_eq!(*field(&p, "u"), FieldValue::UInt(42));
    assert_eq!(*field(&p, "b1"), FieldValue::Bool(true));
    assert_eq!(*field(&p, "b2"), FieldValue::Bool(true));
    assert_eq!(*field(&p, "b3"), FieldValue::Bool(false));
    assert_eq!(*field(&p, "b4"), FieldValue::Bool(false));
    assert_eq!(*field(&p, "s"), FieldValue::Str("hi there".into()));
    assert_eq!(*field(&p, "e"), FieldValue::Str("".into()));
    assert_eq!(p.time_ns, 5);
    let big = one("m i=9223372036854775807i,u=18446744073709551615u");
    assert_eq!(*field(&big, "i"), FieldValue::Int(i64::MAX));
    assert_eq!(*field(&big, "u"), FieldValue::UInt(u64::MAX));
}

#[test]
fn escapes() {
    let p =
        one(r#"my\ meas\,ure,tag\ key=va\,l\=ue,path=C:\dir field\=k\ ey="say \"hi\" \\ \n" 1"#);
    assert_eq!(p.measurement, "my meas,ure");
    assert_eq!(p.tags[0], ("tag key".into(), "va,l=ue".into()));
    // A backslash before anything else is a literal backslash.
    assert_eq!(p.tags[1], ("path".into(), r"C:\dir".into()));
    assert_eq!(p.fields[0].0, "field=k ey");
    assert_eq!(p.fields[0].1, FieldValue::Str(r#"say "hi" \ \n"#.into()));
    // Unescaped text is borrowed, not copied.
    let plain = one("m,t=v x=\"s\"");
    assert!(matches!(plain.measurement, Cow::Borrowed(_)));
    assert!(matches!(
        plain.fields[0].1,
        FieldValue::Str(Cow::Borrowed("s"))
    ));
    // '=' in a measurement is an ordinary character; commas and spaces in strings too.
    let p = one(r#"a=b x="1, 2 3""#);
    assert_eq!(p.measurement, "a=b");
    assert_eq!(*field(&p, "x"), FieldValue::Str("1, 2 3".into()));
}

#[test]
fn several_lines_comments_blank_crlf_and_default_time() {
    let body = "# a comment\r\n\nm1 v=1 10\r\n  \n m2,a=b v=2i\nm3 s=\"two\nlines\" 30\n\n";
    let points = parse(body, Precision::Ns, NOW).unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!((points[0].line, points[0].time_ns), (3, 10));
    assert_eq!((points[1].line, points[1].time_ns), (5, NOW));
    assert_eq!(points[2].line, 6);
    assert_eq!(points[2].fields[0].1, FieldValue::Str("two\nlines".into()));
    assert!(parse("", Precision::Ns, NOW).unwrap().is_empty());
    assert!(
        parse("\n# only a comment", Precision::Ns, NOW)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn precisions() {
    for (precision, factor) in [
        (Precision::Ns, 1),
        (Precision::Us, 1_000),
        (Precision::Ms, 1_000_000),
        (Precision::S, 1_000_000_000),
    ] {
        let points = parse("m v=1 1767225600\nm v=2", precision, NOW).unwrap();
        assert_eq!(points[0].time_ns, 1_767_225_600 * factor);
        // The default time is already in nanoseconds, whatever the precision.
        assert_eq!(points[1].time_ns, NOW);
    }
    assert_eq!(Precision::from_param("ms"), Some(Precision::Ms));
    assert_eq!(Precision::from_param("h"), None);
    let e = parse("m v=1 9223372036854775", Precision::S, NOW).unwrap_err();
    assert!(e.reason.contains("out of range"), "{e}");
}

#[test]
fn errors_name_line_and_column() {
    let e = err("m v=1 1\nm v=2 2\nm v=oops 3\nm v=4 4");
    assert_eq!((e.line, e.column), (3, Some(5)));
    assert!(
        e.reason.contains("field 'v'") && e.reason.contains("oops"),
        "{e}"
    );
    assert!(e.to_string().starts_with("line 3, column 5: "), "{e}");

    let cases: &[(&str, usize, &str)] = &[
        ("m", 2, "expected a space and the field set"),
        ("m ", 3, "expected a field key"),
        (",t=1 v=1", 1, "missing measurement"),
        ("m,t v=1", 4, "tag key 't' must be followed by '='"),
        ("m,=v v=1", 3, "empty tag key"),
        ("m,t= v=1", 5, "tag 't' has an empty value"),
        ("m,t=a=b v=1", 6, "unescaped '='"),
        ("m,t=1,t=2 v=1", 7, "tag key 't' appears twice"),
        ("m v", 4, "field key 'v' must be followed by '='"),
        ("m v=", 5, "field 'v': missing value"),
        ("m v=1,", 7, "expected a field key"),
        ("m v=1,v=2", 7, "field key 'v' appears twice"),
        ("m v=\"open", 5, "no closing"),
        ("m v=1.5i", 5, "invalid value '1.5i'"),
        ("m v=99999999999999999999i", 5, "does not fit in 64 bits"),
        ("m v=-1u", 5, "is negative"),
        ("m v=NaN", 5, "invalid value 'NaN'"),
        ("m v=inf", 5, "invalid value 'inf'"),
        ("m v=1e999", 5, "out of range"),
        ("m v=yes", 5, "invalid value 'yes'"),
        ("m v=1 12x", 7, "timestamp '12x' is not an integer"),
        ("m v=1 1.5", 7, "not an integer"),
        ("m v=1 1 extra", 9, "unexpected 'e' after the timestamp"),
        ("m v=\"a\"b 1", 8, "after the field set"),
    ];
    for (body, column, reason) in cases {
        let e = err(body);
        assert_eq!(e.line, 1, "{body}: {e}");
        assert_eq!(e.column, Some(*column), "{body}: {e}");
        assert!(e.reason.contains(reason), "{body}: {e}");
    }
}

#[test]
fn error_after_multiline_string_counts_lines() {
    let e = err("m s=\"a\nb\" 1\nm v=bad");
    assert_eq!((e.line, e.column), (3, Some(5)), "{e}");
    let e = err("m v=1\nm s=\"never\nclosed");
    assert_eq!((e.line, e.column), (2, Some(5)), "{e}");
    // Found by fuzzing: a repeated key after a multi-line string value.
    let e = err("m s=\"a\nb\",s=1");
    assert_eq!((e.line, e.column), (2, Some(4)), "{e}");
    assert!(e.reason.contains("appears twice"), "{e}");
}

#[test]
fn multibyte_text_is_kept() {
    let p = one("température,ligne=Ofen\\ 1 wert=1,état=\"geöffnet ✓\"");
    assert_eq!(p.measurement, "température");
    assert_eq!(p.tags[0].1, "Ofen 1");
    assert_eq!(*field(&p, "état"), FieldValue::Str("geöffnet ✓".into()));
    let e = err("m v=1 1 ✓");
    assert!(e.reason.contains("'\\u{2713}'"), "{e}");
}

#[test]
fn influxdb_1_and_3_precisions() {
    let ts = |body: &str, precision| parse(body, precision, NOW).unwrap()[0].time_ns;
    let p1 = |v| Precision::from_v1_param(v).unwrap();
    assert_eq!(ts("m v=1 2", p1("m")), 120_000_000_000);
    assert_eq!(ts("m v=1 2", p1("h")), 7_200_000_000_000);
    assert_eq!(ts("m v=1 2", p1("u")), 2_000);
    assert_eq!(ts("m v=1 2", p1("n")), 2);
    assert!(Precision::from_v1_param("second").is_none());
    // `auto` reads the unit off each timestamp's magnitude: 2026-01-01 in
    // seconds, milliseconds, microseconds and nanoseconds is one instant.
    let auto = Precision::from_v3_param("auto").unwrap();
    for stamp in [
        "1767225600",
        "1767225600000",
        "1767225600000000",
        "1767225600000000000",
    ] {
        assert_eq!(ts(&format!("m v=1 {stamp}"), auto), NOW, "{stamp}");
    }
    assert_eq!(
        ts("m v=1 5", Precision::from_v3_param("millisecond").unwrap()),
        5_000_000
    );
    assert!(Precision::from_v3_param("h").is_none());
}
