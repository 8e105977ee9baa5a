//! The genealogy index: the lot graph of the `genealogy` table in memory, so
//! `trace_backward` / `trace_forward` never read Parquet.
//!
//! Kept like the last-value cache: the write path merges every accepted
//! `genealogy` batch after its WAL commit; on start it is rebuilt from the
//! live segments (oldest first) and then the replayed WAL rows, which gives
//! the same graph as before a crash because merging follows the table's
//! latest-wins key `(input_lot, output_lot, ts)`.
//!
//! Layout, sized for tens of millions of edges: lot ids are interned into
//! one string arena with a `hashbrown::HashTable<u32>` over it (no per-lot
//! allocation); each edge is a 32-byte record; adjacency in both directions
//! is CSR (`offsets` per lot, edge ids) built in one pass, plus a small map of
//! the edges written since, folded into the CSR once it reaches an eighth of
//! the index. [`GenealogyIndex::memory_bytes`] reports the total.

use std::collections::HashMap;
use std::hash::BuildHasher;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, TimestampNanosecondType};
use hashbrown::HashTable;

use crate::model::{self, columns, columns::ColumnError};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Marks a missing work order or equipment in an [`Edge`].
const NONE: u32 = u32::MAX;
/// Edges written since the CSR was built are folded in at this many, or at
/// an eighth of the index, whichever is larger (amortised O(1) per edge).
const MIN_REBUILD_EDGES: usize = 1 << 16;

/// The columns the index reads (all in the `genealogy` table).
pub const COLUMNS: [&str; 6] = [
    "input_lot",
    "output_lot",
    "quantity",
    "ts",
    "work_order",
    "equipment",
];

/// Strings interned to dense `u32` ids, stored once in an arena.
#[derive(Default)]
struct Interner {
    arena: String,
    /// End of string `i` in `arena` (its start is the end of `i - 1`).
    ends: Vec<u32>,
    ids: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Interner {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, id: u32) -> &str {
        slice(&self.arena, &self.ends, id)
    }

    fn find(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.ids.find(hash, |&id| self.get(id) == name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        let hash = self.hasher.hash_one(name);
        let Self {
            arena,
            ends,
            ids,
            hasher,
        } = self;
        if let Some(&id) = ids.find(hash, |&id| slice(arena, ends, id) == name) {
            return id;
        }
        let id = u32::try_from(ends.len()).expect("fewer than 4 G distinct names");
        assert!(id != NONE, "name ids must stay below the NONE marker");
        arena.push_str(name);
        ends.push(u32::try_from(arena.len()).expect("lot names fit in a 4 GiB arena"));
        let (arena, ends) = (&*arena, &*ends);
        ids.insert_unique(hash, id, |&other| {
            hasher.hash_one(slice(arena, ends, other))
        });
        id
    }

    fn memory_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.ids.capacity() * 5
    }
}

/// String `id` of an interner's arena.
fn slice<'a>(arena: &'a str, ends: &[u32], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &arena[start..ends[i] as usize]
}

/// One genealogy row: `input` was consumed into `output`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub input: u32,
    pub output: u32,
    work_order: u32,
    equipment: u32,
    pub ts: i64,
    /// NaN for null (the table's rules refuse NaN quantities).
    quantity: f64,
}

/// Which way a trace walks: towards inputs (`Backward`) or outputs (`Forward`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
}

/// Edge ids per lot: CSR for the bulk plus the edges written since.
#[derive(Default)]
struct Adjacency {
    /// `targets[offsets[lot]..offsets[lot + 1]]`; lots beyond have none here.
    offsets: Vec<u32>,
    targets: Vec<u32>,
    recent: FastMap<u32, Vec<u32>>,
}

impl Adjacency {
    fn of(&self, lot: u32) -> impl Iterator<Item = u32> + '_ {
        let l = lot as usize;
        let bulk = match self.offsets.get(l + 1) {
            Some(&end) => &self.targets[self.offsets[l] as usize..end as usize],
            None => &[],
        };
        let recent = self.recent.get(&lot).map_or(&[][..], Vec::as_slice);
        bulk.iter().chain(recent).copied()
    }

    /// CSR over `edges` grouped by `end(edge)` (counting sort, stable).
    fn build(lots: usize, edges: &[Edge], end: impl Fn(&Edge) -> u32) -> Self {
        let mut offsets = vec![0u32; lots + 1];
        for e in edges {
            offsets[end(e) as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut targets = vec![0u32; edges.len()];
        for (id, e) in edges.iter().enumerate() {
            let slot = &mut next[end(e) as usize];
            targets[*slot as usize] = id as u32;
            *slot += 1;
        }
        Self {
            offsets,
            targets,
            recent: FastMap::default(),
        }
    }

    fn memory_bytes(&self) -> usize {
        let recent: usize = self.recent.values().map(|v| 32 + v.capacity() * 4).sum();
        (self.offsets.capacity() + self.targets.capacity()) * 4 + recent
    }
}

/// The lot graph. See the module docs for its layout.
#[derive(Default)]
pub struct GenealogyIndex {
    lots: Interner,
    /// Work orders and equipment ids.
    labels: Interner,
    edges: Vec<Edge>,
    forward: Adjacency,
    backward: Adjacency,
    /// Edges `edges[csr_edges..]` are only in the adjacency's `recent` maps.
    csr_edges: usize,
}

/// How the trace reached one lot: the step it came from and the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub lot: u32,
    pub depth: u32,
    /// Index of the parent step in the trace and the edge taken from it.
    pub via: Option<(usize, u32)>,
}

