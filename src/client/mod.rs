//! The client side of lotline: what `lotline sql`, `lotline load` and
//! `lotline flush` run. It speaks only Arrow Flight SQL, exactly as any other
//! Flight SQL client would (ADBC, JDBC, pyarrow), so it exercises the same
//! server surface those tools use: a basic-auth handshake that yields a bearer
//! token, `CommandStatementQuery` + `DoGet` for queries,
//! `CommandStatementIngest` for bulk loads (one acknowledged, durable call per
//! batch) and the custom actions (`lotline.flush`, `lotline.user.*`), over
//! plain gRPC or TLS. Nothing here touches storage or the query engine
//! directly.

mod align;
pub mod b2mml;
mod collect;
mod load;
mod sql;
mod users;

use std::error::Error as StdError;
use std::path::PathBuf;
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
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use collect::{CollectArgs, run_collect};
pub use load::{ingest_command, run_load};
pub use sql::{OutputFormat, run_sql};
pub use users::{UserCommand, run_user};

/// The name of the custom Flight action that flushes the write buffer.
pub use crate::server::actions::{COMPACT_ACTION, FLUSH_ACTION, RESTAMP_ACTION};

/// How to reach and log in to a lotline server.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Flight SQL endpoint: grpc://host:port, or grpc+tls://host:port for a
    /// server with --tls-cert (http:// and https:// work too)
    #[arg(
        long,
        env = "LOTLINE_ENDPOINT",
        default_value = "grpc://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// User name for the handshake
    #[arg(long, env = "LOTLINE_USER", default_value = "admin")]
    pub user: String,
    /// Password for the handshake
    // A password may start with '-' (generated ones can): it is a value.
    #[arg(
        long,
        env = "LOTLINE_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub password: Option<String>,
    /// Skip the handshake (server started with --without-auth)
    #[arg(long)]
    pub no_auth: bool,
    /// CA certificate (PEM) to trust for grpc+tls://, e.g. a self-signed
    /// server certificate itself [default: the system's trusted roots]
    #[arg(long, env = "LOTLINE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Why existing records are changed (sent as the x-lotline-reason header
    /// on every call): needed to rewrite, UPDATE or DELETE context and
    /// master data, and to write sample corrections
    #[arg(long, env = "LOTLINE_REASON")]
    pub reason: Option<String>,
}

/// The URL tonic connects to (`http://` or `https://`) and whether it is TLS.
fn endpoint_url(endpoint: &str) -> Result<(String, bool), ClientError> {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("grpc", endpoint));
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "grpc" | "grpc+tcp" | "http" => false,
        "grpc+tls" | "https" => true,
        other => {
            return Err(ClientError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                message: format!(
                    "unknown scheme '{other}'; use grpc://, grpc+tls://, http:// or https://"
                ),
            });
        }
    };
    let scheme = if tls { "https" } else { "http" };
    Ok((format!("{scheme}://{rest}"), tls))
}

