//! Segment files: immutable Parquet, zstd, dictionary strings, rows sorted by
//! the table key and declared in `sorting_columns`, page index and bloom
//! filters for pruning, Hive `date=YYYY-MM-DD` directories for tables with a
//! time column.
//!
//! A segment is written to a temporary name, fsynced and renamed; it becomes
//! live only when the manifest lists it, so a crash never exposes half a file.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, max, min, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use super::digest::HashingWriter;
use super::disk::{self, Disk, DiskFile};
use super::{SegmentMeta, StorageError, io_err};
use crate::model::{self, TableDef};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Knobs of the segment writer.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    pub row_group_rows: usize,
    pub zstd_level: i32,
    /// Where segment files are written (the engine sets its own `disk`).
    pub disk: Arc<dyn Disk>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 1_000_000,
            zstd_level: 3,
            disk: disk::real(),
        }
    }
}

/// Writes `batches` (all with the table's stored schema, in write order) as new segment
/// files under `data_dir`, one per date partition. Ids are taken from
/// `next_id` upwards. The files are durable when this returns, but not live
/// until a manifest listing them is stored.
pub fn write_segments(
    data_dir: &Path,
    def: &TableDef,
    batches: &[RecordBatch],
    next_id: &mut u64,
    options: &SegmentOptions,
) -> Result<Vec<SegmentMeta>, StorageError> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    // Versioned tables keep every version: the stable key sort below leaves
    // a key's versions in write order, which is what resolution relies on.
    let all = concat_batches(&model::stored_schema(def), batches)?;
    let sorted = sort_by_key(def, &all)?;
    let mut metas = Vec::new();
    for (date, part) in partition_by_date(def, &sorted)? {
        let id = *next_id;
        *next_id += 1;
        let dir = match &date {
            Some(d) => format!("tables/{}/date={d}", def.name),
            None => format!("tables/{}", def.name),
        };
        let file = format!("{dir}/{id:016}.parquet");
        let written = write_file(data_dir, &dir, &file, def, &part, options)?;
        let mut meta = describe(def, id, file, written.bytes, &part)?;
        meta.sha256 = Some(written.sha256);
        metas.push(meta);
    }
    Ok(metas)
}

/// Writes one segment file batch by batch (compaction's output): only the
/// row group being encoded is held in memory. Rows must arrive sorted by
/// the table key and lie in one date partition. The file is durable when
/// [`SegmentWriter::finish`] returns, but not live until a manifest lists it.
pub struct SegmentWriter {
    def: &'static TableDef,
    id: u64,
    file: String,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    writer: ArrowWriter<HashingWriter<Box<dyn DiskFile>>>,
    disk: Arc<dyn Disk>,
    rows: u64,
    min_time: Option<i64>,
    max_time: Option<i64>,
    min_key: Option<String>,
    max_key: Option<String>,
}

impl SegmentWriter {
    /// Starts segment `id` in directory `dir` (relative to `data_dir`, e.g.
    /// `tables/samples/date=2026-01-01`), under a temporary name.
    pub fn create(
        data_dir: &Path,
        dir: &str,
        def: &'static TableDef,
        id: u64,
        options: &SegmentOptions,
    ) -> Result<Self, StorageError> {
        let abs_dir = data_dir.join(dir);
        std::fs::create_dir_all(&abs_dir).map_err(io_err(&abs_dir))?;
        let file = format!("{dir}/{id:016}.parquet");
        let path = data_dir.join(&file);
        let tmp = path.with_extension("parquet.tmp");
        let out = HashingWriter::new(options.disk.create(&tmp).map_err(io_err(&tmp))?);
        let writer = ArrowWriter::try_new(
            out,
            model::stored_schema(def),
            Some(writer_properties(def, options)),
        )
        .map_err(|source| StorageError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        Ok(Self {
            def,
            id,
            file,
            tmp,
            path,
            writer,
            disk: options.disk.clone(),
            rows: 0,
            min_time: None,
            max_time: None,
            min_key: None,
            max_key: None,
        })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        if let Some(time) = self.def.time_column {
            let ts = batch
                .column(self.def.column_index(time).expect("time column"))
                .as_primitive::<TimestampNanosecondType>();
            let fold = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            };
            self.min_time = fold(self.min_time, min(ts), i64::min);
            self.max_time = fold(self.max_time, max(ts), i64::max);
        }
        let (first, last) = range_keys(self.def, batch);
        if self.rows == 0 {
            self.min_key = first;
        }
        self.max_key = last;
        self.rows += n as u64;
        self.writer
            .write(batch)
            .map_err(|source| StorageError::Parquet {
                path: self.tmp.clone(),
                source,
            })
    }

