//! The collectors of one mapping file while they run. [`Collectors::start`]
//! upserts the mapped tags and starts one task per collector;
//! [`Collectors::reload`] reads the same file again (SIGHUP to `lotline
//! serve`): a collector whose definition is unchanged keeps running, with
//! its connection and its status row; a changed or new one starts, a
//! removed one stops. A file with an error changes nothing: the error is
//! logged and recorded in `audit_log`, and the running collectors go on.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::mapping::{self, Collector, Mapping, Protocol};
use super::status::{Row, StatusBoard};
use super::{CollectError, SampleSink, Session, modbus, mtconnect, opcua, sparkplug, tags};
use crate::audit::Event;
use crate::ingest::Engine;
use crate::model;

/// One running collector.
struct Running {
    collector: Collector,
    row: Row,
    task: JoinHandle<()>,
}

impl Running {
    fn spawn(collector: Collector, sink: Arc<dyn SampleSink>) -> Self {
        let row = StatusBoard::fresh_row(&collector);
        let session = Session {
            name: collector.name.clone(),
            endpoint: collector.endpoint.clone(),
            sink,
            row: row.clone(),
        };
        let endpoint = collector.endpoint.clone();
        let task = match &collector.protocol {
            Protocol::Modbus { settings, points } => tokio::spawn(modbus::run(
                endpoint,
                settings.clone(),
                Arc::new(points.clone()),
                session,
            )),
            Protocol::OpcUa { settings, points } => tokio::spawn(opcua::run(
                endpoint,
                settings.clone(),
                Arc::new(points.clone()),
                session,
            )),
            Protocol::Sparkplug { settings, points } => tokio::spawn(sparkplug::host::run(
                endpoint,
                settings.clone(),
                Arc::new(points.clone()),
                session,
            )),
            Protocol::MtConnect { settings, points } => tokio::spawn(mtconnect::agent::run(
                endpoint,
                settings.clone(),
                Arc::new(points.clone()),
                session,
            )),
        };
        Self {
            collector,
            row,
            task,
        }
    }

    /// Stops the collector; it writes nothing more once this returns.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub kept: usize,
    pub started: usize,
    pub stopped: usize,
}

/// The running collectors of one mapping file, and their status board.
pub struct Collectors {
    file: PathBuf,
    sink: Arc<dyn SampleSink>,
    board: Arc<StatusBoard>,
    running: tokio::sync::Mutex<Vec<Running>>,
}

impl Collectors {
    /// Starts every collector of `mapping`, writing to `sink`, without
    /// touching `tags` (at the edge, tags are upserted over Flight SQL).
    pub fn spawn(mapping: &Mapping, sink: Arc<dyn SampleSink>) -> Arc<Self> {
        let running: Vec<Running> = mapping
            .collectors
            .iter()
            .map(|c| Running::spawn(c.clone(), sink.clone()))
            .collect();
        let board = Arc::new(StatusBoard::default());
        board.show(running.iter().map(|r| r.row.clone()).collect());
        Arc::new(Self {
            file: mapping.file.clone(),
            sink,
            board,
            running: tokio::sync::Mutex::new(running),
        })
    }

    /// Upserts the mapped tags into `tags`, records the mapping in
    /// `audit_log` and starts every collector of `mapping`.
    pub async fn start(
        mapping: &Mapping,
        engine: &Arc<Engine>,
        sink: Arc<dyn SampleSink>,
    ) -> Result<Arc<Self>, CollectError> {
        let mut mapping = mapping.clone();
        name_by_aliases(&mut mapping, engine).await?;
        tags::upsert(&mapping, engine)
            .await
            .map_err(CollectError::Tags)?;
        sink.audit(Event::new("lotline", "collector.mapping").detail(summary(&mapping)))
            .await;
        Ok(Self::spawn(&mapping, sink))
    }

    /// The status of the running collectors (`collector_status`, `/metrics`).
    pub fn board(&self) -> Arc<StatusBoard> {
        self.board.clone()
    }

