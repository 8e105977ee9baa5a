//! The network side: `lotline serve` opens the engine, optionally writes the
//! demo plant, and serves Flight SQL with the `lotline.v1` gRPC services on
//! one port, and HTTP (health, metrics, line protocol) on another, both over
//! TLS if configured, until SIGINT/SIGTERM, then flushes.

pub mod access_audit;
pub mod actions;
pub mod auth;
pub mod authenticate;
pub mod b2mml;
pub mod bound_parameters;
pub mod console;
pub mod execute;
pub mod flight;
pub mod flight_data;
pub mod flight_front;
pub mod grpc;
pub mod handle;
mod handshake;
pub mod http;
pub mod http_auth;
pub mod influx;
pub mod ipc_guard;
pub mod metadata;
pub mod metrics;
pub mod plan_cache;
pub mod prepared;
pub mod reason;
pub mod statement;
pub mod tls;
pub mod unsupported;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::flight_service_server::FlightServiceServer;
use tracing::{info, warn};

use crate::config::ServeConfig;
use crate::ingest::{Engine, IngestError};
use auth::{AdminBootstrap, Auth, AuthError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("listen address '{addr}': {reason}")]
    Listen { addr: String, reason: String },
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("collectors' mapping: {0}")]
    Mapping(#[from] crate::collect::mapping::MappingError),
    #[error("{0}")]
    Collect(#[from] crate::collect::CollectError),
}

/// Runs a server until it is asked to stop.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let addr = resolve(&config.listen).await?;
    let http_addr = resolve(&config.http_listen).await?;
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    // A bad mapping stops the start before anything is opened.
    let mapping = config
        .collectors
        .as_deref()
        .map(crate::collect::mapping::load)
        .transpose()?;
    let engine = Engine::open(config.engine.clone())?;
    engine.reconcile_segments().await?;
    let metrics = Arc::new(metrics::Metrics::new());
    metrics.observe_engine(&engine);
    let auth = if config.without_auth {
        warn!(
            "authentication is OFF (--without-auth): anyone who reaches {addr} can read and write"
        );
        None
    } else {
        let (auth, bootstrap) = Auth::open(
            engine.data_dir(),
            config.admin_password.as_deref(),
            config.token_ttl,
        )?;
        match bootstrap {
            AdminBootstrap::Generated { password, file } => {
                println!("Created user 'admin' with password: {password}");
                println!(
                    "(also written to {}; it is shown only this once)",
                    file.display()
                );
            }
            AdminBootstrap::FromEnv => {
                info!("created user 'admin' with the password from LOTLINE_ADMIN_PASSWORD")
            }
            AdminBootstrap::Existing => {}
        }
        Some(Arc::new(auth))
    };
    if config.demo {
        crate::demo::load_demo(&engine).await?;
    }
    let mut query_options = config.query.clone();
    if let Some(mapping) = &mapping {
        let sink = Arc::new(crate::collect::EngineSink(engine.clone()));
        let collectors = crate::collect::Collectors::start(mapping, &engine, sink).await?;
        let board = collectors.board();
        metrics.observe_collectors(board.clone());
        tokio::spawn(reload_on_hangup(collectors, engine.clone()));
        query_options.extra_tables.push((
            crate::collect::status::TABLE_NAME,
            crate::query::computed::ComputedTable::provider(crate::collect::status::StatusRows(
                board,
            )),
        ));
        info!(
            "collectors: {} from {}",
            mapping.collectors.len(),
            mapping.file.display()
        );
    }
    let flusher = engine.spawn_flusher();
    let compactor = config
        .engine
        .compaction
        .background
        .then(|| engine.spawn_compactor());
    let (listener, bound) = bind(addr).await?;
    let (http_listener, http_bound) = bind(http_addr).await?;
    let (gate_auth, gate_metrics) = (auth.clone(), metrics.clone());
    let service = flight::LotlineFlightSql::new(engine.clone(), auth.clone(), metrics.clone())
        .with_query_options(query_options.clone());
    let http_state = Arc::new(http::HttpState {
        engine: engine.clone(),
        auth: auth.clone(),
        metrics: metrics.clone(),
        started: Instant::now(),
        console: console::Console::new(
            statement::Planner {
                engine: engine.clone(),
                options: query_options.clone(),
                metrics: metrics.clone(),
                interface: console::INTERFACE,
            },
            service.slots(),
            tls.is_some(),
        ),
    });
    // A single Flight or gRPC message may carry up to one whole request.
    let message_limit = config.engine.max_request_bytes.saturating_add(1 << 20);
    let (grpc_ingest, grpc_admin) =
        grpc::GrpcServices::new(engine.clone(), auth.clone(), metrics.clone())
            .into_servers(message_limit);

    let flight = FlightServiceServer::new(flight_front::FlightFront(service))
        .max_decoding_message_size(message_limit)
        .max_encoding_message_size(usize::MAX);
    let (grpc_scheme, http_scheme) = match tls {
        Some(_) => ("grpc+tls", "https"),
        None => ("grpc", "http"),
    };
    println!(
        "lotline listening on {bound} (Flight SQL and gRPC lotline.v1: {grpc_scheme}://{bound}), data in {}",
        engine.data_dir().display()
    );
    println!(
        "HTTP on {http_scheme}://{http_bound} (web console at {http_scheme}://{http_bound}/, /health, /metrics, InfluxDB writes /api/v2/write, /write, /api/v3/write_lp)"
    );
    // One stop signal for both listeners.
    let (stop, stop_rx) = tokio::sync::watch::channel(());
    let stopping = engine.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // A long merge (a running `lotline compact` included) gives up now
        // instead of holding the shutdown; nothing of it goes live.
        stopping.stop_compaction();
        let _ = stop.send(());
    });
    let http_stop = stopped(stop_rx.clone());
    let mut grpc = tonic::transport::Server::builder();
    let http = match tls {
        Some(tls) => {
            grpc = grpc.tls_config(tls.grpc)?;
            let listener =
                tls::TlsListener::new(http_listener, tls.http).map_err(|e| ServeError::Listen {
                    addr: http_bound.to_string(),
                    reason: e.to_string(),
                })?;
            tokio::spawn(http::serve(listener, http_state, http_stop))
        }
        None => tokio::spawn(http::serve(http_listener, http_state, http_stop)),
    };
    if config.demo {
        crate::demo::print_welcome(
            &format!("{grpc_scheme}://{bound}"),
            &format!("{http_scheme}://{http_bound}/"),
            config.without_auth,
        );
    }
    let gate = Arc::new(authenticate::Gate {
        auth: gate_auth,
        engine: engine.clone(),
        metrics: gate_metrics,
    });
    grpc.add_service(authenticate::Authenticated::new(flight, gate.clone()))
        .add_service(authenticate::Authenticated::new(grpc_ingest, gate.clone()))
        .add_service(authenticate::Authenticated::new(grpc_admin, gate))
        .serve_with_incoming_shutdown(tokio_stream_from(listener), stopped(stop_rx))
        .await?;
    match tokio::time::timeout(Duration::from_secs(30), http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!("HTTP listener: {e}"),
        Ok(Err(e)) => warn!("HTTP listener task: {e}"),
        Err(_) => warn!("HTTP requests still running after 30 s; stopping anyway"),
    }
    flusher.abort();
    if let Some(compactor) = compactor {
        compactor.abort();
    }
    info!("shutting down: flushing buffers");
    if let Err(e) = engine.flush().await {
        warn!("final flush failed (rows are safe in the WAL and replay on next start): {e}");
    }
    Ok(())
}

/// Resolves `host:port` (checked before anything is opened).
async fn resolve(addr: &str) -> Result<SocketAddr, ServeError> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ServeError::Listen {
            addr: addr.to_string(),
            reason: "not a host:port".into(),
        })
}

/// Binds a listener; returns it with the address it got (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let fail = |e: std::io::Error| ServeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(fail)?;
    let bound = listener.local_addr().map_err(fail)?;
    Ok((listener, bound))
}

/// Reloads the collectors' mapping file at every SIGHUP, as daemons do.
async fn reload_on_hangup(collectors: Arc<crate::collect::Collectors>, engine: Arc<Engine>) {
    let kind = tokio::signal::unix::SignalKind::hangup();
    let mut hangups = match tokio::signal::unix::signal(kind) {
        Ok(hangups) => hangups,
        Err(e) => {
            warn!("SIGHUP cannot reload the collectors' mapping: {e}");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        // The outcome is logged and audited by reload itself.
        let _ = collectors.reload(&engine).await;
    }
}

/// Completes when the stop signal is sent (or its sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<()>) {
    let _ = stop.changed().await;
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}

/// Returns on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("stop requested");
}
