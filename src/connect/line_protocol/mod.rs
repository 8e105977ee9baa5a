//! InfluxDB line protocol, as Telegraf, Node-RED and PLC gateways send it:
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! [`parse`] is a pure function from a request body to [`Point`]s; it stops at
//! the first bad line and says where (line, byte column) and why, so a request
//! is accepted whole or rejected whole. It follows InfluxDB's own parser:
//!
//! - measurement: `\,` and `\ ` are escapes; tag keys, tag values and field
//!   keys: `\,`, `\=` and `\ `; any other backslash is a literal backslash;
//! - field values: floats (`1`, `-1.5`, `2e-3`), integers `1i`, unsigned
//!   integers `1u`, booleans `t T true True TRUE f F false False FALSE`, and
//!   double-quoted strings where `\"` and `\\` are escapes (a string may span
//!   lines); NaN and infinities are refused, as InfluxDB does;
//! - the timestamp is optional (the caller's default time is used) and is an
//!   integer in the request's [`Precision`];
//! - blank lines and lines starting with `#` are skipped; `\r\n` line ends
//!   are accepted.

use std::borrow::Cow;

/// Unit of the timestamps in a request (`?precision=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
    /// Minutes (InfluxDB 1's `m`).
    M,
    /// Hours (InfluxDB 1's `h`).
    H,
    /// Each timestamp's unit told from its magnitude, as InfluxDB 3's
    /// `precision=auto` does: below 5·10⁹ seconds, below 5·10¹² milliseconds,
    /// below 5·10¹⁵ microseconds, else nanoseconds.
    Auto,
}

impl Precision {
    /// InfluxDB 2's `precision` values (`/api/v2/write`): `ns`, `us`, `ms`, `s`.
    pub fn from_param(value: &str) -> Option<Self> {
        match value {
            "ns" => Some(Self::Ns),
            "us" => Some(Self::Us),
            "ms" => Some(Self::Ms),
            "s" => Some(Self::S),
            _ => None,
        }
    }

    /// InfluxDB 1's `precision` values (`/write`): `n`/`ns`, `u`/`us`, `ms`,
    /// `s`, `m`, `h`.
    pub fn from_v1_param(value: &str) -> Option<Self> {
        match value {
            "n" | "ns" => Some(Self::Ns),
            "u" | "us" | "µ" => Some(Self::Us),
            "ms" => Some(Self::Ms),
            "s" => Some(Self::S),
            "m" => Some(Self::M),
            "h" => Some(Self::H),
            _ => None,
        }
    }

    /// InfluxDB 3's `precision` values (`/api/v3/write_lp`): `auto`,
    /// `nanosecond`, `microsecond`, `millisecond`, `second` (and their
    /// short forms).
    pub fn from_v3_param(value: &str) -> Option<Self> {
        match value {
            "auto" => Some(Self::Auto),
            "nanosecond" | "ns" | "n" => Some(Self::Ns),
            "microsecond" | "us" | "u" => Some(Self::Us),
            "millisecond" | "ms" => Some(Self::Ms),
            "second" | "s" => Some(Self::S),
            _ => None,
        }
    }

    /// Nanoseconds in one unit of a timestamp `units` long.
    pub fn nanos_per_unit_of(self, units: i64) -> i64 {
        match self {
            Self::Ns => 1,
            Self::Us => 1_000,
            Self::Ms => 1_000_000,
            Self::S => 1_000_000_000,
            Self::M => 60_000_000_000,
            Self::H => 3_600_000_000_000,
            Self::Auto => match units.unsigned_abs() {
                n if n < 5_000_000_000 => 1_000_000_000,
                n if n < 5_000_000_000_000 => 1_000_000,
                n if n < 5_000_000_000_000_000 => 1_000,
                _ => 1,
            },
        }
    }
}

/// One field value. Strings borrow from the body unless they had escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Cow<'a, str>),
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    /// 1-based line of the body the point starts on.
    pub line: usize,
    pub measurement: Cow<'a, str>,
    /// Tag set in the order written (keys are unique).
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Field set in the order written (keys are unique; at least one).
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
}

/// Why a request was refused: the first bad line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}{}: {reason}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct LineError {
    pub line: usize,
    /// 1-based byte column, where one is meaningful.
    pub column: Option<usize>,
    pub reason: String,
}

const MEASUREMENT_ESCAPES: &[u8] = b", ";
const KEY_ESCAPES: &[u8] = b",= ";