    /// Gives the file up: removes the temporary file (best effort: a
    /// leftover is an orphan the next start removes).
    pub fn abandon(self) {
        let _ = self.disk.remove(&self.tmp);
    }

    /// Closes, fsyncs and renames the file; returns its manifest entry.
    pub fn finish(self) -> Result<SegmentMeta, StorageError> {
        let parquet_err = |source| StorageError::Parquet {
            path: self.tmp.clone(),
            source,
        };
        let (mut out, sha256) = self.writer.into_inner().map_err(parquet_err)?.finish();
        out.sync().map_err(io_err(&self.tmp))?;
        let bytes = out.len().map_err(io_err(&self.tmp))?;
        drop(out);
        let disk = &*self.disk;
        disk.rename(&self.tmp, &self.path)
            .map_err(io_err(&self.path))?;
        let dir = self.path.parent().expect("file in a directory");
        disk.sync_dir(dir).map_err(io_err(dir))?;
        Ok(SegmentMeta {
            id: self.id,
            file: self.file,
            rows: self.rows,
            bytes,
            min_time: self.min_time,
            max_time: self.max_time,
            min_key: self.min_key,
            max_key: self.max_key,
            sha256: Some(sha256),
        })
    }
}

/// Bounds of the range column's values in a key-sorted batch, from its
/// first and last row (only string range columns: see [`describe`]). Each
/// is at most [`model::MAX_NAME_BYTES`], as every manifest entry repeats
/// them: a longer first value is cut to a prefix (still a lower bound), a
/// longer last one gives no upper bound (pruning then keeps the segment).
/// Validation refuses such names; a segment may predate that.
fn range_keys(def: &TableDef, batch: &RecordBatch) -> (Option<String>, Option<String>) {
    let range = batch
        .column(def.column_index(def.range_column).expect("range column"))
        .as_string_opt::<i32>();
    let key_at = |i: usize| range.filter(|r| r.is_valid(i)).map(|r| r.value(i));
    let n = batch.num_rows();
    if n == 0 {
        return (None, None);
    }
    let lower = key_at(0).map(|k| k[..k.floor_char_boundary(model::MAX_NAME_BYTES)].to_string());
    let upper = key_at(n - 1)
        .filter(|k| k.len() <= model::MAX_NAME_BYTES)
        .map(str::to_string);
    (lower, upper)
}

/// The Hive partition directory of a segment file (relative to the data
/// directory), e.g. `tables/samples/date=2026-01-01`.
pub fn partition_dir(meta: &SegmentMeta) -> &str {
    meta.file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Reads a whole segment (used for small latest-wins tables and `inspect`).
pub fn read_segment(data_dir: &Path, meta: &SegmentMeta) -> Result<Vec<RecordBatch>, StorageError> {
    read_parquet(&data_dir.join(&meta.file))
}

fn sort_by_key(def: &TableDef, batch: &RecordBatch) -> Result<RecordBatch, StorageError> {
    // Multi-column lexsort compares column by column through dynamic
    // comparators; the row format turns each key into one memcmp-able byte
    // string, which sorts several times faster on (tag, ts).
    let rows = model::key_rows(def, batch)?;
    let mut indices: Vec<u32> = (0..batch.num_rows() as u32).collect();
    // Stable, so rows with equal keys keep their write order.
    indices.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));
    Ok(take_record_batch(batch, &UInt32Array::from(indices))?)
}

/// Splits a sorted batch by the UTC date of its time column, keeping order.
fn partition_by_date(
    def: &TableDef,
    batch: &RecordBatch,
) -> Result<Vec<(Option<String>, RecordBatch)>, StorageError> {
    let Some(time) = def.time_column else {
        return Ok(vec![(None, batch.clone())]);
    };
    let ts = batch
        .column(def.column_index(time).expect("time column"))
        .as_primitive::<TimestampNanosecondType>();
    let mut days: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, t) in ts.values().iter().enumerate() {
        days.entry(t.div_euclid(NANOS_PER_DAY))
            .or_default()
            .push(i as u32);
    }
    if days.len() == 1 {
        let day = *days.keys().next().expect("one day");
        return Ok(vec![(Some(date_string(day)), batch.clone())]);
    }
    days.into_iter()
        .map(|(day, rows)| {
            Ok((
                Some(date_string(day)),
                take_record_batch(batch, &UInt32Array::from(rows))?,
            ))
        })
        .collect()
}

fn date_string(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
        .expect("day within range")
        .date_naive();
    date.format("%Y-%m-%d").to_string()
}

