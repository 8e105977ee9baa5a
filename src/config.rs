//! Server settings from one place: command-line flags, then `LOTLINE_*`
//! environment variables, then a TOML file (`--config`), then defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::ingest::{CompactionConfig, EngineConfig};
use crate::query::memory::QueryMemory;
use crate::query::{self, QueryOptions, retrieval};
use crate::storage::compaction::CompactionPolicy;
use crate::storage::segment::SegmentOptions;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// `flush_bytes` unless set: 128 MiB. A million narrow samples (the
/// `flush_rows` default) hold about 55 MB, so for them the row count decides;
/// wide rows flush earlier, and four buffers' worth (`max_buffered_bytes`)
/// stays well under a gigabyte.
const DEFAULT_FLUSH_BYTES: usize = 128 << 20;

// The other defaults of the settings that no lower module owns, each written
// once here; the flags' help texts repeat them, which a test checks.
const DEFAULT_DATA_DIR: &str = "lotline-data";
const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8086";
const DEFAULT_FLUSH_ROWS: usize = 1_000_000;
const DEFAULT_FLUSH_AGE_SECS: u64 = 60;
const DEFAULT_MAX_REQUEST_BYTES: usize = 256 << 20;
const DEFAULT_MIN_FREE_BYTES: u64 = 1 << 30;
const DEFAULT_MAX_WRITE_WAIT_SECS: u64 = 30;
const DEFAULT_TOKEN_TTL_SECS: u64 = 86_400;
const DEFAULT_REQUEST_ID_WINDOW_SECS: u64 = 86_400;
const DEFAULT_RETIRED_FILE_GRACE_SECS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WalSync {
    /// fsync the WAL before acknowledging a write (durable against power loss)
    Fsync,
    /// acknowledge after write(2) only (survives a process crash, not power loss)
    None,
}

/// What `lotline serve` does with a WAL record that does not verify and has
/// acknowledged records after it (a torn tail is always cut).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WalRecovery {
    /// refuse to start, naming the file and offset
    #[default]
    Strict,
    /// keep every record that verifies, copy the damaged file to
    /// wal/quarantine/ and record the salvage in audit_log
    Salvage,
}

