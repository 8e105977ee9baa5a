//! The client side of lotline: what `lotline sql`, `lotline load` and
//! `lotline flush` run. It speaks only Arrow Flight SQL, exactly as any other
//! Flight SQL client would (ADBC, JDBC, pyarrow), so it exercises the same
//! server surface those tools use: a basic-auth handshake that yields a bearer
//! token, `CommandStatementQuery` + `DoGet` for queries,
//! `CommandStatementIngest` for bulk loads (one acknowledged, durable call per
//! batch) and the custom `lotline.flush` action. Nothing here touches storage
//! or the query engine directly.

mod align;
mod load;
mod sql;

use std::error::Error as StdError;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Action, HandshakeRequest};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

pub use load::{ingest_command, run_load};
pub use sql::{OutputFormat, run_sql};

/// The name of the custom Flight action that flushes the write buffer.
pub const FLUSH_ACTION: &str = "lotline.flush";

/// How to reach and log in to a lotline server.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Flight SQL endpoint, e.g. http://127.0.0.1:50051
    #[arg(
        long,
        env = "LOTLINE_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// User name for the handshake
    #[arg(long, env = "LOTLINE_USER", default_value = "admin")]
    pub user: String,
    /// Password for the handshake
    #[arg(long, env = "LOTLINE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Skip the handshake (server started with --without-auth)
    #[arg(long)]
    pub no_auth: bool,
}

/// Everything that can go wrong on the client side, with enough context to
/// tell the user what was being attempted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint '{endpoint}': {message}")]
    InvalidEndpoint { endpoint: String, message: String },
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error(
        "no password for user '{user}': pass --password or set LOTLINE_PASSWORD \
         (or --no-auth if the server runs without auth)"
    )]
    MissingPassword { user: String },
    #[error("login as '{user}' at {endpoint} failed: {message}")]
    Handshake {
        endpoint: String,
        user: String,
        message: String,
    },
    /// A Flight / Flight SQL call failed; `message` carries the server's text.
    #[error("{context}: {message}")]
    Flight { context: String, message: String },
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: ArrowError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{file}: row {row}, column '{column}': {message}")]
    BadValue {
        file: String,
        /// 1-based data row (the CSV header is not counted).
        row: u64,
        column: String,
        message: String,
    },
    #[error("{file}: column '{column}' is not a column of table '{table}' (its columns: {known})")]
    UnknownColumn {
        file: String,
        column: String,
        table: String,
        known: String,
    },
    #[error("{file}: {message}")]
    BadFile { file: String, message: String },
    #[error("terminal: {0}")]
    Terminal(String),
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// Wrap a Flight error with what we were doing, keeping the server's
    /// message readable (a `tonic::Status` prints its metadata otherwise).
    pub(crate) fn flight(context: impl Into<String>, err: FlightError) -> Self {
        ClientError::Flight {
            context: context.into(),
            message: describe_flight_error(&err),
        }
    }

    pub(crate) fn status(context: impl Into<String>, status: &tonic::Status) -> Self {
        ClientError::Flight {
            context: context.into(),
            message: describe_status(status),
        }
    }

    pub(crate) fn arrow(context: impl Into<String>, source: ArrowError) -> Self {
        ClientError::Arrow {
            context: context.into(),
            source,
        }
    }
}

/// "message (Code)", plus the transport cause if there is one.
pub(crate) fn describe_status(status: &tonic::Status) -> String {
    let mut out = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{} ({:?})", status.message(), status.code())
    };
    if let Some(src) = StdError::source(status) {
        out.push_str(": ");
        out.push_str(&error_chain(src));
    }
    out
}

pub(crate) fn describe_flight_error(err: &FlightError) -> String {
    match err {
        FlightError::Tonic(status) => describe_status(status),
        FlightError::Arrow(e) => e.to_string(),
        FlightError::ExternalError(e) => error_chain(&**e),
        other => other.to_string(),
    }
}

/// An error and all its sources, joined with ": ", skipping repeats (tonic's
/// transport errors print only "transport error" on their own).
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// A gRPC channel to the server's endpoint (Flight SQL and `lotline.v1`
/// share it), without logging in.
pub async fn channel(args: &ConnectArgs) -> Result<Channel, ClientError> {
    let url = if args.endpoint.contains("://") {
        args.endpoint.clone()
    } else {
        format!("http://{}", args.endpoint)
    };
    let endpoint = Endpoint::from_shared(url)
        .map_err(|e| ClientError::InvalidEndpoint {
            endpoint: args.endpoint.clone(),
            message: error_chain(&e),
        })?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| ClientError::Connect {
        endpoint: args.endpoint.clone(),
        message: error_chain(&e),
    })?;
    Ok(channel)
}