fn writer_properties(def: &TableDef, options: &SegmentOptions) -> WriterProperties {
    let sorting = def
        .key
        .iter()
        .map(|k| SortingColumn {
            column_idx: def.column_index(k).expect("key column") as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(options.zstd_level).expect("valid zstd level"),
        ))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(sorting))
        .set_max_row_group_row_count(Some(options.row_group_rows));
    for column in def.bloom_columns {
        props = props.set_column_bloom_filter_enabled(ColumnPath::from(*column), true);
    }
    props.build()
}

fn write_file(
    data_dir: &Path,
    dir: &str,
    file: &str,
    def: &TableDef,
    batch: &RecordBatch,
    options: &SegmentOptions,
) -> Result<Written, StorageError> {
    let dir = data_dir.join(dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    write_parquet_atomic_hashed(
        &*options.disk,
        &data_dir.join(file),
        batch,
        Some(writer_properties(def, options)),
    )
}

/// A file [`write_parquet_atomic_hashed`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub bytes: u64,
    /// Hex SHA-256 of the bytes written.
    pub sha256: String,
}

/// Writes `batch` to `path` through a temporary file: fsync, rename, fsync
/// the directory. Durable when this returns; returns the file size.
pub fn write_parquet_atomic(
    disk: &dyn Disk,
    path: &Path,
    batch: &RecordBatch,
    properties: Option<WriterProperties>,
) -> Result<u64, StorageError> {
    write_parquet_atomic_hashed(disk, path, batch, properties).map(|w| w.bytes)
}

/// [`write_parquet_atomic`], also returning the SHA-256 of the bytes
/// written (hashed on the way out, so the file is not read back).
pub fn write_parquet_atomic_hashed(
    disk: &dyn Disk,
    path: &Path,
    batch: &RecordBatch,
    properties: Option<WriterProperties>,
) -> Result<Written, StorageError> {
    let tmp = path.with_extension("parquet.tmp");
    // A Parquet error is carried through the I/O error of the write.
    let parquet = std::io::Error::other;
    let written = disk::replace_with(disk, path, &tmp, |file| {
        let out = HashingWriter::new(file);
        let mut writer = ArrowWriter::try_new(out, batch.schema(), properties).map_err(parquet)?;
        writer.write(batch).map_err(parquet)?;
        let (_, sha256) = writer.into_inner().map_err(parquet)?.finish();
        Ok(sha256)
    });
    let (sha256, bytes) = written.map_err(io_err(path))?;
    Ok(Written { bytes, sha256 })
}

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, StorageError> {
    let file = File::open(path).map_err(io_err(path))?;
    let parquet_err = |source| StorageError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err)?
        .build()
        .map_err(parquet_err)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Streams the named columns of a Parquet file batch by batch into `f` (the
/// other columns are never decoded, and only one batch is held at a time).
pub fn scan_parquet_columns(
    path: &Path,
    columns: &[&str],
    f: impl FnMut(RecordBatch),
) -> Result<(), StorageError> {
    scan_parquet_columns_in(path, columns, None, f)
}

/// [`scan_parquet_columns`] over the row groups whose statistics of the
/// timestamp column `time.0` may hold a time in `time.1..=time.2` (row
/// groups without statistics are read); the rows passed on still need
/// filtering.
pub fn scan_parquet_columns_in(
    path: &Path,
    columns: &[&str],
    time: Option<(&str, i64, i64)>,
    mut f: impl FnMut(RecordBatch),
) -> Result<(), StorageError> {
    let file = File::open(path).map_err(io_err(path))?;
    let parquet_err = |source| StorageError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let schema = builder.schema().clone();
    let roots = columns
        .iter()
        .map(|c| schema.index_of(c))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((column, low, high)) = time {
        let leaves = builder.parquet_schema().columns();
        let leaf = leaves.iter().position(|c| c.name() == column);
        let leaf = leaf.ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!(
                "no column '{column}' in {}",
                path.display()
            ))
        })?;
        let groups = builder.metadata().row_groups().iter().enumerate();
        let wanted = groups
            .filter(|(_, group)| match group.column(leaf).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(min), Some(max)) => *max >= low && *min <= high,
                    _ => true,
                },
                _ => true,
            })
            .map(|(i, _)| i)
            .collect();
        builder = builder.with_row_groups(wanted);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    for batch in reader {
        f(batch?);
    }
    Ok(())
}