/// Flags of `lotline serve`. Each can also be set by the environment variable
/// shown, or by the same name (with underscores) in the `--config` TOML file,
/// which is read into this same type: one list of settings.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// Data directory (WAL, manifest, segments, users), relative to the working directory [default: lotline-data]
    #[arg(long, env = "LOTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for Flight SQL [default: 127.0.0.1:50051]
    #[arg(long, env = "LOTLINE_LISTEN")]
    pub listen: Option<String>,
    /// Address for HTTP: /health, /metrics, InfluxDB line protocol at /api/v2/write [default: 127.0.0.1:8086]
    #[arg(long, env = "LOTLINE_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// TOML file with any of these settings
    #[arg(long, env = "LOTLINE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// WAL durability before a write is acknowledged [default: fsync]
    #[arg(long, env = "LOTLINE_WAL_SYNC", value_enum)]
    pub wal_sync: Option<WalSync>,
    /// Flush a table's buffer to a segment at this many rows [default: 1000000]
    #[arg(long, env = "LOTLINE_FLUSH_ROWS")]
    pub flush_rows: Option<usize>,
    /// Flush a table's buffer once its rows hold this many bytes of memory, whatever
    /// their count (wide rows, long text values) [default: 134217728]
    #[arg(long, env = "LOTLINE_FLUSH_BYTES")]
    pub flush_bytes: Option<usize>,
    /// Flush a table's buffer when its oldest row is this old, in seconds [default: 60]
    #[arg(long, env = "LOTLINE_FLUSH_AGE_SECS")]
    pub flush_age_secs: Option<u64>,
    /// Writers wait while this many rows are buffered and not yet flushed [default: 4 x flush_rows]
    #[arg(long, env = "LOTLINE_MAX_BUFFERED_ROWS")]
    pub max_buffered_rows: Option<usize>,
    /// Writers wait while the buffers hold this many bytes of memory [default: 4 x flush_bytes]
    #[arg(long, env = "LOTLINE_MAX_BUFFERED_BYTES")]
    pub max_buffered_bytes: Option<usize>,
    /// Refuse writes while the WAL's or the segments' filesystem has fewer
    /// free bytes than this, so flushes and compactions can finish; 0: no
    /// reserve [default: 1073741824]
    #[arg(long, env = "LOTLINE_MIN_FREE_BYTES")]
    pub min_free_bytes: Option<u64>,
    /// A writer waiting for buffer room (flushes behind or failing) is
    /// refused after this many seconds [default: 30]
    #[arg(long, env = "LOTLINE_MAX_WRITE_WAIT_SECS")]
    pub max_write_wait_secs: Option<u64>,
    /// Largest accepted write request, in bytes of Arrow memory [default: 268435456]
    #[arg(long, env = "LOTLINE_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Rows per Parquet row group in segments [default: 1000000]
    #[arg(long, env = "LOTLINE_ROW_GROUP_ROWS")]
    pub row_group_rows: Option<usize>,
    /// Most rows (tags x intervals) one history_* function call may return [default: 10000000]
    #[arg(long, env = "LOTLINE_MAX_HISTORY_INTERVALS")]
    pub max_history_intervals: Option<u64>,
    /// Memory all running statements may use together, in bytes; beyond it
    /// they spill to disk or fail [default: half of the machine's memory]
    #[arg(long, env = "LOTLINE_QUERY_MEMORY_BYTES")]
    pub query_memory_bytes: Option<usize>,
    /// Memory one statement may use, in bytes [default: a quarter of --query-memory-bytes]
    #[arg(long, env = "LOTLINE_QUERY_MEMORY_PER_STATEMENT_BYTES")]
    pub query_memory_per_statement_bytes: Option<usize>,
    /// Statements that run at once; more wait their turn [default: 16]
    #[arg(long, env = "LOTLINE_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,
    /// Cancel a query that runs longer than this many seconds (writes always
    /// finish) [default: no limit]
    #[arg(long, env = "LOTLINE_STATEMENT_TIMEOUT_SECS")]
    pub statement_timeout_secs: Option<u64>,
    /// Lifetime of a bearer token, in seconds; clients log in again after it [default: 86400]
    #[arg(long, env = "LOTLINE_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// Serve Flight SQL and HTTP over TLS with this certificate chain (PEM); needs --tls-key
    #[arg(long, env = "LOTLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert
    #[arg(long, env = "LOTLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Accept every call without authentication (local experiments only)
    #[arg(long, env = "LOTLINE_WITHOUT_AUTH")]
    pub without_auth: bool,
    /// Do not stamp samples with the work order and lot of their equipment's
    /// production run at ingest and flush (`lotline restamp` still does)
    #[arg(long, env = "LOTLINE_NO_STAMPING")]
    pub no_stamping: bool,
    /// Do not compact segments in the background (`lotline compact` still does)
    #[arg(long, env = "LOTLINE_NO_COMPACTION")]
    pub no_compaction: bool,
    /// Rows a compacted segment aims at; segments below half of it are merged [default: 16000000]
    #[arg(long, env = "LOTLINE_COMPACTION_TARGET_ROWS")]
    pub compaction_target_rows: Option<u64>,
    /// Consecutive small segments a date partition needs before they are merged [default: 8]
    #[arg(long, env = "LOTLINE_COMPACTION_MIN_SEGMENTS")]
    pub compaction_min_segments: Option<usize>,
    /// Most segments merged at once (memory: about 5 MB per input) [default: 32]
    #[arg(long, env = "LOTLINE_COMPACTION_MAX_INPUTS")]
    pub compaction_max_inputs: Option<usize>,
    /// Seconds a client's request id (gRPC WriteRequest.request_id, header
    /// x-lotline-request-id) is remembered: a resend within it is not
    /// written again [default: 86400]
    #[arg(long, env = "LOTLINE_REQUEST_ID_WINDOW_SECS")]
    pub request_id_window_secs: Option<u64>,
    /// Seconds a segment file replaced by compaction or restamp stays on disk
    /// after lotline's last reader, for programs that read the directory
    /// themselves (DuckDB, Spark) [default: 300]
    #[arg(long, env = "LOTLINE_RETIRED_FILE_GRACE_SECS")]
    pub retired_file_grace_secs: Option<u64>,
    /// Seconds between background checks for segments to compact [default: 30]
    #[arg(long, env = "LOTLINE_COMPACTION_INTERVAL_SECS")]
    pub compaction_interval_secs: Option<u64>,
    /// Write the demo plant through the ingest path before serving
    #[arg(long)]
    #[serde(skip)]
    pub demo: bool,
    /// Run the collectors of this mapping file (TOML, see docs/COLLECTORS.md)
    /// in the server: OPC UA, Modbus and other machines are read directly
    #[arg(long, env = "LOTLINE_COLLECTORS")]
    pub collectors: Option<PathBuf>,
    /// On a damaged WAL (not a torn tail): refuse to start, or salvage what
    /// verifies. A one-off decision, so a flag only, not a config-file key
    #[arg(long, value_enum, default_value_t = WalRecovery::Strict)]
    #[serde(skip)]
    pub wal_recovery: WalRecovery,
}

