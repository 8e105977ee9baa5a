//! Segment lineage in the audit chain: every manifest commit that adds or
//! removes segment files (flush, restamp, compaction) appends an entry with
//! action [`ACTION`] whose detail lists the files added (with their SHA-256)
//! and removed ([`SegmentChange`], JSON). Replaying those entries in seq order
//! ([`Lineage`]) gives the files the chain says are live; comparing that with
//! the manifest shows a live segment no entry added, an added segment that is
//! gone though no entry removed it (deleted together with its manifest
//! entry), and a live segment whose SHA-256 differs from the one recorded.
//!
//! Entries also record each added file's rows, so a start that finds files
//! gone whose rows no file it finds replaces (a compaction or restamp cut
//! short replaces them all; a file deleted outside lotline does not) records
//! them as lost ([`Lost`]), and verification fails on that entry for good:
//! rows lost between a stop and a start are never absorbed silently.
//!
//! Pure like the rest of [`crate::audit`]: the engine records and reconciles
//! (`ingest::lineage`), `verify` checks.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use serde::{Deserialize, Serialize};

use super::{AuditError, Entry, Event};
use crate::storage::Manifest;

/// `audit_log.action` of a segment lineage entry.
pub const ACTION: &str = "segments";

/// Who records lineage: lotline itself.
pub const ACTOR: &str = "lotline";

/// [`SegmentChange::action`] of the entry a start writes for manifest
/// changes the chain lacks (a crash between a manifest commit and its entry,
/// or segments written before lineage was recorded).
pub const RECOVERED: &str = "recovered at start";

/// One segment file the chain records as added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    pub file: String,
    pub sha256: Option<String>,
    /// Rows in the file (entries written before lotline recorded them lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// Rows a start found gone: a file the chain has live that the manifest no
/// longer lists, whose rows no newly found file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub file: String,
    pub rows: u64,
}

/// The detail of a lineage entry: which commit (`flush`, `restamp`,
/// `compaction`, [`RECOVERED`]) added and removed which files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentChange {
    pub action: String,
    pub added: Vec<Added>,
    pub removed: Vec<String>,
    /// Only in [`RECOVERED`] entries: removed files whose rows are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<Lost>,
}

/// Live files and their recorded SHA-256, of a manifest or of the chain.
pub type LiveFiles = BTreeMap<String, Option<String>>;

/// The live segment files of `manifest`, every table.
pub fn live_files(manifest: &Manifest) -> LiveFiles {
    manifest
        .tables
        .values()
        .flatten()
        .map(|s| (s.file.clone(), s.sha256.clone()))
        .collect()
}

/// What turns `before` into `after`, named `action`; `None` when no file
/// was added or removed. A file whose recorded SHA-256 changed counts as
/// removed and added again.
pub fn diff(before: &LiveFiles, after: &LiveFiles, action: &str) -> Option<SegmentChange> {
    let added: Vec<Added> = after
        .iter()
        .filter(|(file, sha)| before.get(*file) != Some(sha))
        .map(|(file, sha)| Added {
            file: file.clone(),
            sha256: sha.clone(),
            rows: None,
        })
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|(file, sha)| after.get(*file) != Some(sha))
        .map(|(file, _)| file.clone())
        .collect();
    (!added.is_empty() || !removed.is_empty()).then(|| SegmentChange {
        action: action.into(),
        added,
        removed,
        lost: Vec::new(),
    })
}

/// The table a segment file belongs to (`tables/<name>/…`).
fn table_of(file: &str) -> &str {
    let rest = file.strip_prefix("tables/").unwrap_or(file);
    rest.split('/').next().unwrap_or(rest)
}

impl SegmentChange {
    /// The change with the rows of each added file, as `manifest` lists them.
    pub fn with_rows(mut self, manifest: &Manifest) -> Self {
        let rows: BTreeMap<&str, u64> = manifest
            .tables
            .values()
            .flatten()
            .map(|s| (s.file.as_str(), s.rows))
            .collect();
        for added in &mut self.added {
            added.rows = rows.get(added.file.as_str()).copied();
        }
        self
    }

    /// The audit event that records this change.
    pub fn event(&self) -> Event {
        let detail = serde_json::to_string(self).expect("a segment change serializes");
        Event::new(ACTOR, ACTION).detail(detail)
    }
}

/// One finding of [`Lineage::check`]: a file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub reason: String,
}

/// The chain's view of the live segments, built by replaying lineage
/// entries in seq order.
#[derive(Debug, Default)]
pub struct Lineage {
    /// File -> (recorded SHA-256, seq of the entry that added it, its rows).
    live: BTreeMap<String, (Option<String>, u64, Option<u64>)>,
    /// Rows recorded as lost by [`RECOVERED`] entries: (seq, what).
    lost: Vec<(u64, Lost)>,
    /// Lineage entries whose detail did not parse: (seq, why).
    unreadable: Vec<(u64, String)>,
    /// [`RECOVERED`] entries: (seq, files added, files removed).
    recovered: Vec<(u64, usize, usize)>,
}

