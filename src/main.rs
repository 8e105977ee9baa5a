//! The `lotline` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lotline::client::{self, ConnectArgs, OutputFormat};
use lotline::config::ServeArgs;

const SERVE_NOTES: &str =
    "On first start user 'admin' (role admin) is created with the password in \
LOTLINE_ADMIN_PASSWORD, or a generated one that is printed once and written to \
<data-dir>/admin-password (mode 0600). Add more users with `lotline user add NAME --role \
reader|writer|admin`: readers query, writers also write and flush, admins also manage users.

TLS: --tls-cert and --tls-key take PEM files and cover both listeners (grpc+tls://, https://). \
A self-signed certificate for testing (rustls clients need CA:FALSE):
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
-out cert.pem -days 365 -subj /CN=lotline -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
-addext basicConstraints=critical,CA:FALSE
Clients then trust cert.pem: `lotline sql --endpoint grpc+tls://127.0.0.1:50051 --tls-ca cert.pem`.

LOTLINE_LOG sets the log filter (default info).";

#[derive(Parser)]
#[command(
    name = "lotline",
    version,
    about = "Factory historian and traceability query engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on a data directory
    #[command(after_help = SERVE_NOTES)]
    Serve(ServeArgs),
    /// Run the server with the demo plant loaded (same as `serve --demo`)
    Demo(ServeArgs),
    /// Run SQL against a server: one statement, or an interactive shell without one
    Sql {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Output format
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        /// The statement; omit it for an interactive shell with history
        query: Option<String>,
    },
    /// Load a CSV (with header) or Parquet file into a table, or a B2MML
    /// document (operations schedule, material or equipment information)
    Load {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Target table of a CSV or Parquet file (samples, tags, equipment,
        /// work_orders, lots, production_runs, genealogy, ...)
        #[arg(long, required_unless_present = "format")]
        table: Option<String>,
        /// b2mml: the file is a B2MML V0701 document; prints the server's
        /// ConfirmBOD [default: by the file's extension, .csv or .parquet]
        #[arg(long, value_enum, conflicts_with = "table")]
        format: Option<DocumentFormat>,
        /// Rows per acknowledged request
        #[arg(long, default_value_t = 100_000)]
        batch_rows: usize,
        file: PathBuf,
    },
    /// Export production performance as a B2MML ShowOperationsPerformance
    /// document: the work orders named, or those with a run in a time range
    Export {
        #[command(flatten)]
        connect: ConnectArgs,
        #[arg(long, value_enum)]
        format: DocumentFormat,
        /// A work order to report (repeat for several)
        #[arg(long = "work-order")]
        work_orders: Vec<String>,
        /// Start of the time range (RFC 3339), instead of work orders
        #[arg(long, requires = "end")]
        start: Option<String>,
        /// End of the time range (RFC 3339, exclusive)
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// The receiving system's LogicalID (ApplicationArea/Receiver)
        #[arg(long)]
        receiver: Option<String>,
        /// Write the document to this file instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Run collectors at the edge: read the machines of a mapping file, queue
    /// the samples on local disk and forward them to a server over gRPC
    /// (store-and-forward: nothing is lost while the server is unreachable)
    Collect(client::CollectArgs),
    /// Flush every write buffer to Parquet segments now (role writer or admin)
    Flush {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Stamp samples written before their production run was recorded with
    /// its work order and lot: the server flushes, then rewrites the
    /// segments concerned (role writer or admin); prints a JSON report
    Restamp {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Merge the small segments of every table and date partition into few
    /// large ones now (role admin); prints a JSON report once they are live
    Compact {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Manage the users of a running server (admin; anyone may change their own password)
    User {
        #[command(subcommand)]
        command: client::UserCommand,
    },
    /// Measure a running server: durable ingest, bytes per sample, the query mix, soak
    Bench(lotline::bench::BenchArgs),
    /// Generate a synthetic plant (datasets/plants/) into files or a running server
    Generate(lotline::generate::GenerateArgs),
    /// Check the audit hash chain and every segment file against the manifest
    /// (read-only; safe beside a running server). Exits non-zero on failure
    VerifyAudit {
        #[arg(long, env = "LOTLINE_DATA_DIR", default_value = "lotline-data")]
        data_dir: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show a data directory's manifest, segments and WAL (read-only)
    Inspect {
        #[arg(long, env = "LOTLINE_DATA_DIR", default_value = "lotline-data")]
        data_dir: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// Document formats of `load` and `export` beside CSV and Parquet.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DocumentFormat {
    /// ISA-95 B2MML V0701 (MESA)
    B2mml,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result: Result<(), Box<dyn std::error::Error>> = async {
        match cli.command {
            Command::Serve(args) => lotline::server::serve(args.resolve()?).await?,
            Command::Demo(args) => {
                let mut config = args.resolve()?;
                config.demo = true;
                lotline::server::serve(config).await?
            }
            Command::Sql {
                connect,
                format,
                query,
            } => client::run_sql(&connect, query, format).await?,
            Command::Load {
                connect,
                table,
                format,
                batch_rows,
                file,
            } => match (format, table) {
                (Some(DocumentFormat::B2mml), _) => {
                    print!("{}", client::b2mml::load(&connect, &file).await?)
                }
                (None, Some(table)) => {
                    client::run_load(&connect, &file, &table, batch_rows).await?;
                }
                (None, None) => unreachable!("clap requires --table without --format"),
            },
            Command::Export {
                connect,
                format: DocumentFormat::B2mml,
                work_orders,
                start,
                end,
                receiver,
                output,
            } => {
                let time = |name: &str, text: Option<String>| -> Result<Option<i64>, String> {
                    text.map(|t| {
                        chrono::DateTime::parse_from_rfc3339(&t)
                            .ok()
                            .and_then(|t| t.timestamp_nanos_opt())
                            .ok_or_else(|| format!("--{name} {t:?} is not an RFC 3339 time"))
                    })
                    .transpose()
                };
                let request = client::b2mml::PerformanceRequest {
                    work_orders,
                    start: time("start", start)?,
                    end: time("end", end)?,
                    receiver,
                };
                let xml = client::b2mml::export(&connect, &request).await?;
                match output {
                    Some(path) => std::fs::write(&path, xml)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                    None => print!("{xml}"),
                }
            }
            Command::Bench(args) => {
                let report = lotline::bench::run(&args).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", lotline::bench::render(&report));
                }
            }
            Command::Generate(args) => {
                let report = lotline::generate::run(&args).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", lotline::generate::render(&report));
                }
            }
            Command::Collect(args) => client::run_collect(&args).await?,
            Command::Flush { connect } => println!("{}", client::run_flush(&connect).await?),
            Command::Restamp { connect } => println!("{}", client::run_restamp(&connect).await?),
            Command::Compact { connect } => println!("{}", client::run_compact(&connect).await?),
            Command::User { command } => print!("{}", client::run_user(&command).await?),
            Command::VerifyAudit { data_dir, json } => {
                if !data_dir
                    .join(lotline::storage::manifest::FILE_NAME)
                    .exists()
                    && !data_dir.join("wal").exists()
                {
                    return Err(
                        format!("{} is not a lotline data directory", data_dir.display()).into(),
                    );
                }
                let report = lotline::audit::verify::verify_data_dir(&data_dir)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", lotline::audit::verify::render(&report));
                }
                if !report.ok() {
                    return Err("audit verification failed".into());
                }
            }
            Command::Inspect { data_dir, json } => {
                let report = lotline::inspect::inspect(&data_dir)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", lotline::inspect::render(&report));
                }
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