/// Certificate and key files of `--tls-cert` / `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Resolved settings of a server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub http_listen: String,
    pub engine: EngineConfig,
    pub query: QueryOptions,
    pub token_ttl: Duration,
    /// `None`: plain TCP.
    pub tls: Option<TlsFiles>,
    pub without_auth: bool,
    pub demo: bool,
    /// The collectors' mapping file, if collectors run in this server.
    pub collectors: Option<PathBuf>,
    /// From `LOTLINE_ADMIN_PASSWORD`: the admin password set on first start.
    pub admin_password: Option<String>,
}

impl ServeArgs {
    /// Both TLS files or neither.
    fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        let cert = self.tls_cert.clone();
        let key = self.tls_key.clone();
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (Some(_), None) => Err(ConfigError::Invalid {
                name: "tls_key",
                reason: "tls_cert is set but tls_key is not; TLS needs both".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                name: "tls_cert",
                reason: "tls_key is set but tls_cert is not; TLS needs both".into(),
            }),
        }
    }

    /// These settings over the `--config` file's: a flag or environment
    /// variable wins over the file, the file over the default.
    fn with_file(&self) -> Result<ServeArgs, ConfigError> {
        let Some(path) = &self.config else {
            return Ok(self.clone());
        };
        let file_error = |reason: String| ConfigError::File {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let file: ServeArgs = toml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
        let mut s = self.clone();
        // The destructuring has no `..`: a new setting does not compile
        // until it is listed here, taken from the file or marked flag-only.
        macro_rules! from_file {
            (options: $($o:ident),*; switches: $($b:ident),*; flag_only: $($x:ident),*) => {{
                let ServeArgs { $($o,)* $($b,)* $($x: _,)* } = file;
                $( s.$o = s.$o.take().or($o); )*
                $( s.$b |= $b; )*
            }};
        }
        from_file!(
            options: data_dir, listen, http_listen, wal_sync, flush_rows, flush_bytes,
                flush_age_secs, max_buffered_rows, max_buffered_bytes, min_free_bytes,
                max_write_wait_secs, max_request_bytes, row_group_rows, max_history_intervals,
                query_memory_bytes, query_memory_per_statement_bytes, max_concurrent_queries,
                statement_timeout_secs, token_ttl_secs, tls_cert, tls_key, compaction_target_rows,
                compaction_min_segments, compaction_max_inputs, request_id_window_secs,
                retired_file_grace_secs, compaction_interval_secs, collectors;
            switches: without_auth, no_stamping, no_compaction;
            flag_only: config, demo, wal_recovery
        );
        Ok(s)
    }

    pub fn resolve(&self) -> Result<ServeConfig, ConfigError> {
        let s = self.with_file()?;
        let flush_rows = s.flush_rows.unwrap_or(DEFAULT_FLUSH_ROWS);
        let flush_bytes = s.flush_bytes.unwrap_or(DEFAULT_FLUSH_BYTES);
        let row_group_rows = s
            .row_group_rows
            .unwrap_or(SegmentOptions::default().row_group_rows);
        let token_ttl_secs = s.token_ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        let compaction_defaults = CompactionConfig::default();
        let compaction = CompactionConfig {
            background: !s.no_compaction,
            policy: CompactionPolicy {
                target_rows: s
                    .compaction_target_rows
                    .unwrap_or(compaction_defaults.policy.target_rows),
                min_segments: s
                    .compaction_min_segments
                    .unwrap_or(compaction_defaults.policy.min_segments),
                max_inputs: s
                    .compaction_max_inputs
                    .unwrap_or(compaction_defaults.policy.max_inputs),
            },
            interval: s
                .compaction_interval_secs
                .map_or(compaction_defaults.interval, Duration::from_secs),
        };
        for (name, value, least) in [
            (
                "compaction_target_rows",
                compaction.policy.target_rows as usize,
                2,
            ),
            ("compaction_min_segments", compaction.policy.min_segments, 2),
            ("compaction_max_inputs", compaction.policy.max_inputs, 2),
            (
                "compaction_interval_secs",
                compaction.interval.as_secs() as usize,
                1,
            ),
        ] {
            if value < least {
                return Err(ConfigError::Invalid {
                    name,
                    reason: format!("must be at least {least}"),
                });
            }
        }
        for (name, value) in [
            ("flush_rows", flush_rows),
            ("flush_bytes", flush_bytes),
            ("row_group_rows", row_group_rows),
            ("token_ttl_secs", token_ttl_secs as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        Ok(ServeConfig {
            listen: s.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into()),
            http_listen: s
                .http_listen
                .clone()
                .unwrap_or_else(|| DEFAULT_HTTP_LISTEN.into()),
            engine: EngineConfig {
                data_dir: s
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
                wal_fsync: s.wal_sync.unwrap_or(WalSync::Fsync) == WalSync::Fsync,
                flush_rows,
                flush_bytes,
                flush_age: Duration::from_secs(s.flush_age_secs.unwrap_or(DEFAULT_FLUSH_AGE_SECS)),
                max_request_bytes: s.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
                max_buffered_rows: s.max_buffered_rows.unwrap_or(flush_rows.saturating_mul(4)),
                max_buffered_bytes: s
                    .max_buffered_bytes
                    .unwrap_or(flush_bytes.saturating_mul(4)),
                segment: SegmentOptions {
                    row_group_rows,
                    ..SegmentOptions::default()
                },
                stamping: !s.no_stamping,
                compaction,
                wal_salvage: s.wal_recovery == WalRecovery::Salvage,
                request_id_window: Duration::from_secs(
                    s.request_id_window_secs
                        .unwrap_or(DEFAULT_REQUEST_ID_WINDOW_SECS),
                ),
                min_free_bytes: s.min_free_bytes.unwrap_or(DEFAULT_MIN_FREE_BYTES),
                disk: crate::storage::disk::real(),
                retired_file_grace: Duration::from_secs(
                    s.retired_file_grace_secs
                        .unwrap_or(DEFAULT_RETIRED_FILE_GRACE_SECS),
                ),
                max_write_wait: Duration::from_secs(
                    s.max_write_wait_secs.unwrap_or(DEFAULT_MAX_WRITE_WAIT_SECS),
                ),
            },
            query: {
                let (default_memory, _) = QueryMemory::default_budget();
                let memory = s.query_memory_bytes.unwrap_or(default_memory);
                let per_statement = s.query_memory_per_statement_bytes.unwrap_or(memory / 4);
                QueryOptions {
                    max_history_intervals: s
                        .max_history_intervals
                        .unwrap_or(retrieval::DEFAULT_MAX_INTERVALS),
                    memory: QueryMemory::new(memory, per_statement),
                    max_concurrent: s
                        .max_concurrent_queries
                        .unwrap_or(query::DEFAULT_MAX_CONCURRENT),
                    statement_timeout: s
                        .statement_timeout_secs
                        .filter(|&s| s > 0)
                        .map(Duration::from_secs),
                    extra_tables: Vec::new(),
                }
            },
            token_ttl: Duration::from_secs(token_ttl_secs),
            tls: s.tls_files()?,
            without_auth: s.without_auth,
            demo: s.demo,
            collectors: s.collectors.clone(),
            admin_password: std::env::var("LOTLINE_ADMIN_PASSWORD").ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each flag's `[default: ...]` says what `resolve` uses.
    #[test]
    fn help_texts_state_the_defaults_resolve_uses() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let policy = CompactionPolicy::default();
        let compaction = CompactionConfig::default();
        let expected: std::collections::BTreeMap<&str, String> = [
            ("data_dir", DEFAULT_DATA_DIR.to_string()),
            ("listen", DEFAULT_LISTEN.to_string()),
            ("http_listen", DEFAULT_HTTP_LISTEN.to_string()),
            ("wal_sync", "fsync".to_string()),
            ("flush_rows", DEFAULT_FLUSH_ROWS.to_string()),
            ("flush_bytes", DEFAULT_FLUSH_BYTES.to_string()),
            ("flush_age_secs", DEFAULT_FLUSH_AGE_SECS.to_string()),
            ("max_buffered_rows", "4 x flush_rows".to_string()),
            ("max_buffered_bytes", "4 x flush_bytes".to_string()),
            ("min_free_bytes", DEFAULT_MIN_FREE_BYTES.to_string()),
            (
                "max_write_wait_secs",
                DEFAULT_MAX_WRITE_WAIT_SECS.to_string(),
            ),
            ("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES.to_string()),
            (
                "row_group_rows",
                SegmentOptions::default().row_group_rows.to_string(),
            ),
            (
                "max_history_intervals",
                retrieval::DEFAULT_MAX_INTERVALS.to_string(),
            ),
            (
                "query_memory_bytes",
                "half of the machine's memory".to_string(),
            ),
            (
                "query_memory_per_statement_bytes",
                "a quarter of --query-memory-bytes".to_string(),
            ),
            (
                "max_concurrent_queries",
                query::DEFAULT_MAX_CONCURRENT.to_string(),
            ),
            ("statement_timeout_secs", "no limit".to_string()),
            ("token_ttl_secs", DEFAULT_TOKEN_TTL_SECS.to_string()),
            ("compaction_target_rows", policy.target_rows.to_string()),
            ("compaction_min_segments", policy.min_segments.to_string()),
            ("compaction_max_inputs", policy.max_inputs.to_string()),
            (
                "request_id_window_secs",
                DEFAULT_REQUEST_ID_WINDOW_SECS.to_string(),
            ),
            (
                "retired_file_grace_secs",
                DEFAULT_RETIRED_FILE_GRACE_SECS.to_string(),
            ),
            (
                "compaction_interval_secs",
                compaction.interval.as_secs().to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let command = <Serve as clap::CommandFactory>::command();
        let mut stated = std::collections::BTreeMap::new();
        for arg in command.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            if let Some((_, rest)) = help.split_once("[default: ") {
                let value = rest.split(']').next().unwrap_or_default().to_string();
                stated.insert(arg.get_id().as_str().to_string(), value);
            }
        }
        let expected: std::collections::BTreeMap<String, String> = expected
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(stated, expected);
        // And resolve uses them.
        let c = ServeArgs::default().resolve().unwrap();
        assert_eq!(c.engine.flush_rows, DEFAULT_FLUSH_ROWS);
        assert_eq!(c.engine.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            c.engine.segment.row_group_rows,
            SegmentOptions::default().row_group_rows
        );
        assert_eq!(c.token_ttl, Duration::from_secs(DEFAULT_TOKEN_TTL_SECS));
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lotline.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:6000\"\nhttp_listen = \"0.0.0.0:6001\"\nflush_rows = 42\nwal_sync = \"none\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            flush_rows: Some(7),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen, "0.0.0.0:6000");
        assert_eq!(c.http_listen, "0.0.0.0:6001");
        assert_eq!(c.engine.flush_rows, 7);
        assert_eq!(c.engine.flush_bytes, DEFAULT_FLUSH_BYTES);
        assert_eq!(c.engine.max_buffered_bytes, 4 * DEFAULT_FLUSH_BYTES);
        assert!(!c.engine.wal_fsync);
        std::fs::write(&path, "flush_rowz = 1\n").unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("flush_rowz"), "{err}");
        // Switches in the file turn things off; flag-only settings are not file keys.
        std::fs::write(&path, "no_compaction = true\nwithout_auth = true\n").unwrap();
        let c = args.resolve().unwrap();
        assert!(!c.engine.compaction.background && c.without_auth);
        for key in [
            "demo = true",
            "wal_recovery = \"salvage\"",
            "config = \"x.toml\"",
        ] {
            std::fs::write(&path, key).unwrap();
            let err = args.resolve().unwrap_err().to_string();
            assert!(err.contains("unknown field"), "{key}: {err}");
        }
    }

    #[test]
    fn token_lifetime_and_tls_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lotline.toml");
        std::fs::write(
            &path,
            "token_ttl_secs = 2\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = from_file.resolve().unwrap();
        assert_eq!(c.token_ttl, Duration::from_secs(2));
        let tls = c.tls.unwrap();
        assert_eq!(
            (tls.cert.to_str(), tls.key.to_str()),
            (Some("c.pem"), Some("k.pem"))
        );
        // Defaults: a day, no TLS.
        let c = ServeArgs::default().resolve().unwrap();
        assert_eq!(c.token_ttl, Duration::from_secs(86_400));
        assert!(c.tls.is_none());
        // A flag overrides; half a pair and a zero lifetime are errors.
        let mut args = ServeArgs {
            config: Some(path.clone()),
            token_ttl_secs: Some(30),
            tls_cert: Some("flag.pem".into()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.token_ttl, Duration::from_secs(30));
        assert_eq!(c.tls.unwrap().cert.to_str(), Some("flag.pem"));
        std::fs::write(&path, "tls_cert = \"c.pem\"\n").unwrap();
        args.tls_cert = None;
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("tls_key is not"), "{err}");
        args.config = None;
        args.token_ttl_secs = Some(0);
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("token_ttl_secs"), "{err}");
    }
}
