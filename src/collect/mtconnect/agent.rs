//! Follows one MTConnect agent over HTTP: `/probe` learns the data items
//! (and upserts the units of the tags they become), `/current` seeds every
//! value, then `/sample?from=<next>&count=<count>` reads every observation
//! in sequence order, at the agent's timestamps, polling again at once
//! while the agent has more and after `poll_interval` when it has not.
//!
//! - A new `instanceId` (the agent restarted, its sequences start over):
//!   probe and seed again, counted in `resync_requests`.
//! - The sequence asked for is no longer in the agent's buffer (it
//!   overran between two requests: `OUT_OF_RANGE`, or a `firstSequence`
//!   past it): every collected item gets a BadDataLost sample just after
//!   the newest observation read, the gap is counted in `data_gaps`, and
//!   collection goes on from `/current` (what it holds that is newer).
//! - The agent unreachable: BadNoCommunication for every collected item
//!   when the loss is seen, reconnect with backoff; back, reading goes on
//!   from the next sequence, so what the agent kept meanwhile is read too.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::document::{self, DataItem, DocumentError, Observation};
use super::observation::stored;
use super::{Address, Settings, templated_tag};
use crate::collect::mapping::Point;
use crate::collect::template::PointSet;
use crate::collect::{BAD_NO_COMMUNICATION, Reading, Session as Collector, now_ns};

/// OPC UA BadDataLost: the source no longer had data of this time.
pub const BAD_DATA_LOST: u32 = 0x809D_0000;

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a step failed.
enum Failure {
    /// No answer: the agent is away.
    Unreachable(String),
    /// An answer that could not be used.
    Document(String),
}

/// What is known of the agent since its last probe.
struct Known {
    instance_id: u64,
    /// The sequence to read next.
    next: u64,
    /// Data item id → point.
    items: HashMap<String, usize>,
    /// The newest observation's time read, for data-lost markers.
    newest_ns: Option<i64>,
}

struct Agent {
    base: String,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    settings: Settings,
    points: PointSet<Address>,
    collector: Collector,
}