impl Lineage {
    /// Applies `entry` if it is a lineage entry.
    pub fn push(&mut self, entry: &Entry) {
        if entry.event.action == ACTION {
            self.apply(entry.seq, entry.event.detail.as_deref());
        }
    }

    /// Applies the lineage entries of an `audit_log` batch holding at least
    /// the columns `seq`, `action` and `detail` (other rows are skipped).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), AuditError> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| AuditError::Shape(format!("no column {name}")))
        };
        let (seq, action, detail) = (column("seq")?, column("action")?, column("detail")?);
        let (Some(seq), Some(action), Some(detail)) = (
            seq.as_primitive_opt::<UInt64Type>(),
            action.as_string_opt::<i32>(),
            detail.as_string_opt::<i32>(),
        ) else {
            return Err(AuditError::Shape(
                "seq, action or detail has an unexpected type".into(),
            ));
        };
        for row in 0..batch.num_rows() {
            if action.is_valid(row) && action.value(row) == ACTION {
                let text = detail.is_valid(row).then(|| detail.value(row));
                self.apply(seq.value(row), text);
            }
        }
        Ok(())
    }

    fn apply(&mut self, seq: u64, detail: Option<&str>) {
        let change = match detail.map(serde_json::from_str::<SegmentChange>) {
            Some(Ok(change)) => change,
            Some(Err(e)) => return self.unreadable.push((seq, e.to_string())),
            None => return self.unreadable.push((seq, "no detail".into())),
        };
        if change.action == RECOVERED {
            self.recovered
                .push((seq, change.added.len(), change.removed.len()));
            self.lost
                .extend(change.lost.into_iter().map(|lost| (seq, lost)));
        }
        for file in change.removed {
            self.live.remove(&file);
        }
        for added in change.added {
            self.live
                .insert(added.file, (added.sha256, seq, added.rows));
        }
    }

    /// What a start records as [`RECOVERED`]: files live in `manifest` that
    /// the chain never added, and files the chain has live that `manifest`
    /// no longer lists; `None` if there are none. A file both list with
    /// different SHA-256s is left out: no crash makes that (segment names are
    /// never reused), so it stays a finding of [`Self::check`].
    pub fn recovery(&self, manifest: &Manifest) -> Option<SegmentChange> {
        let live = live_files(manifest);
        let chain: LiveFiles = self
            .live_files()
            .into_iter()
            .map(|(file, sha)| {
                let sha = live.get(&file).cloned().unwrap_or(sha);
                (file, sha)
            })
            .collect();
        let mut change = diff(&chain, &live, RECOVERED)?.with_rows(manifest);
        change.lost = self.lost_in(&change);
        Some(change)
    }

    /// The removed files of `change` whose rows, table by table, its added
    /// files do not make up for (a table with a file of unknown rows is
    /// not judged).
    fn lost_in(&self, change: &SegmentChange) -> Vec<Lost> {
        let mut tables: BTreeMap<&str, (Option<u64>, Option<u64>)> = BTreeMap::new();
        let add = |sum: &mut Option<u64>, rows: Option<u64>| {
            *sum = sum.zip(rows).map(|(a, b)| a + b);
        };
        for file in &change.removed {
            let rows = self.live.get(file).and_then(|(_, _, rows)| *rows);
            let sums = tables.entry(table_of(file)).or_insert((Some(0), Some(0)));
            add(&mut sums.0, rows);
        }
        for added in &change.added {
            let sums = tables
                .entry(table_of(&added.file))
                .or_insert((Some(0), Some(0)));
            add(&mut sums.1, added.rows);
        }
        let short: Vec<&str> = tables
            .into_iter()
            .filter(|(_, sums)| matches!(sums, (Some(removed), Some(added)) if removed > added))
            .map(|(table, _)| table)
            .collect();
        change
            .removed
            .iter()
            .filter(|file| short.contains(&table_of(file)))
            .filter_map(|file| {
                let rows = self.live.get(file).and_then(|(_, _, rows)| *rows)?;
                Some(Lost {
                    file: file.clone(),
                    rows,
                })
            })
            .collect()
    }

    /// The lineage entries written at start, for the report: (seq, files
    /// added, files removed).
    pub fn recovered(&self) -> &[(u64, usize, usize)] {
        &self.recovered
    }

    /// The files the chain says are live.
    pub fn live_files(&self) -> LiveFiles {
        self.live
            .iter()
            .map(|(file, (sha, _, _))| (file.clone(), sha.clone()))
            .collect()
    }

    /// Where `manifest` and the chain disagree, file by file.
    pub fn check(&self, manifest: &Manifest) -> Vec<Finding> {
        let live = live_files(manifest);
        let mut findings: Vec<Finding> = self
            .unreadable
            .iter()
            .map(|(seq, why)| Finding {
                file: String::new(),
                reason: format!("segment lineage entry seq {seq} is unreadable: {why}"),
            })
            .collect();
        for (file, sha) in &live {
            let reason = match self.live.get(file) {
                None => "live in the manifest, but no audit entry added it".to_string(),
                Some((recorded, seq, _)) if recorded != sha => format!(
                    "sha256 {} in the manifest differs from {} recorded by audit entry seq {seq}",
                    sha.as_deref().unwrap_or("none"),
                    recorded.as_deref().unwrap_or("none")
                ),
                Some(_) => continue,
            };
            findings.push(Finding {
                file: file.clone(),
                reason,
            });
        }
        for (seq, lost) in &self.lost {
            findings.push(Finding {
                file: lost.file.clone(),
                reason: format!(
                    "rows lost between a stop and a start: its {} row(s) of table '{}' were \
                     removed outside lotline (the file and its manifest entry gone, nothing \
                     replacing them; recorded at start by audit entry seq {seq})",
                    lost.rows,
                    table_of(&lost.file)
                ),
            });
        }
        for (file, (_, seq, _)) in &self.live {
            if !live.contains_key(file) {
                findings.push(Finding {
                    file: file.clone(),
                    reason: format!(
                        "added by audit entry seq {seq}, but not live and removed by no later entry \
                         (deleted together with its manifest entry?)"
                    ),
                });
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Chain;
    use crate::storage::SegmentMeta;

    fn manifest(files: &[(&str, &str)]) -> Manifest {
        let mut m = Manifest::default();
        m.tables.insert(
            "samples".into(),
            files
                .iter()
                .map(|(file, sha)| SegmentMeta {
                    sha256: Some(sha.to_string()),
                    ..SegmentMeta::named(file)
                })
                .collect(),
        );
        m
    }

    fn replay(changes: &[SegmentChange]) -> Lineage {
        let mut chain = Chain::default();
        let mut lineage = Lineage::default();
        for change in changes {
            lineage.push(&chain.seal(change.event(), 0));
        }
        lineage
    }

    #[test]
    fn replayed_changes_match_the_manifest_they_built() {
        let m1 = manifest(&[("a", "1"), ("b", "2")]);
        let m2 = manifest(&[("a", "1"), ("c", "3")]);
        let first = diff(&LiveFiles::new(), &live_files(&m1), "flush").unwrap();
        let second = diff(&live_files(&m1), &live_files(&m2), "restamp").unwrap();
        assert_eq!(second.removed, vec!["b".to_string()]);
        assert_eq!(second.added.len(), 1);
        assert!(diff(&live_files(&m2), &live_files(&m2), "flush").is_none());
        assert!(replay(&[first, second]).check(&m2).is_empty());
    }

    #[test]
    fn unrecorded_vanished_and_changed_segments_are_named() {
        let m1 = manifest(&[("a", "1"), ("b", "2")]);
        let lineage = replay(&[diff(&LiveFiles::new(), &live_files(&m1), "flush").unwrap()]);
        // b deleted with its manifest entry, c never recorded, a's hash swapped.
        let tampered = manifest(&[("a", "9"), ("c", "3")]);
        let findings = lineage.check(&tampered);
        let named = |file: &str| {
            findings
                .iter()
                .find(|f| f.file == file)
                .map(|f| f.reason.clone())
                .unwrap_or_default()
        };
        assert!(named("a").contains("differs from 1"), "{findings:?}");
        assert!(
            named("b").contains("removed by no later entry"),
            "{findings:?}"
        );
        assert!(
            named("c").contains("no audit entry added it"),
            "{findings:?}"
        );
        assert_eq!(findings.len(), 3);
        // A start records b and c, never a's changed hash.
        let recovery = lineage.recovery(&tampered).unwrap();
        assert_eq!(recovery.removed, vec!["b".to_string()]);
        assert_eq!(
            recovery
                .added
                .iter()
                .map(|a| a.file.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
    }

    #[test]
    fn files_gone_without_a_replacement_are_lost_rows() {
        let m1 = manifest(&[("tables/samples/a", "1"), ("tables/samples/b", "2")]);
        let flush = diff(&LiveFiles::new(), &live_files(&m1), "flush")
            .unwrap()
            .with_rows(&m1);
        assert!(flush.added.iter().all(|a| a.rows == Some(1)), "{flush:?}");
        let lineage = replay(std::slice::from_ref(&flush));
        // A compaction cut short: a and b replaced by c holding both rows.
        let mut compacted = manifest(&[("tables/samples/c", "3")]);
        compacted.tables.get_mut("samples").unwrap()[0].rows = 2;
        assert!(lineage.recovery(&compacted).unwrap().lost.is_empty());
        // b deleted with its manifest entry: its row is lost, for good.
        let deleted = manifest(&[("tables/samples/a", "1")]);
        let recovery = lineage.recovery(&deleted).unwrap();
        let lost = Lost {
            file: "tables/samples/b".into(),
            rows: 1,
        };
        assert_eq!(recovery.lost, vec![lost]);
        let findings = replay(&[flush, recovery]).check(&deleted);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].reason.starts_with(
                "rows lost between a stop and a start: its 1 row(s) of table 'samples'"
            ),
            "{findings:?}"
        );
    }
}
