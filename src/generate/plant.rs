//! Plant definitions (`datasets/plants/*.toml`) and the plant they describe:
//! the ISA-95 equipment tree (enterprise → sites → areas → lines → units),
//! the tag catalogue of every unit, and the schedule of work orders each line
//! runs back to back. Everything here is small (proportional to lines, units
//! and runs); samples, lots and genealogy are streamed by the other modules.

use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::GenerateError;
use super::catalog::{TagSpec, unit_specs};
use super::rng::{between, key};

/// The plants shipped in `datasets/plants/`, built into the binary.
pub const BUILTIN: [(&str, &str); 4] = [
    ("demo", include_str!("../../datasets/plants/demo.toml")),
    ("small", include_str!("../../datasets/plants/small.toml")),
    ("large", include_str!("../../datasets/plants/large.toml")),
    (
        "history",
        include_str!("../../datasets/plants/history.toml"),
    ),
];

/// Kinds of unit on a line, in line order; a line with more than four units
/// repeats them (`mixer2`, `oven2`, …).
pub const UNIT_KINDS: [&str; 4] = ["mixer", "oven", "filler", "packer"];
pub(super) const MATERIALS: [&str; 4] = [
    "cookie-choc",
    "cookie-plain",
    "wafer-vanilla",
    "cracker-salt",
];
/// Most samples (all tags together) in one chunk of time: bounds the
/// per-chunk timelines the sample stream keeps.
const MAX_CHUNK_ROWS: u64 = 2_000_000;

/// One plant definition file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlantDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    #[serde(default = "default_enterprise")]
    pub enterprise: String,
    pub sites: u32,
    pub areas_per_site: u32,
    pub lines_per_area: u32,
    pub units_per_line: u32,
    pub tags_per_unit: u32,
    /// RFC 3339 time of the first sample.
    pub start: String,
    /// How much time the samples cover: `90s`, `15m`, `1h`, `3d`.
    pub duration: String,
    /// Time between two samples of a tag: `100ms`, `1s`, `10s`.
    pub sample_period: String,
    /// Shortest and longest production run, in minutes.
    #[serde(default = "default_run_minutes")]
    pub run_minutes: [u32; 2],
    /// Genealogy edges in all (0: no genealogy).
    pub edges: u64,
    /// Edges on a path from a finished lot back to a raw lot.
    #[serde(default = "default_levels")]
    pub genealogy_levels: u32,
}

fn default_enterprise() -> String {
    "acme-foods".into()
}

fn default_run_minutes() -> [u32; 2] {
    [17, 23]
}

fn default_levels() -> u32 {
    10
}