/// TLS settings trusting `--tls-ca` if given, else the system's roots.
fn client_tls(ca: Option<&PathBuf>) -> Result<ClientTlsConfig, ClientError> {
    let config = ClientTlsConfig::new();
    let Some(path) = ca else {
        return Ok(config.with_native_roots());
    };
    let pem = std::fs::read(path).map_err(|source| ClientError::Io {
        path: path.display().to_string(),
        source,
    })?;
    // tonic would only say "invalid certificate" at connect time: check now.
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    if certs.count() == 0 {
        return Err(ClientError::BadFile {
            file: path.display().to_string(),
            message: "no PEM CERTIFICATE block for --tls-ca".into(),
        });
    }
    Ok(config.ca_certificate(Certificate::from_pem(pem)))
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

/// The server's endpoint, with TLS as its scheme says.
fn endpoint(args: &ConnectArgs) -> Result<Endpoint, ClientError> {
    let (url, tls) = endpoint_url(&args.endpoint)?;
    let invalid = |e: tonic::transport::Error| ClientError::InvalidEndpoint {
        endpoint: args.endpoint.clone(),
        message: error_chain(&e),
    };
    let mut endpoint = Endpoint::from_shared(url)
        .map_err(invalid)?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if tls {
        endpoint = endpoint
            .tls_config(client_tls(args.tls_ca.as_ref())?)
            .map_err(invalid)?;
    } else if args.tls_ca.is_some() {
        return Err(ClientError::Usage(format!(
            "--tls-ca is for TLS endpoints; use grpc+tls:// instead of {}",
            args.endpoint
        )));
    }
    Ok(endpoint)
}

/// A channel that connects when first used, and again after a loss: for
/// `lotline collect`, which starts while the server may be down.
pub fn lazy_channel(args: &ConnectArgs) -> Result<Channel, ClientError> {
    Ok(endpoint(args)?.connect_lazy())
}

/// A gRPC channel to the server's endpoint (Flight SQL and `lotline.v1`
/// share it), without logging in.
pub async fn channel(args: &ConnectArgs) -> Result<Channel, ClientError> {
    let channel = endpoint(args)?.connect().await.map_err(|e| {
        let mut message = error_chain(&e);
        // rustls, unlike OpenSSL-based clients, refuses a server certificate
        // that is itself a CA: what a plain `openssl req -x509` makes.
        if message.contains("CaUsedAsEndEntity") {
            message.push_str(
                " (the server's certificate says CA:TRUE; make it with \
                 -addext basicConstraints=critical,CA:FALSE)",
            );
        }
        ClientError::Connect {
            endpoint: args.endpoint.clone(),
            message,
        }
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
    if let Some(reason) = &args.reason {
        client.set_header(crate::ingest::REASON_HEADER, reason.clone());
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

/// Runs one custom Flight action; returns the body of its first result
/// (empty if there is none).
pub(crate) async fn run_action(
    client: &mut FlightSqlServiceClient<Channel>,
    name: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, ClientError> {
    let context = format!("action {name} failed");
    let action = Action {
        r#type: name.to_string(),
        body: body.into(),
    };
    let mut results = client
        .do_action(action)
        .await
        .map_err(|e| ClientError::flight(&context, e))?;
    let first = results
        .message()
        .await
        .map_err(|s| ClientError::status(&context, &s))?;
    // Drain the rest so the server sees the call complete cleanly.
    while results
        .message()
        .await
        .map_err(|s| ClientError::status(&context, &s))?
        .is_some()
    {}
    Ok(first.map(|r| r.body.to_vec()).unwrap_or_default())
}

/// Ask the server to flush its write buffer to segments; returns the
/// server's JSON report (`{}` if it sent no body).
pub async fn run_flush(args: &ConnectArgs) -> Result<String, ClientError> {
    run_report_action(args, FLUSH_ACTION).await
}

/// Ask the server to restamp samples (`lotline.restamp`); returns its JSON
/// report once the rewritten segments are live.
pub async fn run_restamp(args: &ConnectArgs) -> Result<String, ClientError> {
    run_report_action(args, RESTAMP_ACTION).await
}

/// Ask the server to compact segments (`lotline.compact`); returns its JSON
/// report once the merged segments are live.
pub async fn run_compact(args: &ConnectArgs) -> Result<String, ClientError> {
    run_report_action(args, COMPACT_ACTION).await
}

/// Runs a body-less action whose answer is a JSON report (`{}` if none).
async fn run_report_action(args: &ConnectArgs, action: &str) -> Result<String, ClientError> {
    let mut client = connect(args).await?;
    let body = run_action(&mut client, action, Vec::new()).await?;
    Ok(if body.is_empty() {
        "{}".to_string()
    } else {
        String::from_utf8_lossy(&body).into_owned()
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
    fn endpoint_schemes() {
        let url = |e: &str| endpoint_url(e).map_err(|e| e.to_string());
        assert_eq!(url("grpc://h:1"), Ok(("http://h:1".into(), false)));
        assert_eq!(url("grpc+tcp://h:1"), Ok(("http://h:1".into(), false)));
        assert_eq!(url("h:1"), Ok(("http://h:1".into(), false)));
        assert_eq!(url("grpc+tls://h:1"), Ok(("https://h:1".into(), true)));
        assert_eq!(url("https://h:1"), Ok(("https://h:1".into(), true)));
        assert!(
            url("ftp://h:1")
                .unwrap_err()
                .contains("unknown scheme 'ftp'")
        );
    }

    #[test]
    fn status_text_is_readable() {
        let s = tonic::Status::unauthenticated("bad password");
        assert_eq!(describe_status(&s), "bad password (Unauthenticated)");
    }
}
