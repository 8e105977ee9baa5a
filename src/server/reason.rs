//! Who writes and why, for every interface: the [`WriteContext`] of a call
//! from its authenticated caller and its reason. The reason comes from the
//! call header [`REASON_HEADER`] (Flight, gRPC metadata, HTTP; read here
//! only), or for SQL from a `SET lotline.reason = '...';` prefix of the
//! statement text itself (Flight SQL calls are stateless here, so a SET sent
//! as a statement of its own would have nothing to apply to).
//!
//! One mechanism for every Flight SQL path that runs DML: the reason travels
//! in the statement text. Every statement is planned through [`writer`]
//! (prefix first, else the header of the call that runs it); a call that
//! hands a statement back for a later call to run (a statement ticket, a
//! prepared-statement handle from CreatePreparedStatement, a bind or
//! GetFlightInfo) writes its header's reason into the text with [`carry`],
//! so the reason reaches the write whichever of those calls carried it.

use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use super::auth::Principal;
use crate::ingest::{REASON_HEADER, REQUEST_ID_HEADER, WriteContext};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReasonError {
    #[error(
        "SET lotline.reason applies to the statement it prefixes, in the same text: \
         send SET lotline.reason = '...'; UPDATE ... as one statement, or give the \
         reason with the call header '{REASON_HEADER}'"
    )]
    Alone,
    #[error("SET lotline.reason needs a quoted string: SET lotline.reason = 'why';")]
    Unquoted,
    #[error("the '{REASON_HEADER}' header is not valid ASCII text")]
    Header,
}

impl From<ReasonError> for Status {
    fn from(e: ReasonError) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

/// The reason header's value (`None`: no header), which must be text.
pub fn decode(value: Option<&[u8]>) -> Result<Option<String>, ReasonError> {
    value
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|v| v.is_ascii())
                .map(str::to_string)
                .ok_or(ReasonError::Header)
        })
        .transpose()
}

/// The write context of a gRPC or Flight call by `principal` over
/// `interface`, with the reason its metadata carries.
pub fn write_context(
    principal: &Principal,
    interface: &'static str,
    metadata: &MetadataMap,
) -> Result<WriteContext, ReasonError> {
    let reason = decode(metadata.get(REASON_HEADER).map(|v| v.as_bytes()))?;
    Ok(WriteContext::new(&principal.user, interface).with_reason(reason))
}

/// The client's request id from the call header [`REQUEST_ID_HEADER`], if
/// any (checked when it joins the write context).
pub fn request_id(metadata: &MetadataMap) -> Result<Option<String>, Status> {
    metadata
        .get(REQUEST_ID_HEADER)
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| {
                Status::invalid_argument(format!("the '{REQUEST_ID_HEADER}' header is not ASCII"))
            })
        })
        .transpose()
}

/// The writer of a Flight SQL statement in `request` (also DML run as a
/// query, prepared or not).
pub fn dml<T>(principal: &Principal, request: &Request<T>) -> Result<WriteContext, Status> {
    Ok(write_context(
        principal,
        "flight_sql.dml",
        request.metadata(),
    )?)
}

/// The writer of a Flight SQL prepared statement run as an update.
pub fn prepared_update<T>(
    principal: &Principal,
    request: &Request<T>,
) -> Result<WriteContext, Status> {
    Ok(write_context(
        principal,
        "flight_sql.prepared",
        request.metadata(),
    )?)
}

/// The writer of `sql`: `who`, with the statement's `SET lotline.reason`
/// prefix as the reason if it has one (over the call header's). Returns the
/// statement without the prefix.
pub fn writer(sql: &str, who: WriteContext) -> Result<(WriteContext, &str), ReasonError> {
    let (prefixed, sql) = split_prefix(sql)?;
    let who = match prefixed {
        Some(reason) => who.with_reason(Some(reason)),
        None => who,
    };
    Ok((who, sql))
}

/// `sql` carrying `who`'s reason as a `SET lotline.reason` prefix, for a
/// statement that a later call runs (see the module comment). Text that has
/// a prefix of its own, and a caller without a reason, stay as they are.
pub fn carry(sql: &str, who: &WriteContext) -> Result<String, ReasonError> {
    let (prefixed, _) = split_prefix(sql)?;
    Ok(match (&who.reason, prefixed) {
        (Some(reason), None) => format!(
            "SET lotline.reason = {}; {sql}",
            crate::query::sql_literal::string(reason)
        ),
        _ => sql.to_string(),
    })
}