impl GenealogyIndex {
    /// Builds the index from batches in write order (segments oldest first,
    /// then the replayed WAL); a later row of a key replaces an earlier one.
    pub fn load<'a>(
        batches: impl IntoIterator<Item = &'a RecordBatch>,
    ) -> Result<Self, ColumnError> {
        let mut index = Self::default();
        for batch in batches {
            index.load_batch(batch)?;
        }
        index.finish_load();
        Ok(index)
    }

    /// Bulk loading, step 1: appends without looking for existing keys.
    /// Traces are not valid until [`Self::finish_load`].
    pub fn load_batch(&mut self, batch: &RecordBatch) -> Result<(), ColumnError> {
        self.append(batch, false)
    }

    /// Bulk loading, step 2: resolves rewritten keys and builds the adjacency.
    pub fn finish_load(&mut self) {
        self.rebuild();
    }

    /// Merges an accepted `genealogy` batch (any column order; at least
    /// [`COLUMNS`]). A row whose key `(input_lot, output_lot, ts)` is already
    /// present replaces that edge's attributes, so merging is idempotent.
    pub fn merge(&mut self, batch: &RecordBatch) -> Result<(), ColumnError> {
        self.append(batch, true)?;
        let recent = self.edges.len() - self.csr_edges;
        if recent > MIN_REBUILD_EDGES.max(self.csr_edges / 8) {
            self.rebuild();
        }
        Ok(())
    }

    fn append(&mut self, batch: &RecordBatch, dedup: bool) -> Result<(), ColumnError> {
        let table = model::genealogy().name;
        let strings = |name| columns::strings(batch, table, name);
        let input = strings("input_lot")?;
        let output = strings("output_lot")?;
        let quantity = columns::primitives::<Float64Type>(batch, table, "quantity")?;
        let ts = columns::primitives::<TimestampNanosecondType>(batch, table, "ts")?;
        let work_order = strings("work_order")?;
        let equipment = strings("equipment")?;
        let label = |this: &mut Self, a: &StringArray, row: usize| {
            if a.is_valid(row) {
                this.labels.intern(a.value(row))
            } else {
                NONE
            }
        };
        for row in 0..batch.num_rows() {
            debug_assert!(input.is_valid(row) && output.is_valid(row) && ts.is_valid(row));
            let edge = Edge {
                input: self.lots.intern(input.value(row)),
                output: self.lots.intern(output.value(row)),
                work_order: label(self, work_order, row),
                equipment: label(self, equipment, row),
                ts: ts.value(row),
                quantity: if quantity.is_valid(row) {
                    quantity.value(row)
                } else {
                    f64::NAN
                },
            };
            if dedup {
                let existing = self.forward.of(edge.input).find(|&e| {
                    self.edges[e as usize].output == edge.output
                        && self.edges[e as usize].ts == edge.ts
                });
                if let Some(e) = existing {
                    self.edges[e as usize] = edge;
                    continue;
                }
            }
            let id = u32::try_from(self.edges.len()).expect("fewer than 4 G edges");
            self.edges.push(edge);
            if dedup {
                self.forward.recent.entry(edge.input).or_default().push(id);
                self.backward
                    .recent
                    .entry(edge.output)
                    .or_default()
                    .push(id);
            }
        }
        Ok(())
    }

    /// Drops replaced versions of a key (keeping the last written) and
    /// rebuilds both CSR adjacencies over all edges.
    fn rebuild(&mut self) {
        let mut order: Vec<u32> = (0..self.edges.len() as u32).collect();
        let key = |e: &Edge| (e.input, e.output, e.ts);
        order.sort_by_key(|&i| key(&self.edges[i as usize]));
        // Stable sort: within a key, the last index is the last write.
        let mut keep: Vec<u32> = order
            .chunk_by(|&a, &b| key(&self.edges[a as usize]) == key(&self.edges[b as usize]))
            .map(|group| *group.last().expect("non-empty group"))
            .collect();
        drop(order);
        if keep.len() != self.edges.len() {
            keep.sort_unstable();
            self.edges = keep.iter().map(|&i| self.edges[i as usize]).collect();
        }
        drop(keep);
        self.edges.shrink_to_fit();
        let lots = self.lots.len();
        self.forward = Adjacency::build(lots, &self.edges, |e| e.input);
        self.backward = Adjacency::build(lots, &self.edges, |e| e.output);
        self.csr_edges = self.edges.len();
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    pub fn lot_count(&self) -> usize {
        self.lots.len()
    }

    /// Bytes held (capacities, not just lengths).
    pub fn memory_bytes(&self) -> usize {
        self.lots.memory_bytes()
            + self.labels.memory_bytes()
            + self.edges.capacity() * std::mem::size_of::<Edge>()
            + self.forward.memory_bytes()
            + self.backward.memory_bytes()
    }

    pub fn lot(&self, id: u32) -> &str {
        self.lots.get(id)
    }

    pub fn edge(&self, id: u32) -> &Edge {
        &self.edges[id as usize]
    }

    pub fn quantity(&self, edge: &Edge) -> Option<f64> {
        (!edge.quantity.is_nan()).then_some(edge.quantity)
    }

    pub fn work_order(&self, edge: &Edge) -> Option<&str> {
        (edge.work_order != NONE).then(|| self.labels.get(edge.work_order))
    }

    pub fn equipment(&self, edge: &Edge) -> Option<&str> {
        (edge.equipment != NONE).then(|| self.labels.get(edge.equipment))
    }

    /// Breadth-first walk from `start`: every lot reachable through
    /// genealogy, each once at its smallest depth, the start lot itself at
    /// depth 0; no deeper than `max_depth` when given. Safe on cycles (a lot
    /// already reached is never expanded again) and diamonds.
    ///
    /// Steps come ordered by (depth, lot id). A lot reachable from several
    /// lots of the previous depth is reached through the one with the
    /// smallest lot id, then the earliest edge `ts`, then the first written
    /// edge, so the path of every lot is deterministic. An unknown lot gives
    /// an empty trace.
    pub fn trace(&self, start: &str, direction: Direction, max_depth: Option<u32>) -> Vec<Step> {
        let Some(start) = self.lots.find(start) else {
            return Vec::new();
        };
        let (adjacency, other_end): (&Adjacency, fn(&Edge) -> u32) = match direction {
            Direction::Backward => (&self.backward, |e| e.input),
            Direction::Forward => (&self.forward, |e| e.output),
        };
        let mut steps = vec![Step {
            lot: start,
            depth: 0,
            via: None,
        }];
        let mut seen: FastMap<u32, ()> = FastMap::default();
        seen.insert(start, ());
        let mut level = 0..1;
        let mut depth = 0;
        while !level.is_empty() && max_depth.is_none_or(|m| depth < m) {
            depth += 1;
            let mut found: FastMap<u32, (usize, u32)> = FastMap::default();
            for parent in level.clone() {
                for e in adjacency.of(steps[parent].lot) {
                    let next = other_end(&self.edges[e as usize]);
                    if seen.contains_key(&next) {
                        continue;
                    }
                    let candidate = (parent, e);
                    found
                        .entry(next)
                        .and_modify(|best| {
                            if self.better(&steps, candidate, *best) {
                                *best = candidate;
                            }
                        })
                        .or_insert(candidate);
                }
            }
            let mut reached: Vec<(u32, (usize, u32))> = found.into_iter().collect();
            reached.sort_unstable_by(|a, b| self.lot(a.0).cmp(self.lot(b.0)));
            let first = steps.len();
            for (lot, via) in reached {
                seen.insert(lot, ());
                steps.push(Step {
                    lot,
                    depth,
                    via: Some(via),
                });
            }
            level = first..steps.len();
        }
        debug_assert!(steps.windows(2).all(|w| w[0].depth <= w[1].depth));
        steps
    }

    /// Whether reaching a lot through `a` (parent step, edge) beats `b`.
    fn better(&self, steps: &[Step], a: (usize, u32), b: (usize, u32)) -> bool {
        let rank = |(parent, edge): (usize, u32)| {
            (
                self.lot(steps[parent].lot),
                self.edges[edge as usize].ts,
                edge,
            )
        };
        rank(a) < rank(b)
    }

    /// Lot ids from the start of the trace to step `i`.
    pub fn path<'a>(&'a self, steps: &[Step], mut i: usize) -> Vec<&'a str> {
        let depth = steps[i].depth as usize;
        let mut path = vec![self.lot(steps[i].lot)];
        while let Some((parent, _)) = steps[i].via {
            i = parent;
            path.push(self.lot(steps[i].lot));
        }
        path.reverse();
        debug_assert_eq!(path.len(), depth + 1, "a path has one lot per depth");
        path
    }
}

#[cfg(test)]
mod tests;