/// Parses a whole request body; timestamps are in `precision`, lines without
/// one get `default_time_ns`.
pub fn parse(
    body: &str,
    precision: Precision,
    default_time_ns: i64,
) -> Result<Vec<Point<'_>>, LineError> {
    let mut parser = Parser {
        src: body,
        bytes: body.as_bytes(),
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let mut points = Vec::new();
    loop {
        parser.skip(b" \t\r");
        match parser.peek() {
            None => return Ok(points),
            Some(b'\n') => parser.newline(),
            Some(b'#') => {
                while parser.peek().is_some_and(|b| b != b'\n') {
                    parser.pos += 1;
                }
            }
            Some(_) => {
                points.push(parser.point(precision, default_time_ns)?);
                parser.end_of_line()?;
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|b| set.contains(&b)) {
            self.pos += 1;
        }
    }

    /// Consumes a `\n`.
    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    fn error_at(&self, pos: usize, reason: impl Into<String>) -> LineError {
        LineError {
            line: self.line,
            column: Some(pos - self.line_start + 1),
            reason: reason.into(),
        }
    }

    fn error(&self, reason: impl Into<String>) -> LineError {
        self.error_at(self.pos, reason)
    }

    /// What the next byte is, for messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the body".into(),
            Some(b'\n') => "the end of the line".into(),
            Some(_) => {
                let c = self.src[self.pos..].chars().next().expect("char boundary");
                format!("'{}'", c.escape_default())
            }
        }
    }

    /// Reads up to an unescaped byte of `stops` (or a line end), undoing the
    /// escapes of `escapable`.
    fn token(&mut self, stops: &[u8], escapable: &[u8]) -> Cow<'a, str> {
        let start = self.pos;
        let mut escaped = false;
        while let Some(b) = self.peek() {
            if b == b'\\'
                && self
                    .bytes
                    .get(self.pos + 1)
                    .is_some_and(|n| escapable.contains(n))
            {
                escaped = true;
                self.pos += 2;
                continue;
            }
            if b == b'\n' || stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.src[start..self.pos];
        if escaped {
            Cow::Owned(unescape(raw, escapable))
        } else {
            Cow::Borrowed(raw)
        }
    }

    fn point(
        &mut self,
        precision: Precision,
        default_time_ns: i64,
    ) -> Result<Point<'a>, LineError> {
        let line = self.line;
        let measurement = self.token(b", ", MEASUREMENT_ESCAPES);
        if measurement.is_empty() {
            return Err(self.error("missing measurement name"));
        }
        let mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        while self.peek() == Some(b',') {
            self.pos += 1;
            let (key_pos, key) = (self.pos, self.token(b",= ", KEY_ESCAPES));
            if key.is_empty() {
                return Err(self.error("empty tag key"));
            }
            if self.peek() != Some(b'=') {
                return Err(self.error(format!(
                    "tag key '{key}' must be followed by '=' and a value, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            let value = self.token(b",= ", KEY_ESCAPES);
            if value.is_empty() {
                return Err(self.error(format!("tag '{key}' has an empty value")));
            }
            if self.peek() == Some(b'=') {
                return Err(self.error(format!(
                    "unescaped '=' in the value of tag '{key}' (write it as \\=)"
                )));
            }
            if tags.iter().any(|(k, _)| *k == key) {
                return Err(self.error_at(key_pos, format!("tag key '{key}' appears twice")));
            }
            tags.push((key, value));
        }
        if self.peek() != Some(b' ') {
            return Err(self.error(format!(
                "expected a space and the field set after the measurement and tags, found {}",
                self.found()
            )));
        }
        self.skip(b" ");
        let fields = self.fields()?;
        if !matches!(self.peek(), None | Some(b' ' | b'\n' | b'\r')) {
            return Err(self.error(format!(
                "expected ',', a space or the end of the line after the field set, found {}",
                self.found()
            )));
        }
        self.skip(b" ");
        let time_ns = match self.peek() {
            None | Some(b'\n' | b'\r') => default_time_ns,
            Some(_) => self.timestamp(precision)?,
        };
        Ok(Point {
            line,
            measurement,
            tags,
            fields,
            time_ns,
        })
    }

    fn fields(&mut self) -> Result<Vec<(Cow<'a, str>, FieldValue<'a>)>, LineError> {
        let mut fields: Vec<(Cow<'a, str>, FieldValue<'a>)> = Vec::new();
        loop {
            let (key_pos, key) = (self.pos, self.token(b",= ", KEY_ESCAPES));
            if key.is_empty() {
                return Err(self.error(format!("expected a field key, found {}", self.found())));
            }
            if self.peek() != Some(b'=') {
                return Err(self.error(format!(
                    "field key '{key}' must be followed by '=' and a value, found {}",
                    self.found()
                )));
            }
            // Before the value: a string value may span lines, and positions
            // are only meaningful on the current line.
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(self.error_at(key_pos, format!("field key '{key}' appears twice")));
            }
            self.pos += 1;
            let value = self.field_value(&key)?;
            fields.push((key, value));
            if self.peek() != Some(b',') {
                return Ok(fields);
            }
            self.pos += 1;
        }
    }

    fn field_value(&mut self, key: &str) -> Result<FieldValue<'a>, LineError> {
        if self.peek() == Some(b'"') {
            return self.quoted().map(FieldValue::Str);
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b',' | b' ' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        scalar(&self.src[start..self.pos])
            .map_err(|reason| self.error_at(start, format!("field '{key}': {reason}")))
    }

    /// A double-quoted string; `\"` and `\\` are escapes, newlines are kept.
    fn quoted(&mut self) -> Result<Cow<'a, str>, LineError> {
        let (open_line, open_col) = (self.line, self.pos - self.line_start + 1);
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => {
                    return Err(LineError {
                        line: open_line,
                        column: Some(open_col),
                        reason: "string field value has no closing '\"'".into(),
                    });
                }
                Some(b'\\') if matches!(self.bytes.get(self.pos + 1), Some(b'"' | b'\\')) => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(b'"') => break,
                Some(b'\n') => self.newline(),
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.src[start..self.pos];
        self.pos += 1;
        Ok(if escaped {
            Cow::Owned(unescape(raw, b"\"\\"))
        } else {
            Cow::Borrowed(raw)
        })
    }

    fn timestamp(&mut self, precision: Precision) -> Result<i64, LineError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b' ' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        let raw = &self.src[start..self.pos];
        let units: i64 = raw
            .parse()
            .ok()
            .filter(|_| raw.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format!("timestamp '{raw}' is not an integer (or a field value has an unescaped space)"),
                )
            })?;
        units
            .checked_mul(precision.nanos_per_unit_of(units))
            .ok_or_else(|| self.error_at(start, format!("timestamp {raw} is out of range")))
    }

    /// After a point: optional spaces, then a line end or the end of the body.
    fn end_of_line(&mut self) -> Result<(), LineError> {
        self.skip(b" \t\r");
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.newline();
                Ok(())
            }
            Some(_) => Err(self.error(format!("unexpected {} after the timestamp", self.found()))),
        }
    }
}