/// Connect to the server and, unless `--no-auth`, log in with a basic-auth
/// handshake; the returned client carries the bearer token on every call.
pub async fn connect(args: &ConnectArgs) -> Result<FlightSqlServiceClient<Channel>, ClientError> {
    // Check credentials before touching the network so the error is immediate.
    let password = if args.no_auth {
        None
    } else {
        match &args.password {
            Some(p) => Some(p.clone()),
            None => {
                return Err(ClientError::MissingPassword {
                    user: args.user.clone(),
                });
            }
        }
    };

    let channel = channel(args).await?;

    // Results and ingest batches can exceed tonic's 4 MiB default.
    let inner = FlightServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let mut client = FlightSqlServiceClient::new_from_inner(inner);

    if let Some(password) = password {
        handshake(&mut client, args, &password).await?;
    }
    Ok(client)
}

/// Basic-auth handshake done by hand (rather than
/// `FlightSqlServiceClient::handshake`) so a rejected login surfaces the
/// server's status message instead of a flattened IPC error.
async fn handshake(
    client: &mut FlightSqlServiceClient<Channel>,
    args: &ConnectArgs,
    password: &str,
) -> Result<(), ClientError> {
    let fail = |message: String| ClientError::Handshake {
        endpoint: args.endpoint.clone(),
        user: args.user.clone(),
        message,
    };
    let basic = BASE64_STANDARD.encode(format!("{}:{}", args.user, password));
    let value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = format!("Basic {basic}")
        .parse()
        .map_err(|_| fail("user name or password is not valid header text".to_string()))?;
    let hello = HandshakeRequest {
        protocol_version: 0,
        payload: Default::default(),
    };
    let mut req = tonic::Request::new(futures::stream::iter(vec![hello]));
    req.metadata_mut().insert("authorization", value);

    let resp = client
        .inner_mut()
        .handshake(req)
        .await
        .map_err(|s| fail(describe_status(&s)))?;
    let token = resp
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let mut stream = resp.into_inner();
    while stream
        .message()
        .await
        .map_err(|s| fail(describe_status(&s)))?
        .is_some()
    {}
    match token {
        Some(t) if !t.is_empty() => {
            client.set_token(t);
            Ok(())
        }
        _ => Err(fail(
            "server accepted the handshake but returned no bearer token".to_string(),
        )),
    }
}

/// Run one SQL statement and collect every batch of every endpoint.
pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, ClientError> {
    Ok(query_with_schema(client, sql).await?.1)
}

/// Like [`query`], also returning the result schema (from the FlightInfo, or
/// the first batch) so an empty result can still print its header.
pub(crate) async fn query_with_schema(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>), ClientError> {
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| ClientError::flight("query failed", e))?;
    let mut schema: Option<SchemaRef> = if info.schema.is_empty() {
        None
    } else {
        info.clone()
            .try_decode_schema()
            .ok()
            .map(std::sync::Arc::new)
    };
    let mut batches = Vec::new();
    // Endpoint locations are ignored: lotline serves every ticket itself.
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else {
            continue;
        };
        let stream = client
            .do_get(ticket)
            .await
            .map_err(|e| ClientError::flight("fetching results failed", e))?;
        let mut part: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| ClientError::flight("fetching results failed", e))?;
        batches.append(&mut part);
    }
    if let Some(first) = batches.first() {
        schema = Some(first.schema());
    }
    Ok((schema, batches))
}

/// The schema of a table as the server reports it for `SELECT * ... LIMIT 0`.
pub(crate) async fn table_schema(
    client: &mut FlightSqlServiceClient<Channel>,
    table: &str,
) -> Result<Schema, ClientError> {
    let sql = format!("SELECT * FROM {} LIMIT 0", quote_table(table));
    let info = client.execute(sql, None).await.map_err(|e| {
        ClientError::flight(format!("cannot read the schema of table '{table}'"), e)
    })?;
    info.try_decode_schema()
        .map_err(|e| ClientError::arrow(format!("schema of table '{table}'"), e))
}

/// Quote each dot-separated part of a (possibly qualified) table name.
pub(crate) fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Ask the server to flush its write buffer to segments; returns the
/// server's JSON report (`{}` if it sent no body).
pub async fn run_flush(args: &ConnectArgs) -> Result<String, ClientError> {
    let mut client = connect(args).await?;
    let action = Action {
        r#type: FLUSH_ACTION.to_string(),
        body: Default::default(),
    };
    let mut results = client
        .do_action(action)
        .await
        .map_err(|e| ClientError::flight("flush failed", e))?;
    let first = results
        .message()
        .await
        .map_err(|s| ClientError::status("flush failed", &s))?;
    // Drain the rest so the server sees the call complete cleanly.
    while results
        .message()
        .await
        .map_err(|s| ClientError::status("flush failed", &s))?
        .is_some()
    {}
    Ok(match first {
        Some(r) if !r.body.is_empty() => String::from_utf8_lossy(&r.body).into_owned(),
        _ => "{}".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_qualified_names() {
        assert_eq!(quote_table("samples"), "\"samples\"");
        assert_eq!(quote_table("public.samples"), "\"public\".\"samples\"");
        assert_eq!(quote_table("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn status_text_is_readable() {
        let s = tonic::Status::unauthenticated("bad password");
        assert_eq!(describe_status(&s), "bad password (Unauthenticated)");
    }
}
