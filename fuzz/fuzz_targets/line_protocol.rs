//! Fuzzes the InfluxDB line-protocol parser (`src/connect/line_protocol.rs`,
//! the very file the server compiles).
//!
//! Beyond "never panics", every accepted body must survive a round trip:
//! the points, written back as line protocol with lotline's escaping rules,
//! parse to the same points. Every refusal must name a line of the body.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/connect/line_protocol.rs"]
#[allow(dead_code)]
mod line_protocol;

use line_protocol::{FieldValue, Point, Precision, parse};

const DEFAULT_TIME: i64 = 1_767_225_600_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let lines = body.split('\n').count();
    match parse(body, Precision::Ns, DEFAULT_TIME) {
        Ok(points) => {
            let mut previous_line = 0;
            for p in &points {
                assert!(p.line > previous_line && p.line <= lines, "{p:?}");
                previous_line = p.line;
                assert!(!p.measurement.is_empty() && !p.fields.is_empty(), "{p:?}");
                for (_, v) in &p.fields {
                    if let FieldValue::Float(f) = v {
                        assert!(f.is_finite(), "{p:?}");
                    }
                }
            }
            let text = encode(&points);
            let again = parse(&text, Precision::Ns, 0)
                .unwrap_or_else(|e| panic!("re-encoded body refused: {e}\n{text}"));
            assert_eq!(without_lines(points), without_lines(again), "\n{text}");
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "{e:?}");
            assert!(e.column.is_none_or(|c| c >= 1), "{e:?}");
            assert!(e.to_string().starts_with(&format!("line {}", e.line)));
        }
    }
    // Coarser precisions scale timestamps or refuse them; never panic.
    let _ = parse(body, Precision::S, DEFAULT_TIME);
});

fn without_lines(mut points: Vec<Point<'_>>) -> Vec<Point<'_>> {
    for p in &mut points {
        p.line = 0;
    }
    points
}

fn escape(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Writes points as line protocol, one per line, timestamps in nanoseconds.
fn encode(points: &[Point<'_>]) -> String {
    let mut out = String::new();
    for p in points {
        escape(&mut out, &p.measurement, &[',', ' ']);
        for (k, v) in &p.tags {
            out.push(',');
            escape(&mut out, k, &[',', '=', ' ']);
            out.push('=');
            escape(&mut out, v, &[',', '=', ' ']);
        }
        out.push(' ');
        for (i, (k, v)) in p.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escape(&mut out, k, &[',', '=', ' ']);
            out.push('=');
            match v {
                FieldValue::Float(f) => out.push_str(&format!("{f:?}")),
                FieldValue::Int(i) => out.push_str(&format!("{i}i")),
                FieldValue::UInt(u) => out.push_str(&format!("{u}u")),
                FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                FieldValue::Str(s) => {
                    out.push('"');
                    escape(&mut out, s, &['"', '\\']);
                    out.push('"');
                }
            }
        }
        out.push_str(&format!(" {}\n", p.time_ns));
    }
    out
}