    /// Reads the mapping file again and applies it (see the module
    /// documentation). On `Err` nothing changed.
    pub async fn reload(&self, engine: &Arc<Engine>) -> Result<Reloaded, CollectError> {
        let loaded = async {
            let mut mapping = mapping::load(&self.file)?;
            name_by_aliases(&mut mapping, engine).await?;
            tags::upsert(&mapping, engine)
                .await
                .map_err(CollectError::Tags)?;
            Ok::<_, CollectError>(mapping)
        }
        .await;
        let mapping = match loaded {
            Ok(mapping) => mapping,
            Err(e) => {
                tracing::error!("collectors' mapping not reloaded: {e}");
                let refused = Event::new("lotline", "collector.reload_refused")
                    .detail(format!("file={}: {e}", self.file.display()));
                self.sink.audit(refused).await;
                return Err(e);
            }
        };
        let mut running = self.running.lock().await;
        let mut old: Vec<Option<Running>> = running.drain(..).map(Some).collect();
        // Unchanged collectors are taken over as they run.
        let mut kept: Vec<Option<Running>> = mapping
            .collectors
            .iter()
            .map(|c| {
                old.iter_mut()
                    .find(|r| r.as_ref().is_some_and(|r| &r.collector == c))
                    .and_then(Option::take)
            })
            .collect();
        // The others stop before their successors start, so no two sessions
        // of one collector name write at once.
        let mut stopped = 0;
        for gone in old.into_iter().flatten() {
            gone.stop().await;
            stopped += 1;
        }
        let mut change = Reloaded {
            kept: kept.iter().flatten().count(),
            started: 0,
            stopped,
        };
        for (slot, collector) in kept.iter_mut().zip(&mapping.collectors) {
            if slot.is_none() {
                *slot = Some(Running::spawn(collector.clone(), self.sink.clone()));
                change.started += 1;
            }
        }
        *running = kept.into_iter().flatten().collect();
        self.board
            .show(running.iter().map(|r| r.row.clone()).collect());
        let detail = format!(
            "{} kept={} started={} stopped={}",
            summary(&mapping),
            change.kept,
            change.started,
            change.stopped
        );
        tracing::info!("collectors' mapping reloaded: {detail}");
        self.sink
            .audit(Event::new("lotline", "collector.reload").detail(detail))
            .await;
        Ok(change)
    }
}

/// `file=… collectors=… points=…`, as `audit_log` records a mapping.
fn summary(mapping: &Mapping) -> String {
    let points: usize = mapping.collectors.iter().map(|c| c.tags().len()).sum();
    format!(
        "file={} collectors={} points={points}",
        mapping.file.display(),
        mapping.collectors.len()
    )
}

/// Names the map entries that `aliases` names (see [`super::aliases`]).
async fn name_by_aliases(mapping: &mut Mapping, engine: &Arc<Engine>) -> Result<(), CollectError> {
    if mapping.by_alias.is_empty() {
        return Ok(());
    }
    let aliases = super::aliases::current(engine)
        .await
        .map_err(CollectError::Tags)?;
    let systems = model::table("systems").expect("the systems table");
    let systems = engine
        .current_rows(systems)
        .await
        .map_err(CollectError::Tags)?;
    let tags = engine
        .current_rows(model::tags())
        .await
        .map_err(CollectError::Tags)?;
    let tags =
        model::columns::strings(&tags, "tags", "tag").map_err(|e| CollectError::Tags(e.into()))?;
    let tags: std::collections::HashSet<&str> = tags.iter().flatten().collect();
    let drafts = super::aliases::resolve(
        mapping,
        &aliases,
        |system| model::unknown_ids(&systems, system).unwrap_or(model::UnknownIds::Refuse),
        |tag| tags.contains(tag),
    )?;
    super::aliases::write_drafts(engine, mapping, &drafts)
        .await
        .map_err(CollectError::Tags)
}