impl PlantDef {
    /// A built-in plant by name, or a definition file by path.
    pub fn load(name_or_path: &str) -> Result<Self, GenerateError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(GenerateError::Definition {
                source_name: name_or_path.into(),
                message: format!(
                    "no such file, and not a built-in plant ({})",
                    names.join(", ")
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| GenerateError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text, name_or_path)
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Self, GenerateError> {
        toml::from_str(text).map_err(|e| GenerateError::Definition {
            source_name: source_name.into(),
            message: e.to_string(),
        })
    }
}

/// `90s`, `15m`/`15min`, `1h`, `3d`, `250ms` → milliseconds.
pub fn parse_span(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A work center: one production line.
#[derive(Debug, Clone)]
pub struct Line {
    pub id: String,
    pub site: u32,
    pub area: u32,
    /// Index of this line's runs in [`Plant::runs`].
    pub runs: Range<usize>,
}

/// A work unit on a line.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: String,
    pub line: usize,
    /// Index into [`UNIT_KINDS`].
    pub kind: usize,
    pub name: String,
}

/// One tag: a unit's sensor or setpoint.
pub struct Tag {
    pub name: String,
    pub unit: usize,
    pub(super) spec: TagSpec,
}

/// One production run: a line working one work order, producing one lot
/// (`WO-n`, `L-n` with n = 1001 + index). Times are seconds from the start;
/// the first run of a line may start before it, the last ends after the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub line: u32,
    pub start: i64,
    pub end: i64,
    pub material: u8,
}

pub fn work_order_id(run: usize) -> String {
    format!("WO-{}", 1001 + run)
}

pub fn lot_id(run: usize) -> String {
    format!("L-{}", 1001 + run)
}

/// A plant ready to generate.
pub struct Plant {
    pub def: PlantDef,
    pub seed: u64,
    pub start_ns: i64,
    pub duration_ms: u64,
    pub period_ms: u64,
    /// Samples per tag per chunk (the streaming unit of samples).
    pub chunk_samples: u64,
    pub lines: Vec<Line>,
    pub units: Vec<Unit>,
    /// Sorted by name.
    pub tags: Vec<Tag>,
    pub runs: Vec<Run>,
}

impl Plant {
    pub fn new(def: PlantDef) -> Result<Self, GenerateError> {
        let bad = |message: String| GenerateError::Definition {
            source_name: def.name.clone(),
            message,
        };
        let start = DateTime::parse_from_rfc3339(&def.start)
            .map_err(|e| bad(format!("start '{}': {e}", def.start)))?
            .with_timezone(&Utc);
        let start_ns = start
            .timestamp_nanos_opt()
            .filter(|&t| t >= 0)
            .ok_or_else(|| bad(format!("start '{}' is outside 1970..2262", def.start)))?;
        let span = |what: &str, text: &str| {
            parse_span(text).filter(|&ms| ms > 0).ok_or_else(|| {
                bad(format!(
                    "{what} '{text}': expected e.g. 500ms, 10s, 15m, 1h, 3d"
                ))
            })
        };
        let duration_ms = span("duration", &def.duration)?;
        let period_ms = span("sample_period", &def.sample_period)?;
        let [lo, hi] = def.run_minutes;
        if lo == 0 || hi < lo {
            return Err(bad(format!("run_minutes {lo}..{hi}: need 0 < min <= max")));
        }
        let counts = [
            def.sites,
            def.areas_per_site,
            def.lines_per_area,
            def.units_per_line,
            def.tags_per_unit,
        ];
        if counts.contains(&0) {
            return Err(bad(
                "sites, areas, lines, units and tags must all be at least 1".into(),
            ));
        }
        if def.genealogy_levels < 2 && def.edges > 0 {
            return Err(bad("genealogy_levels must be at least 2".into()));
        }
        let seed = def.seed;
        let mut lines = Vec::new();
        let mut runs = Vec::new();
        for site in 1..=def.sites {
            for area in 1..=def.areas_per_site {
                for _ in 0..def.lines_per_area {
                    let index = lines.len();
                    let first = runs.len();
                    plan_runs(seed, index, [lo, hi], duration_ms, &mut runs);
                    lines.push(Line {
                        id: format!("line{}", index + 1),
                        site,
                        area,
                        runs: first..runs.len(),
                    });
                }
            }
        }
        let mut units = Vec::new();
        let mut tags = Vec::new();
        for (l, line) in lines.iter().enumerate() {
            for u in 0..def.units_per_line as usize {
                let kind = u % UNIT_KINDS.len();
                let name = match u / UNIT_KINDS.len() {
                    0 => UNIT_KINDS[kind].to_string(),
                    n => format!("{}{}", UNIT_KINDS[kind], n + 1),
                };
                let id = format!("{}.{name}", line.id);
                for spec in unit_specs(kind, def.tags_per_unit as usize) {
                    tags.push(Tag {
                        name: format!("{id}.{}", spec.name),
                        unit: units.len(),
                        spec,
                    });
                }
                units.push(Unit {
                    id,
                    line: l,
                    kind,
                    name,
                });
            }
        }
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        let chunk_samples = chunk_samples(tags.len() as u64, period_ms);
        Ok(Plant {
            def,
            seed,
            start_ns,
            duration_ms,
            period_ms,
            chunk_samples,
            lines,
            units,
            tags,
            runs,
        })
    }

    /// Samples per tag over the whole duration (before gaps).
    pub fn samples_per_tag(&self) -> u64 {
        self.duration_ms.div_ceil(self.period_ms)
    }

    /// Samples in all, before gaps: an upper bound for progress bars.
    pub fn sample_estimate(&self) -> u64 {
        self.samples_per_tag() * self.tags.len() as u64
    }

