//! Micro-benchmarks of the write path's hot spots, on samples of the demo
//! plant of `lotline generate` (realistic strings, values and qualities):
//!
//! - `validate`: `model::normalize_batch` on a 50 k-row request;
//! - `wal/encode`: one request into a WAL record (Arrow IPC + zstd + crc);
//! - `wal/append_fsync/{1,8,64}`: group commit, i.e. `append_group` of 1, 8
//!   or 64 records (5 k rows each) with one fsync per group; throughput is
//!   records per second, so the gain of batching fsyncs shows directly;
//! - `buffer/append`: moving acknowledged batches into the write buffer;
//! - `segment/write_1m`: sorting and writing 1 M rows as Parquet segments;
//! - `stamping/stamp_50k`: context stamping of a 50 k-row request whose
//!   `work_order`/`lot` are null, against one run per equipment and minute.
//!
//! Run: `cargo bench --bench write_path` (a filter after `--` picks groups).
//! fsync timings depend on the disk under the temp dir (`TMPDIR`).

use std::hint::black_box;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lotline::generate::{Plant, PlantDef, SampleStream};
use lotline::ingest::buffer::TableBuffer;
use lotline::ingest::stamping::StampIndex;
use lotline::ingest::wal::{WalFile, encode_record};
use lotline::model;
use lotline::storage::segment::{SegmentOptions, write_segments};

/// At least `rows` demo samples in batches of `batch_rows`.
fn samples(rows: usize, batch_rows: usize) -> Vec<RecordBatch> {
    let mut def = PlantDef::load("demo").expect("demo plant");
    def.edges = 0;
    let plant = Arc::new(Plant::new(def).expect("demo plant"));
    let mut out = Vec::new();
    let mut total = 0;
    for batch in SampleStream::new(plant, batch_rows) {
        total += batch.num_rows();
        out.push(batch);
        if total >= rows {
            break;
        }
    }
    out
}

fn validate(c: &mut Criterion) {
    let batch = samples(50_000, 50_000).remove(0);
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(batch.num_rows() as u64));
    group.bench_function("normalize_50k", |b| {
        b.iter(|| model::normalize_batch(model::samples(), black_box(&batch), 0).expect("valid"))
    });
    group.finish();
}

fn wal(c: &mut Criterion) {
    let request = samples(50_000, 50_000);
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(50_000));
    group.bench_function("encode_50k", |b| {
        b.iter(|| encode_record(0, black_box(&request)).expect("encode"))
    });
    let records: Vec<Vec<u8>> = samples(64 * 5_000, 5_000)
        .iter()
        .map(|batch| encode_record(0, std::slice::from_ref(batch)).expect("encode"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file =
        WalFile::create(&*lotline::storage::disk::real(), dir.path(), 1).expect("wal file");
    for group_size in [1usize, 8, 64] {
        let group_records: Vec<&[u8]> = records[..group_size].iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(group_size as u64));
        group.bench_function(format!("append_fsync/{group_size}"), |b| {
            b.iter(|| {
                file.append_group(black_box(&group_records), true)
                    .expect("append")
            })
        });
    }
    group.finish();
}

fn buffer(c: &mut Criterion) {
    let batches = samples(200_000, 5_000);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut group = c.benchmark_group("buffer");
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("append_200k_in_5k_batches", |b| {
        b.iter_batched(
            TableBuffer::default,
            |mut buffer| {
                for batch in &batches {
                    buffer.append(vec![batch.clone()]);
                }
                buffer
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn segment(c: &mut Criterion) {
    let batches = samples(1_000_000, 50_000);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SegmentOptions::default();
    let mut group = c.benchmark_group("segment");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    let mut next_id = 1;
    group.bench_function("write_1m", |b| {
        b.iter(|| {
            let metas = write_segments(
                dir.path(),
                model::samples(),
                &batches,
                &mut next_id,
                &options,
            )
            .expect("write segments");
            for meta in &metas {
                std::fs::remove_file(dir.path().join(&meta.file)).expect("remove segment");
            }
            metas
        })
    });
    group.finish();
}

fn stamping(c: &mut Criterion) {
    use arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::TimestampNanosecondType;
    let full =
        model::normalize_batch(model::samples(), &samples(50_000, 50_000)[0], 0).expect("valid");
    // The same request without context, as a gateway sends it.
    let schema = full.schema();
    let mut columns = full.columns().to_vec();
    for name in ["work_order", "lot"] {
        let i = schema.index_of(name).expect("column");
        columns[i] = arrow::array::new_null_array(columns[i].data_type(), full.num_rows());
    }
    let bare = RecordBatch::try_new(schema, columns).expect("batch");
    let ts = full.column_by_name("ts").expect("ts");
    let ts = ts.as_primitive::<TimestampNanosecondType>();
    let (first, last) = (ts.values()[0], ts.values()[ts.len() - 1]);
    let equipment = full
        .column_by_name("equipment")
        .expect("equipment")
        .as_string::<i32>();
    let mut names: Vec<&str> = equipment.iter().flatten().collect();
    names.sort_unstable();
    names.dedup();
    let (mut eq, mut starts, mut lots) = (Vec::new(), Vec::new(), Vec::new());
    for name in &names {
        let mut start = first - 60_000_000_000;
        while start <= last {
            eq.push(*name);
            starts.push(start);
            lots.push(format!("L-{start}"));
            start += 60_000_000_000;
        }
    }
    let ends: Vec<i64> = starts.iter().map(|s| s + 60_000_000_000).collect();
    let runs = RecordBatch::try_from_iter([
        ("equipment", Arc::new(StringArray::from(eq)) as ArrayRef),
        (
            "start_ts",
            Arc::new(TimestampNanosecondArray::from(starts)) as _,
        ),
        (
            "end_ts",
            Arc::new(TimestampNanosecondArray::from(ends)) as _,
        ),
        ("lot", Arc::new(StringArray::from(lots)) as _),
    ])
    .expect("runs");
    let runs = model::normalize_batch(model::production_runs(), &runs, 0).expect("valid runs");
    let mut index = StampIndex::default();
    index.merge(model::production_runs(), &runs).expect("merge");
    let mut group = c.benchmark_group("stamping");
    group.throughput(Throughput::Elements(bare.num_rows() as u64));
    group.bench_function("stamp_50k", |b| {
        b.iter(|| {
            index
                .stamp(black_box(&bare))
                .expect("stamp")
                .expect("stamped")
        })
    });
    group.finish();
}

criterion_group!(benches, validate, wal, buffer, segment, stamping);
criterion_main!(benches);