/// Splits a leading `SET lotline.reason = '...';` (or `TO '...'`) off `sql`:
/// the reason and the statement after it. Text without the prefix is
/// returned whole with no reason.
pub fn split_prefix(sql: &str) -> Result<(Option<String>, &str), ReasonError> {
    let trimmed = sql.trim_start();
    let Some(rest) = strip_word(trimmed, "set").and_then(|r| strip_word(r, "lotline.reason"))
    else {
        return Ok((None, sql));
    };
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('=')
        .or_else(|| strip_word(rest, "to"))
        .ok_or(ReasonError::Unquoted)?
        .trim_start();
    let body = rest.strip_prefix('\'').ok_or(ReasonError::Unquoted)?;
    // A quote is escaped by doubling it, as in SQL.
    let mut reason = String::new();
    let mut chars = body.char_indices().peekable();
    let end = loop {
        match chars.next() {
            Some((i, '\'')) => {
                if chars.peek().map(|&(_, c)| c) == Some('\'') {
                    chars.next();
                    reason.push('\'');
                } else {
                    break i + 1;
                }
            }
            Some((_, c)) => reason.push(c),
            None => return Err(ReasonError::Unquoted),
        }
    };
    let after = body[end..].trim_start();
    let statement = after.strip_prefix(';').unwrap_or(after);
    if statement.trim().trim_end_matches(';').trim().is_empty() {
        return Err(ReasonError::Alone);
    }
    Ok((Some(reason), statement))
}

/// `text` without a leading case-insensitive `word` followed by a space or
/// symbol (so `settings` is not `set`).
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    let boundary = rest
        .chars()
        .next()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
    (head.eq_ignore_ascii_case(word) && boundary).then_some(rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_gives_reason_and_statement() {
        let (reason, sql) =
            split_prefix("  set LOTLINE.REASON = 'typo in name';  UPDATE equipment SET name='x'")
                .unwrap();
        assert_eq!(reason.as_deref(), Some("typo in name"));
        assert_eq!(sql.trim(), "UPDATE equipment SET name='x'");
        let (reason, _) =
            split_prefix("SET lotline.reason TO 'it''s wrong'; DELETE FROM lots").unwrap();
        assert_eq!(reason.as_deref(), Some("it's wrong"));
    }

    #[test]
    fn carried_reason_is_the_prefix_unless_the_text_has_one() {
        let who = WriteContext::new("ann", "flight_sql.dml").with_reason(Some("it's late".into()));
        let sql = "UPDATE lots SET status = 'x' WHERE id = ?";
        let carried = carry(sql, &who).unwrap();
        let (ctx, statement) =
            writer(&carried, WriteContext::new("ann", "flight_sql.dml")).unwrap();
        assert_eq!(ctx.reason.as_deref(), Some("it's late"));
        assert_eq!(statement.trim(), sql);
        let own = "SET lotline.reason = 'own'; DELETE FROM lots";
        assert_eq!(carry(own, &who).unwrap(), own);
        let silent = WriteContext::new("ann", "flight_sql.dml");
        assert_eq!(carry(sql, &silent).unwrap(), sql);
    }

    #[test]
    fn other_text_is_untouched() {
        for sql in [
            "SELECT 1",
            "settings",
            "SET datafusion.x = 1",
            "UPDATE t SET a = 1",
        ] {
            assert_eq!(split_prefix(sql).unwrap(), (None, sql));
        }
    }

    #[test]
    fn set_alone_or_unquoted_is_refused_with_how() {
        assert_eq!(
            split_prefix("SET lotline.reason = 'x'"),
            Err(ReasonError::Alone)
        );
        assert_eq!(
            split_prefix("SET lotline.reason = 'x';"),
            Err(ReasonError::Alone)
        );
        assert_eq!(
            split_prefix("SET lotline.reason = x; DELETE FROM lots"),
            Err(ReasonError::Unquoted)
        );
        assert_eq!(
            split_prefix("SET lotline.reason = 'x"),
            Err(ReasonError::Unquoted)
        );
        assert!(ReasonError::Alone.to_string().contains(REASON_HEADER));
    }
}
