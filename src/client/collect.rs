//! `lotline collect`: the collectors of a mapping file at the edge, with a
//! durable queue on local disk, forwarding to a server over gRPC
//! ([`crate::collect::forward`]). Runs until SIGINT or SIGTERM; the queue
//! keeps whatever was not acknowledged for the next run.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;

use super::{ClientError, ConnectArgs};
use crate::collect::{forward, mapping, queue::Queue, tags};

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
    if let Some(entry) = mapping.by_alias.first() {
        // The edge starts (and queues) while the server is unreachable, so
        // its tags cannot depend on the server's aliases table.
        return Err(ClientError::Usage(format!(
            "{}:{}: source '{}' has no tag; lotline collect needs a tag on every map entry \
             (names through aliases are resolved by serve --collectors only)",
            mapping.file.display(),
            entry.line,
            entry.source
        )));
    }
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
    tokio::spawn(upsert_tags(args.connect.clone(), mapping));
    crate::server::shutdown_signal().await;
    Ok(())
}

/// Writes the mapped tags' metadata into the server's `tags` (as `serve
/// --collectors` does), over Flight SQL with the mapping file as the reason;
/// retried (2 s, doubling up to a minute) until the server takes it.
async fn upsert_tags(mut connect: ConnectArgs, mapping: mapping::Mapping) {
    connect.reason = Some(tags::reason(&mapping));
    let mut backoff = std::time::Duration::from_secs(2);
    loop {
        match try_upsert_tags(&connect, &mapping).await {
            Ok(0) => return,
            Ok(rows) => {
                println!("lotline collect: wrote {rows} tag(s) of the mapping into tags");
                return;
            }
            Err(e) => {
                tracing::warn!("upserting the mapped tags (retried in {backoff:?}): {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
            }
        }
    }
}

async fn try_upsert_tags(
    connect: &ConnectArgs,
    mapping: &mapping::Mapping,
) -> Result<usize, String> {
    let mut client = super::connect(connect).await.map_err(|e| e.to_string())?;
    let def = crate::model::tags();
    let batches = super::query(&mut client, &format!("SELECT * FROM {}", def.name))
        .await
        .map_err(|e| e.to_string())?;
    let current =
        arrow::compute::concat_batches(&def.schema, &batches).map_err(|e| e.to_string())?;
    let Some(batch) = tags::changes(mapping, &current).map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    let rows = batch.num_rows();
    crate::generate::output::ingest_batch(&mut client, &super::ingest_command(def.name), batch)
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows)
}
