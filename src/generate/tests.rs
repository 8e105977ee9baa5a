//! The generator's promises: same definition and seed, same bytes; output
//! that lotline's own validation accepts unchanged; values that do not
//! depend on how time is chunked; a genealogy of exactly `edges` edges whose
//! lots all exist and are made after their inputs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type};

use super::*;
use crate::model;

fn tiny() -> PlantDef {
    let mut def = PlantDef::load("demo").unwrap();
    def.duration = "10m".into();
    def.edges = 600;
    def
}

fn args(out: &Path, format: FileFormat, seed: u64) -> GenerateArgs {
    GenerateArgs {
        plant: "demo".into(),
        seed: Some(seed),
        edges: Some(600),
        duration: Some("10m".into()),
        sample_period: None,
        start: None,
        out: Some(out.to_path_buf()),
        format,
        batch_rows: 7_000,
        writers: 1,
        connect: crate::client::ConnectArgs {
            endpoint: String::new(),
            user: String::new(),
            password: None,
            no_auth: true,
            tls_ca: None,
            reason: None,
        },
        json: false,
    }
}

fn file_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn same_seed_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for format in [FileFormat::Parquet, FileFormat::Csv] {
        let ext = format.extension();
        let (a, b, c) = (
            tmp.path().join(format!("a-{ext}")),
            tmp.path().join(format!("b-{ext}")),
            tmp.path().join(format!("c-{ext}")),
        );
        let report = run(&args(&a, format, 5)).await.unwrap();
        run(&args(&b, format, 5)).await.unwrap();
        run(&args(&c, format, 6)).await.unwrap();
        let (fa, fb, fc) = (file_bytes(&a), file_bytes(&b), file_bytes(&c));
        assert_eq!(fa.len(), TABLES.len());
        assert_eq!(report.tables.len(), TABLES.len());
        for (name, bytes) in &fa {
            assert!(!bytes.is_empty(), "{name} is empty");
            assert!(
                fb[name] == *bytes,
                "{name} differs between two runs with the same seed"
            );
        }
        let samples = format!("samples.{ext}");
        assert!(
            fa[&samples] != fc[&samples],
            "another seed gave the same samples"
        );
        let genealogy = report
            .tables
            .iter()
            .find(|t| t.table == "genealogy")
            .unwrap();
        assert_eq!(genealogy.rows, 600);
    }
}

fn samples(plant: &Arc<Plant>, batch_rows: usize) -> Vec<RecordBatch> {
    SampleStream::new(plant.clone(), batch_rows).collect()
}

