//! What a request holds per tag, read once on the blocking pool: each tag's
//! smallest and largest time (all the guard needs to admit a request), and
//! the request's own repeats of a key. A reading sent twice in one request
//! is kept once; of two different readings of one key in one request the
//! later is kept (newest write wins, as a later request would; the earlier
//! is not stored).

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;

use super::FastMap;
use crate::ingest::IngestError;
use crate::ingest::corrections::Readings;
use crate::model::TableDef;

/// One tag's times in a request.
#[derive(Debug, Clone)]
pub struct TagSpan {
    /// [`super::tag_hash`] of the name.
    pub hash: u64,
    pub min: i64,
    pub max: i64,
}

/// The tags of a request and their time spans.
#[derive(Debug, Clone, Default)]
pub struct KeySpan {
    pub tags: Vec<TagSpan>,
}

/// Per tag while reading: span, and whether times only grew.
struct Seen {
    min: i64,
    max: i64,
    increasing: bool,
}

/// The request with its repeated readings left out, and its span. Row
/// numbers in errors count across the request's batches.
pub fn survey(
    def: &'static TableDef,
    batches: Vec<RecordBatch>,
) -> Result<(Vec<RecordBatch>, KeySpan), IngestError> {
    let readings = batches
        .iter()
        .map(|b| Readings::of(def.name, b))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: usize = readings.iter().map(Readings::len).sum();
    let mut seen: FastMap<&str, Seen> = FastMap::with_capacity_and_hasher(rows, Default::default());
    for r in &readings {
        for row in 0..r.len() {
            let (tag, ts) = (r.tag.value(row), r.ts[row]);
            match seen.get_mut(tag) {
                Some(s) => {
                    s.increasing &= ts > s.max;
                    s.min = s.min.min(ts);
                    s.max = s.max.max(ts);
                }
                None => {
                    seen.insert(
                        tag,
                        Seen {
                            min: ts,
                            max: ts,
                            increasing: true,
                        },
                    );
                }
            }
        }
    }
    let repeated = repeats(&readings, &seen)?;
    let span = KeySpan {
        tags: seen
            .iter()
            .map(|(tag, s)| TagSpan {
                hash: super::tag_hash(tag),
                min: s.min,
                max: s.max,
            })
            .collect(),
    };
    drop(seen);
    drop(readings);
    if repeated.is_empty() {
        return Ok((batches, span));
    }
    let kept = batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|row| Some(!repeated.contains(&(b, row))))
                .collect();
            filter_record_batch(batch, &keep)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IngestError::Internal(e.to_string()))?;
    Ok((kept, span))
}

/// The (batch, row) of every later copy of a reading, among the tags whose
/// times did not only grow (the only ones that can repeat a key).
fn repeats(
    readings: &[Readings<'_>],
    seen: &FastMap<&str, Seen>,
) -> Result<std::collections::HashSet<(usize, usize)>, IngestError> {
    let mut repeated = std::collections::HashSet::new();
    if seen.values().all(|s| s.increasing) {
        return Ok(repeated);
    }
    // (ts, request row, batch, row) per tag, in request order.
    let mut rows: FastMap<&str, Vec<(i64, usize, usize, usize)>> = FastMap::default();
    let mut offset = 0;
    for (b, r) in readings.iter().enumerate() {
        for row in 0..r.len() {
            let tag = r.tag.value(row);
            if !seen[tag].increasing {
                rows.entry(tag)
                    .or_default()
                    .push((r.ts[row], offset + row, b, row));
            }
        }
        offset += r.len();
    }
    for mut keys in rows.into_values() {
        keys.sort_unstable();
        for pair in keys.windows(2) {
            let ((ts, _, fb, fr), (ts2, _, sb, sr)) = (pair[0], pair[1]);
            if ts != ts2 {
                continue;
            }
            // The later of two readings of one key wins, as a later request
            // would (a source may send two values in one millisecond, such
            // as a Sparkplug birth and the first data); a copy is dropped.
            match readings[sb].differs(sr, &readings[fb], fr) {
                Some(_) => repeated.insert((fb, fr)),
                None => repeated.insert((sb, sr)),
            };
        }
    }
    Ok(repeated)
}
