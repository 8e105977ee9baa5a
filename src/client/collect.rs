//! `lotline collect`: the collectors of a mapping file at the edge, with a
//! durable queue on local disk, forwarding to a server over gRPC
//! ([`crate::collect::forward`]). Runs until SIGINT or SIGTERM; the queue
//! keeps whatever was not acknowledged for the next run.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;

use super::{ClientError, ConnectArgs};
use crate::collect::{forward, mapping, queue::Queue};

/// Where the edge keeps its queue and how large it may grow.
#[derive(clap::Args, Debug, Clone)]
pub struct CollectArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The collectors' mapping file (TOML, see docs/COLLECTORS.md)
    #[arg(long, env = "LOTLINE_COLLECTORS")]
    pub collectors: PathBuf,
    /// Directory of the store-and-forward queue (created if missing)
    #[arg(long, default_value = "lotline-queue")]
    pub buffer_dir: PathBuf,
    /// Most bytes the queue keeps on disk; beyond it the oldest batches are
    /// dropped (and counted in the log)
    #[arg(long, default_value_t = 1 << 30)]
    pub buffer_max_bytes: u64,
}

/// Runs the edge until a stop signal.
pub async fn run_collect(args: &CollectArgs) -> Result<(), ClientError> {
    let mapping = mapping::load(&args.collectors).map_err(|e| ClientError::Usage(e.to_string()))?;
    let queue = Queue::open(&args.buffer_dir, args.buffer_max_bytes)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let (waiting, _) = queue.backlog();
    let authorization = match (&args.connect.password, args.connect.no_auth) {
        (_, true) => None,
        (Some(password), false) => {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", args.connect.user));
            Some(format!("Basic {basic}").parse().map_err(|_| {
                ClientError::Usage("the user name or password is not header text".into())
            })?)
        }
        (None, false) => {
            return Err(ClientError::MissingPassword {
                user: args.connect.user.clone(),
            });
        }
    };
    let channel = super::lazy_channel(&args.connect)?;
    println!(
        "lotline collect: {} collector(s) from {}, queue {} ({waiting} batch(es) waiting), forwarding to {}",
        mapping.collectors.len(),
        mapping.file.display(),
        args.buffer_dir.display(),
        args.connect.endpoint
    );
    let _board = forward::run_edge(&mapping, Arc::new(queue), channel, authorization);
    crate::server::shutdown_signal().await;
    Ok(())
}