#[test]
fn output_passes_validation_unchanged() {
    let plant = Arc::new(Plant::new(tiny()).unwrap());
    let genealogy = Arc::new(Genealogy::new(plant.clone()).unwrap());
    let mut checked = 0;
    for table in TABLES {
        for batch in table_batches(&plant, &genealogy, table, 10_000) {
            assert_eq!(batch.schema(), tables::schema(table), "{table}");
            if let Some(def) = model::table(table) {
                let normalized = model::normalize_batch(def, &batch, 0)
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
                assert_eq!(normalized, batch, "{table} changed by validation");
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "samples and tags are validated");
}

/// A sample's (value bits, quality, text), keyed by (tag, ts).
type Rows = HashMap<(String, i64), (Option<u64>, u32, Option<String>)>;

/// Every sample of `batches`.
fn rows(batches: &[RecordBatch]) -> Rows {
    let mut out = HashMap::new();
    for b in batches {
        let tag = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampNanosecondType>();
        let value = b.column(2).as_primitive::<Float64Type>();
        let text = b.column(3).as_string::<i32>();
        let quality = b.column(4).as_primitive::<UInt32Type>();
        for i in 0..b.num_rows() {
            let v = value.is_valid(i).then(|| value.value(i).to_bits());
            let t = text.is_valid(i).then(|| text.value(i).to_string());
            let old = out.insert(
                (tag.value(i).to_string(), ts.value(i)),
                (v, quality.value(i), t),
            );
            assert!(old.is_none(), "duplicate sample");
        }
    }
    out
}

#[test]
fn values_do_not_depend_on_chunking() {
    let mut def = tiny();
    def.duration = "3m".into();
    let plant = Arc::new(Plant::new(def.clone()).unwrap());
    let mut chunked = Plant::new(def).unwrap();
    chunked.chunk_samples = 7;
    let chunked = Arc::new(chunked);
    let (a, b) = (samples(&plant, 5_000), samples(&chunked, 333));
    assert!(b.iter().all(|x| x.num_rows() <= 333));
    assert_eq!(rows(&a), rows(&b));
}

#[test]
fn signals_look_like_a_plant() {
    let plant = Arc::new(Plant::new(tiny()).unwrap());
    assert_eq!(plant.tags.len(), 300);
    let batches = samples(&plant, 50_000);
    let rows = rows(&batches);
    assert!(
        rows.len() > 170_000 && rows.len() <= 180_000,
        "{} rows",
        rows.len()
    );
    let flagged = rows.values().filter(|r| r.1 != 0).count();
    assert!(flagged > 0, "some samples should be Uncertain or Bad");
    let mut counts: Vec<(&i64, f64)> = rows
        .iter()
        .filter(|((t, _), _)| t == "line1.packer.count")
        .map(|((_, ts), r)| (ts, f64::from_bits(r.0.unwrap())))
        .collect();
    counts.sort_by_key(|c| *c.0);
    assert!(counts.len() >= 500);
    assert!(
        counts.windows(2).all(|w| w[0].1 <= w[1].1),
        "counter went backwards"
    );
    assert!(
        counts.last().unwrap().1 > counts[0].1,
        "counter never counted"
    );
    let states: HashSet<&str> = rows
        .iter()
        .filter(|((t, _), _)| t.ends_with(".mixer.state"))
        .filter_map(|(_, r)| r.2.as_deref())
        .collect();
    assert!(states.len() >= 3, "{states:?}");
    let mut setpoints: HashMap<&str, HashSet<u64>> = HashMap::new();
    for ((tag, _), r) in &rows {
        if tag.ends_with("setpoint") {
            setpoints.entry(tag).or_default().extend(r.0);
        }
    }
    assert!(
        setpoints.values().any(|v| v.len() >= 2),
        "setpoints should step between orders"
    );
    for b in &batches {
        assert_eq!(b.column(6).null_count(), 0, "every sample has a work order");
        assert_eq!(b.column(7).null_count(), 0, "every sample has a lot");
    }
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let column = batch.column_by_name(name).unwrap().as_string::<i32>();
    (0..batch.num_rows())
        .map(|i| column.value(i).to_string())
        .collect()
}

fn times(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let column = batch.column_by_name(name).unwrap();
    column
        .as_primitive::<TimestampNanosecondType>()
        .values()
        .to_vec()
}

#[test]
fn genealogy_is_exact_consistent_and_deep() {
    for edges in [600, 25_000] {
        let mut def = tiny();
        def.duration = "6h".into();
        def.edges = edges;
        let plant = Arc::new(Plant::new(def).unwrap());
        let g = Arc::new(Genealogy::new(plant.clone()).unwrap());
        let mut made = HashMap::new();
        for b in g.clone().lots(1000) {
            for (id, at) in strings(&b, "id").into_iter().zip(times(&b, "created_at")) {
                assert!(made.insert(id, at).is_none(), "duplicate lot");
            }
        }
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        let mut consumers: HashMap<String, usize> = HashMap::new();
        let mut count = 0;
        for b in g.clone().edges(1000) {
            let (input, output, ts) = (
                strings(&b, "input_lot"),
                strings(&b, "output_lot"),
                times(&b, "ts"),
            );
            for i in 0..b.num_rows() {
                count += 1;
                assert!(
                    made[&input[i]] < ts[i],
                    "{} made after it was used",
                    input[i]
                );
                assert_eq!(made[&output[i]], ts[i]);
                parents
                    .entry(output[i].clone())
                    .or_default()
                    .push(input[i].clone());
                *consumers.entry(input[i].clone()).or_default() += 1;
            }
        }
        assert_eq!(count, edges);
        assert!(parents.values().any(|p| p.len() > 1), "no merges");
        assert!(consumers.values().any(|&c| c > 1), "no splits");
        assert!(
            parents.values().flatten().any(|p| p.starts_with("L-")),
            "no rework"
        );
        // Every finished lot reaches raw lots in exactly `levels` steps.
        let finished = made.keys().filter(|k| k.starts_with("L-")).count();
        assert_eq!(finished, plant.runs.len());
        let mut frontier = vec![lot_depth_probe(&plant)];
        for _ in 0..plant.def.genealogy_levels {
            frontier = frontier
                .iter()
                .flat_map(|l| parents[l].iter().filter(|p| !p.starts_with("L-")).cloned())
                .collect();
        }
        assert!(!frontier.is_empty() && frontier.iter().all(|l| l.starts_with("R-")));
    }
}

fn lot_depth_probe(plant: &Plant) -> String {
    plant::lot_id(plant.runs.len() / 2)
}

#[test]
fn context_tables_fit_the_plant() {
    let plant = Arc::new(Plant::new(tiny()).unwrap());
    let equipment = tables::equipment_batch(&plant);
    let levels = strings(&equipment, "level");
    assert_eq!(levels.iter().filter(|l| *l == "work_unit").count(), 12);
    assert_eq!(levels.iter().filter(|l| *l == "enterprise").count(), 1);
    let ids: HashSet<String> = strings(&equipment, "id").into_iter().collect();
    let runs: Vec<RecordBatch> = tables::production_runs(plant.clone(), 100).collect();
    let rows: usize = runs.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, plant.runs.len() * 4);
    for b in &runs {
        assert!(strings(b, "equipment").iter().all(|e| ids.contains(e)));
    }
    let orders: Vec<RecordBatch> = tables::work_orders(plant.clone(), 100).collect();
    let open = orders
        .iter()
        .map(|b| b.column_by_name("actual_end").unwrap().null_count())
        .sum::<usize>();
    assert_eq!(
        open,
        plant.lines.len(),
        "one order per line still running at the end"
    );
}

#[test]
fn too_few_edges_are_refused() {
    let mut def = tiny();
    def.edges = 10;
    let plant = Arc::new(Plant::new(def).unwrap());
    let err = Genealogy::new(plant).err().unwrap().to_string();
    assert!(err.contains("too few"), "{err}");
}
