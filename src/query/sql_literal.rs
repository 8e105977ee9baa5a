//! Values written into SQL text that lotline builds itself (the historian
//! functions' inner queries, the web console's API, the benchmarks): a
//! string stays one literal whatever it holds, a time keeps its
//! nanoseconds. lotline's SQL dialect takes backslashes literally, so
//! doubling the quotes is the whole of the escaping.

use chrono::{DateTime, SecondsFormat};

/// `text` as one SQL string literal.
pub fn string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Texts as a parenthesised list of string literals (`('a', 'b')`), for `IN`.
pub fn strings<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = texts.into_iter().map(string).collect();
    format!("({})", items.join(", "))
}

/// A time in nanoseconds since 1970 as a timestamp literal (UTC).
pub fn timestamp(ns: i64) -> String {
    let text = DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true);
    format!("TIMESTAMP '{text}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_keep_quotes_inside_one_value() {
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(string("a\\"), "'a\\'");
        assert_eq!(strings(["a", "b'"]), "('a', 'b''')");
        assert_eq!(
            timestamp(1_500_000_001),
            "TIMESTAMP '1970-01-01T00:00:01.500000001Z'"
        );
        assert_eq!(timestamp(1_000_000_000), "TIMESTAMP '1970-01-01T00:00:01Z'");
    }
}
