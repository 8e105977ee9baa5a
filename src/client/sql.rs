//! `lotline sql`: one-shot statements or an interactive REPL over Flight SQL.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::{pretty_format_batches, pretty_format_batches_with_schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tonic::transport::Channel;

use super::{ClientError, ConnectArgs, connect, query_with_schema};

const PROMPT: &str = "lotline> ";
const CONTINUATION: &str = "     -> ";
const HISTORY_FILE: &str = ".lotline_history";

/// How `lotline sql` prints results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text table
    #[default]
    Table,
    /// CSV with a header line
    Csv,
    /// A JSON array of row objects
    Json,
}

/// Run `sql` (one or more `;`-separated statements) and print the results, or
/// start a REPL when `sql` is `None`. Row counts and timings go to stderr so
/// stdout stays clean for pipes.
pub async fn run_sql(
    args: &ConnectArgs,
    sql: Option<String>,
    format: OutputFormat,
) -> Result<(), ClientError> {
    let mut client = connect(args).await?;
    match sql {
        Some(text) => {
            let (mut statements, consumed) = split_statements(&text);
            let rest = text[consumed..].trim();
            if !rest.is_empty() {
                statements.push(rest.to_string());
            }
            if statements.is_empty() {
                return Err(ClientError::Usage("no SQL statement given".to_string()));
            }
            for statement in &statements {
                run_statement(&mut client, statement, format).await?;
            }
            Ok(())
        }
        None => repl(&mut client, args, format).await,
    }
}

async fn run_statement(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
    format: OutputFormat,
) -> Result<(), ClientError> {
    let started = Instant::now();
    let (schema, batches) = query_with_schema(client, sql).await?;
    let elapsed = started.elapsed();
    print_result(schema, &batches, format)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let noun = if rows == 1 { "row" } else { "rows" };
    eprintln!("{rows} {noun} in {} ms", elapsed.as_millis());
    Ok(())
}

fn print_result(
    schema: Option<SchemaRef>,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<(), ClientError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io_err = |source: std::io::Error| ClientError::Io {
        path: "stdout".to_string(),
        source,
    };
    let arrow_err = |e: arrow::error::ArrowError| ClientError::arrow("formatting results", e);
    match format {
        OutputFormat::Table => {
            let text = if batches.is_empty() {
                match schema {
                    Some(s) => pretty_format_batches_with_schema(s, &[])
                        .map_err(arrow_err)?
                        .to_string(),
                    None => String::new(),
                }
            } else {
                pretty_format_batches(batches)
                    .map_err(arrow_err)?
                    .to_string()
            };
            if !text.is_empty() {
                writeln!(out, "{text}").map_err(io_err)?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                if let Some(s) = schema {
                    writer
                        .write(&RecordBatch::new_empty(s))
                        .map_err(arrow_err)?;
                }
            }
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
            // Dropping the writer flushes its buffer into `out`.
            drop(writer);
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
            drop(writer);
            writeln!(out).map_err(io_err)?;
        }
    }
    out.flush().map_err(io_err)
}

async fn repl(
    client: &mut FlightSqlServiceClient<Channel>,
    args: &ConnectArgs,
    format: OutputFormat,
) -> Result<(), ClientError> {
    let mut editor = DefaultEditor::new().map_err(|e| ClientError::Terminal(e.to_string()))?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(HISTORY_FILE));
    if let Some(path) = &history {
        // A missing or unreadable history file is not worth failing over.
        let _ = editor.load_history(path);
    }
    eprintln!(
        "connected to {}; end statements with ';', \\q to quit",
        args.endpoint
    );

    let mut buffer = String::new();
    let outcome = loop {
        let prompt = if buffer.trim().is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            // Ctrl-C abandons the statement being typed, as in psql.
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(ClientError::Terminal(e.to_string())),
        };

        if buffer.trim().is_empty() {
            buffer.clear();
            let command = line.trim().trim_end_matches(';').trim();
            match command {
                "" => continue,
                "\\q" | "quit" | "exit" => break Ok(()),
                "\\?" | "help" => {
                    eprintln!(
                        "Type SQL ending with ';' (it may span lines). \\q, quit or exit leaves; \
                         Ctrl-C clears the current statement."
                    );
                    continue;
                }
                _ => {}
            }
        }

        buffer.push_str(&line);
        buffer.push('\n');
        let (statements, consumed) = split_statements(&buffer);
        if statements.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(buffer[..consumed].trim());
        for statement in &statements {
            if let Err(e) = run_statement(client, statement, format).await {
                eprintln!("error: {e}");
            }
        }
        let rest = buffer[consumed..].trim().to_string();
        buffer = if rest.is_empty() {
            String::new()
        } else {
            rest + "\n"
        };
    };

    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    outcome
}

/// Split `text` into complete statements (each ended by a `;` outside quotes
/// and comments). Returns the statements, trimmed and without their `;`, and
/// how many bytes of `text` they used; the rest is an unfinished statement.
pub(crate) fn split_statements(text: &str) -> (Vec<String>, usize) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Normal,
        Single,
        Double,
        LineComment,
        BlockComment,
    }
    let bytes = text.as_bytes();
    let mut state = State::Normal;
    let mut statements = Vec::new();
    let mut start = 0;
    let mut consumed = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Normal => match c {
                b'\'' => state = State::Single,
                b'"' => state = State::Double,
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b';' => {
                    let statement = text[start..i].trim();
                    if !statement.is_empty() {
                        statements.push(statement.to_string());
                    }
                    start = i + 1;
                    consumed = i + 1;
                }
                _ => {}
            },
            // A doubled quote ('' or "") leaves and re-enters the state.
            State::Single if c == b'\'' => state = State::Normal,
            State::Double if c == b'"' => state = State::Normal,
            State::LineComment if c == b'\n' => state = State::Normal,
            State::BlockComment if c == b'*' && next == Some(b'/') => {
                state = State::Normal;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    (statements, consumed)
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn splits_on_top_level_semicolons() {
        let (s, used) = split_statements("select 1; select ';' as x;\nselect 2");
        assert_eq!(s, vec!["select 1", "select ';' as x"]);
        assert_eq!(
            &"select 1; select ';' as x;\nselect 2"[used..],
            "\nselect 2"
        );
    }

    #[test]
    fn ignores_semicolons_in_comments_and_identifiers() {
        let text = "select \"a;b\" -- not; here\n from t /* ; */;";
        let (s, used) = split_statements(text);
        assert_eq!(s.len(), 1);
        assert_eq!(used, text.len());
        let (s, _) = split_statements("select 'it''s;'");
        assert!(s.is_empty());
    }
}