impl Agent {
    async fn get(&self, path: &str) -> Result<Bytes, Failure> {
        let url = format!("{}{path}", self.base);
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Failure::Document(format!("{url}: {e}")))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.get(uri))
            .await
            .map_err(|_| Failure::Unreachable(format!("{url}: no answer in {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| Failure::Unreachable(format!("{url}: {e}")))?;
        let status = response.status();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| Failure::Unreachable(format!("{url}: the body did not come")))?
            .map_err(|e| Failure::Unreachable(format!("{url}: {e}")))?
            .to_bytes();
        // Agents answer errors with an MTConnectError document and a 4xx
        // status; the document says more than the status.
        if !status.is_success() && !body.starts_with(b"<") {
            return Err(Failure::Document(format!("{url}: HTTP {status}")));
        }
        Ok(body)
    }

    fn document_failure(path: &str, e: DocumentError) -> Failure {
        Failure::Document(format!("{path}: {e}"))
    }

    /// Probes and seeds from `/current`.
    async fn begin(&mut self) -> Result<Known, Failure> {
        let probe = self.get("/probe").await?;
        let items = document::probe(&probe).map_err(|e| Self::document_failure("/probe", e))?;
        let items = self.resolve(&items).await;
        let current = self.get("/current").await?;
        let current =
            document::streams(&current).map_err(|e| Self::document_failure("/current", e))?;
        let mut known = Known {
            instance_id: current.header.instance_id,
            next: current.header.next_sequence,
            items,
            newest_ns: None,
        };
        self.write(&mut known, &current.observations, 0).await;
        Ok(known)
    }

    /// Each data item's point: mapped by id, or by a name no other item
    /// has, or made from the template; mapped sources the probe lacks are
    /// errors in the status. Units from the probe go into `tags`.
    async fn resolve(&mut self, items: &[DataItem]) -> HashMap<String, usize> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for item in items {
            if let Some(name) = &item.name {
                *names.entry(name).or_default() += 1;
            }
        }
        let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        let template = self.settings.tag_template.clone();
        let mut resolved = HashMap::new();
        let mut learned = Vec::new();
        for item in items {
            let by_name = item
                .name
                .as_ref()
                .filter(|n| names[n.as_str()] == 1 && !ids.contains(n.as_str()))
                .and_then(|n| self.points.get(&Address(n.clone())));
            let found = match self.points.get(&Address(item.id.clone())).or(by_name) {
                Some(i) => Some((i, false)),
                None => self.points.find_or_make(&Address(item.id.clone()), || {
                    Some(templated_tag(template.as_ref()?, item))
                }),
            };
            let Some((i, made)) = found else { continue };
            resolved.insert(item.id.clone(), i);
            learned.extend(self.points.learn_unit(i, made, item.units.as_ref()));
        }
        let used: HashSet<usize> = resolved.values().copied().collect();
        for (i, point) in self.points.list.iter().enumerate() {
            if !used.contains(&i) {
                self.collector.error(&format!(
                    "source '{}': no data item of the agent has this id (or this name, alone)",
                    point.address.0
                ));
            }
        }
        if !learned.is_empty() {
            self.collector.upsert_tags(learned).await;
        }
        resolved
    }

    /// Writes the observations from sequence `from` on.
    async fn write(&self, known: &mut Known, observations: &[Observation], from: u64) {
        let mut readings = Vec::with_capacity(observations.len());
        for observation in observations.iter().filter(|o| o.sequence >= from) {
            known.newest_ns = known.newest_ns.max(Some(observation.timestamp_ns));
            let Some(&point) = known.items.get(&observation.data_item_id) else {
                continue;
            };
            let s = stored(observation);
            readings.push(Reading {
                point,
                ts: observation.timestamp_ns,
                value: s.value.map(|v| self.points.list[point].scaled(v)),
                text: s.text,
                quality: s.quality,
                historical: false,
            });
        }
        self.collector.write(&self.points.list, readings).await;
    }

    /// Writes `quality` with no value for every collected item at `ts`.
    async fn mark_all(&self, known: &Known, ts: i64, quality: u32) {
        let readings = known
            .items
            .values()
            .map(|&point| Reading::bad(point, ts, quality))
            .collect();
        self.collector.write(&self.points.list, readings).await;
    }

    /// One request; whether the agent has more to read at once.
    async fn step(&mut self, state: &mut Option<Known>) -> Result<bool, Failure> {
        let Some(known) = state else {
            *state = Some(self.begin().await?);
            return Ok(false);
        };
        let path = format!("/sample?from={}&count={}", known.next, self.settings.count);
        let body = self.get(&path).await?;
        let (streams, instance_id) = match document::streams(&body) {
            Ok(streams) => {
                let instance = streams.header.instance_id;
                (Some(streams), Some(instance))
            }
            Err(DocumentError::Agent { instance_id, .. })
                if instance_id != Some(known.instance_id) =>
            {
                (None, instance_id)
            }
            Err(e) if e.is_out_of_range() => {
                self.lost(known, &e.to_string()).await;
                self.reseed(known).await?;
                return Ok(true);
            }
            Err(e) => return Err(Self::document_failure(&path, e)),
        };
        if instance_id != Some(known.instance_id) {
            self.collector.resync_requested(&format!(
                "the agent restarted (instanceId {} → {}): probing again",
                known.instance_id,
                instance_id.map_or("?".to_string(), |i| i.to_string())
            ));
            *state = None;
            return Ok(true);
        }
        let streams = streams.expect("a document of the known instance");
        if streams.header.first_sequence > known.next {
            let why = format!(
                "sequence {} asked, the agent's buffer starts at {}",
                known.next, streams.header.first_sequence
            );
            self.lost(known, &why).await;
        }
        let from = known.next;
        self.write(known, &streams.observations, from).await;
        let more = streams.header.next_sequence <= streams.header.last_sequence;
        known.next = streams.header.next_sequence.max(known.next);
        Ok(more)
    }

    /// Goes on from `/current` after a gap: what it holds that was not
    /// read yet is written.
    async fn reseed(&self, known: &mut Known) -> Result<(), Failure> {
        let current = self.get("/current").await?;
        let current =
            document::streams(&current).map_err(|e| Self::document_failure("/current", e))?;
        let from = known.next;
        self.write(known, &current.observations, from).await;
        known.next = current.header.next_sequence;
        Ok(())
    }

    /// The agent no longer has what was to be read next: marked and counted.
    async fn lost(&self, known: &Known, why: &str) {
        let at = known.newest_ns.map_or_else(now_ns, |t| t + 1);
        self.collector.data_lost(&format!("data lost: {why}"));
        self.mark_all(known, at, BAD_DATA_LOST).await;
    }
}

/// Collects from the agent at `endpoint` (`http://host:port[/prefix]`)
/// until the runtime stops.
pub(crate) async fn run(
    endpoint: String,
    settings: Settings,
    mapped: std::sync::Arc<Vec<Point<Address>>>,
    collector: Collector,
) {
    let poll = settings.poll_interval;
    let mut agent = Agent {
        base: endpoint.trim_end_matches('/').to_string(),
        http: HttpClient::builder(TokioExecutor::new()).build_http(),
        points: PointSet::new(&mapped),
        settings,
        collector,
    };
    let mut state: Option<Known> = None;
    let mut connected = false;
    let mut backoff = Duration::from_millis(500);
    loop {
        match agent.step(&mut state).await {
            Ok(more) => {
                if !std::mem::replace(&mut connected, true) {
                    agent.collector.connected().await;
                }
                backoff = Duration::from_millis(500);
                if !more {
                    tokio::time::sleep(poll).await;
                }
            }
            Err(Failure::Document(e)) => {
                agent.collector.error(&e);
                tokio::time::sleep(poll.max(Duration::from_secs(1))).await;
            }
            Err(Failure::Unreachable(e)) => {
                if std::mem::replace(&mut connected, false)
                    && let Some(known) = &state
                {
                    agent.mark_all(known, now_ns(), BAD_NO_COMMUNICATION).await;
                }
                agent.collector.disconnected(&e).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
