//! Where a statement's reason for changing records comes from: the call
//! header `x-lotline-reason`, or a `SET lotline.reason = '...';` prefix of
//! the statement text itself (Flight SQL calls are stateless here, so a SET
//! sent as a statement of its own would have nothing to apply to).

use tonic::{Request, Status};

use super::auth::Principal;
use crate::ingest::ChangeMeta;

/// gRPC metadata key of the reason header.
pub const REASON_HEADER: &str = "x-lotline-reason";

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

/// The reason header of a request, if any.
pub fn header<T>(request: &Request<T>) -> Result<Option<String>, ReasonError> {
    request
        .metadata()
        .get(REASON_HEADER)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ReasonError::Header)
        })
        .transpose()
}

/// Who writes with `sql` and why: the statement's `SET lotline.reason`
/// prefix, else the call header's `reason`. Returns the statement without
/// the prefix.
pub fn writer<'a>(
    sql: &'a str,
    principal: &Principal,
    reason: Option<String>,
) -> Result<(ChangeMeta, &'a str), ReasonError> {
    let (prefixed, sql) = split_prefix(sql)?;
    let meta = ChangeMeta::new(principal.user.clone(), prefixed.or(reason));
    Ok((meta, sql))
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