/// Removes the backslash before each byte of `escapable`.
fn unescape(raw: &str, escapable: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let escaped = chars
            .peek()
            .filter(|&&next| c == '\\' && next.is_ascii() && escapable.contains(&(next as u8)));
        match escaped {
            Some(&next) => {
                out.push(next);
                chars.next();
            }
            None => out.push(c),
        }
    }
    out
}

/// A field value that is not a string.
fn scalar(raw: &str) -> Result<FieldValue<'static>, String> {
    match raw {
        "" => return Err("missing value".into()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        _ => {}
    }
    let integer = |digits: &str| {
        let digits = digits.strip_prefix('-').unwrap_or(digits);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(digits) = raw.strip_suffix('i').filter(|d| integer(d)) {
        return digits
            .parse()
            .map(FieldValue::Int)
            .map_err(|_| format!("integer {raw} does not fit in 64 bits"));
    }
    if let Some(digits) = raw.strip_suffix('u').filter(|d| integer(d)) {
        return digits
            .parse()
            .map(FieldValue::UInt)
            .map_err(|_| format!("unsigned integer {raw} is negative or does not fit in 64 bits"));
    }
    let numeric = raw.bytes().any(|b| b.is_ascii_digit())
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match raw.parse::<f64>() {
        Ok(v) if numeric && v.is_finite() => Ok(FieldValue::Float(v)),
        Ok(_) if numeric => Err(format!("float {raw} is out of range")),
        _ => Err(format!(
            "invalid value '{raw}' (expected a float such as 1.5, an integer 1i, an unsigned 1u, true/false, or a \"string\")"
        )),
    }
}

#[cfg(test)]
mod tests;