/// Nulls in `column` of a Parquet file by its statistics, without reading
/// data; `None` if the column is absent or a row group does not say.
pub fn null_count(path: &Path, column: &str) -> Result<Option<u64>, StorageError> {
    let file = File::open(path).map_err(io_err(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| StorageError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    let metadata = builder.metadata();
    let schema = metadata.file_metadata().schema_descr();
    let Some(i) = schema
        .columns()
        .iter()
        .position(|c| c.path().string() == column)
    else {
        return Ok(None);
    };
    let mut nulls = 0;
    for group in metadata.row_groups() {
        match group
            .column(i)
            .statistics()
            .and_then(|s| s.null_count_opt())
        {
            Some(n) => nulls += n,
            None => return Ok(None),
        }
    }
    Ok(Some(nulls))
}

fn describe(
    def: &TableDef,
    id: u64,
    file: String,
    bytes: u64,
    batch: &RecordBatch,
) -> Result<SegmentMeta, StorageError> {
    let (min_time, max_time) = match def.time_column {
        Some(time) => {
            let ts = batch
                .column(def.column_index(time).expect("time column"))
                .as_primitive::<TimestampNanosecondType>();
            (min(ts), max(ts))
        }
        None => (None, None),
    };
    // Rows are sorted by key, whose first column is the range column. Key
    // pruning compares strings, so only a string range column gets bounds
    // (`audit_log.seq` does not: "10" < "9" as text).
    let (min_key, max_key) = range_keys(def, batch);
    Ok(SegmentMeta {
        id,
        file,
        rows: batch.num_rows() as u64,
        bytes,
        min_time,
        max_time,
        min_key,
        max_key,
        sha256: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    #[test]
    fn segments_are_sorted_by_key_and_split_by_day() {
        let day = NANOS_PER_DAY;
        let rows = [
            ("b", day + 5, 1.0),
            ("a", 7, 2.0),
            ("b", 3, 3.0),
            ("a", day + 1, 4.0),
            ("a", 7, 5.0),
        ];
        let batch = model::test_samples(&rows);
        let dir = tempfile::tempdir().unwrap();
        let mut next_id = 1;
        let metas = write_segments(
            dir.path(),
            model::samples(),
            &[batch],
            &mut next_id,
            &SegmentOptions::default(),
        )
        .unwrap();
        assert_eq!(metas.len(), 2);
        assert!(
            metas[0].file.starts_with("tables/samples/date=1970-01-01/"),
            "{}",
            metas[0].file
        );
        let read = |m: &SegmentMeta| {
            let b = concat_batches(
                &model::samples().schema,
                &read_segment(dir.path(), m).unwrap(),
            )
            .unwrap();
            let tags = b.column(0).as_string::<i32>();
            let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
            let v = b.column(2).as_primitive::<arrow::datatypes::Float64Type>();
            (0..b.num_rows())
                .map(|i| (tags.value(i).to_string(), ts.value(i), v.value(i)))
                .collect::<Vec<_>>()
        };
        // Equal keys keep their write order (2.0 before 5.0).
        assert_eq!(
            read(&metas[0]),
            vec![
                ("a".into(), 7, 2.0),
                ("a".into(), 7, 5.0),
                ("b".into(), 3, 3.0)
            ]
        );
        assert_eq!(
            read(&metas[1]),
            vec![("a".into(), day + 1, 4.0), ("b".into(), day + 5, 1.0)]
        );
        assert_eq!(
            (metas[0].min_key.as_deref(), metas[0].max_key.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(
            (metas[1].min_time, metas[1].max_time),
            (Some(day + 1), Some(day + 5))
        );
    }

    #[test]
    fn key_ranges_stay_bounded_for_names_over_the_limit() {
        // Validation refuses such names; storage must not trust that
        // (segments written before the limit).
        let long = |c: &str| c.repeat(model::MAX_NAME_BYTES) + "é";
        let (first, last) = (long("a"), long("b"));
        let mut rows = model::SampleRows::with_capacity(3);
        for tag in [first.as_str(), "ab.short", last.as_str()] {
            rows.push(model::SampleRow {
                tag,
                ts_ns: 1,
                ..Default::default()
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let options = SegmentOptions::default();
        let metas = write_segments(
            dir.path(),
            model::samples(),
            &[rows.finish()],
            &mut 1,
            &options,
        )
        .unwrap();
        let meta = &metas[0];
        assert_eq!(
            meta.min_key.as_deref(),
            Some(&first[..model::MAX_NAME_BYTES])
        );
        assert_eq!(meta.max_key, None, "no upper bound rather than a wrong one");
        // Compaction's writer bounds them the same way.
        let mut writer = SegmentWriter::create(
            dir.path(),
            "tables/samples/date=1970-01-01",
            model::samples(),
            9,
            &options,
        )
        .unwrap();
        writer
            .write(&read_segment(dir.path(), meta).unwrap()[0])
            .unwrap();
        let merged = writer.finish().unwrap();
        assert_eq!(
            (merged.min_key, merged.max_key),
            (meta.min_key.clone(), None)
        );
    }
}