    /// The run active on `line` at `t_ms` (ms from the start).
    pub fn run_at(&self, line: usize, t_ms: i64) -> usize {
        let range = self.lines[line].runs.clone();
        let slice = &self.runs[range.clone()];
        let after = slice.partition_point(|r| r.start * 1000 <= t_ms);
        range.start + after.saturating_sub(1)
    }

    /// True if run `run` has an earlier run on its line.
    pub fn runs_before(&self, run: usize) -> bool {
        self.lines[self.runs[run].line as usize].runs.start < run
    }

    /// Whether a run is still going at the end of the generated time.
    pub fn run_open(&self, run: &Run) -> bool {
        run.end * 1000 > self.duration_ms as i64
    }
}

/// Time is cut in chunks of whole hours, 10 minutes, minutes or seconds, the
/// largest that keeps one chunk of all tags under [`MAX_CHUNK_ROWS`] rows.
/// Depends only on the definition, so the output does too.
fn chunk_samples(tags: u64, period_ms: u64) -> u64 {
    for span_ms in [3_600_000u64, 600_000, 60_000, 10_000, 1_000] {
        let per_tag = (span_ms / period_ms).max(1);
        if per_tag * tags <= MAX_CHUNK_ROWS || span_ms == 1_000 {
            return per_tag;
        }
    }
    1
}

/// Work orders of one line, back to back. Lines are staggered so their
/// changeovers do not coincide.
fn plan_runs(seed: u64, line: usize, [lo, hi]: [u32; 2], duration_ms: u64, runs: &mut Vec<Run>) {
    let (lo, hi) = (lo as i64 * 60, hi as i64 * 60);
    let mut at = -((line as i64 * 420) % lo);
    let mut k = 0u64;
    while at * 1000 < duration_ms as i64 {
        let h = key(seed, &[10, line as u64, k]);
        let len = between(h, lo as u64, hi as u64) as i64;
        runs.push(Run {
            line: line as u32,
            start: at,
            end: at + len,
            material: ((h >> 20) % MATERIALS.len() as u64) as u8,
        });
        at += len;
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("250ms"), Some(250));
        assert_eq!(parse_span("10s"), Some(10_000));
        assert_eq!(parse_span("15min"), Some(900_000));
        assert_eq!(parse_span("3d"), Some(259_200_000));
        assert_eq!(parse_span("h"), None);
        assert_eq!(parse_span("5y"), None);
    }

    #[test]
    fn builtins_parse_and_have_the_advertised_shape() {
        for (name, _) in BUILTIN {
            let def = PlantDef::load(name).unwrap();
            assert_eq!(def.name, name);
        }
        let large = PlantDef::load("large").unwrap();
        let tags = large.sites
            * large.areas_per_site
            * large.lines_per_area
            * large.units_per_line
            * large.tags_per_unit;
        assert_eq!(tags, 50_000);
        assert_eq!(large.edges, 30_000_000);
        let demo = Plant::new(PlantDef::load("demo").unwrap()).unwrap();
        assert_eq!(demo.tags.len(), 300);
        assert_eq!(demo.lines.len(), 3);
        assert_eq!(demo.units[5].id, "line2.oven");
        assert!(demo.tags.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(demo.chunk_samples, 3600);
    }

    #[test]
    fn runs_cover_every_line_back_to_back() {
        let plant = Plant::new(PlantDef::load("small").unwrap()).unwrap();
        for (l, line) in plant.lines.iter().enumerate() {
            let runs = &plant.runs[line.runs.clone()];
            assert!(runs[0].start <= 0);
            assert!(runs.last().unwrap().end * 1000 >= plant.duration_ms as i64);
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(
                plant.run_at(l, 0),
                line.runs.start + usize::from(runs[0].start > 0)
            );
            let last = plant.duration_ms as i64 - 1;
            assert_eq!(plant.run_at(l, last), line.runs.end - 1);
        }
    }

    #[test]
    fn bad_definitions_are_refused() {
        let mut def = PlantDef::load("demo").unwrap();
        def.duration = "soon".into();
        let err = Plant::new(def).err().unwrap().to_string();
        assert!(err.contains("duration 'soon'"), "{err}");
        let text = include_str!("../../datasets/plants/demo.toml").replace("seed", "sead");
        assert!(PlantDef::parse(&text, "x").is_err());
    }
}
