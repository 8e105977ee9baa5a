//! The generated tables as Arrow batches: `tags`, `equipment`, `work_orders`
//! and `production_runs` (small: built from the plant's layout and schedule).
//! Every table has the model's schema ([`crate::model::table`]).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt8Builder, new_null_array,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::catalog::{OPERATIONS, interpolation, value_type};
use super::plant::{MATERIALS, Plant, lot_id, work_order_id};
use super::rng::{between, key, unit};
use crate::model;

/// Every table `lotline generate` writes, in the order it writes them.
pub const TABLES: [&str; 7] = [
    "equipment",
    "tags",
    "work_orders",
    "production_runs",
    "lots",
    "genealogy",
    "samples",
];

pub(super) const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The schema `lotline generate` writes for `table`: the model's, so the
/// files and streams fit the server's tables exactly.
pub fn schema(table: &str) -> SchemaRef {
    model::table(table)
        .unwrap_or_else(|| panic!("generate knows no table '{table}'"))
        .schema
        .clone()
}

/// Arrange named columns in schema order, casting where the schema's type
/// differs and filling columns we do not generate with nulls.
pub(super) fn assemble(
    schema: &SchemaRef,
    columns: Vec<(&str, ArrayRef)>,
    rows: usize,
) -> RecordBatch {
    let arrays: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match columns.iter().find(|(n, _)| f.name() == *n) {
            Some((_, a)) if a.data_type() == f.data_type() => a.clone(),
            Some((_, a)) => arrow::compute::cast(a.as_ref(), f.data_type()).unwrap_or_else(|e| {
                panic!(
                    "generated column '{}' cannot be {}: {e}",
                    f.name(),
                    f.data_type()
                )
            }),
            None => new_null_array(f.data_type(), rows),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), arrays).expect("generated batch matches its schema")
}

pub(super) fn timestamps(capacity: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(capacity).with_timezone(model::UTC)
}

fn col(array: impl Array + 'static) -> ArrayRef {
    Arc::new(array)
}

/// One row per tag.
pub fn tags_batch(plant: &Plant) -> RecordBatch {
    let n = plant.tags.len();
    let mut name = StringBuilder::with_capacity(n, n * 32);
    let mut description = StringBuilder::with_capacity(n, n * 40);
    let mut eng_unit = StringBuilder::with_capacity(n, n * 8);
    let mut equipment = StringBuilder::with_capacity(n, n * 16);
    let mut vtype = StringBuilder::with_capacity(n, n * 6);
    let mut interp = StringBuilder::with_capacity(n, n * 6);
    let mut low = Float64Builder::with_capacity(n);
    let mut high = Float64Builder::with_capacity(n);
    for tag in &plant.tags {
        let unit = &plant.units[tag.unit];
        name.append_value(&tag.name);
        description.append_value(format!(
            "{} {} {}",
            plant.lines[unit.line].id, unit.name, tag.spec.description
        ));
        // The catalog writes symbols; `tags` holds their codes.
        eng_unit.append_option((!tag.spec.unit.is_empty()).then(|| {
            model::units::code_of(tag.spec.unit).expect("the catalog's units name codes")
        }));
        equipment.append_value(&unit.id);
        vtype.append_value(value_type(&tag.spec.signal));
        interp.append_value(interpolation(&tag.spec.signal));
        low.append_option(tag.spec.low);
        high.append_option(tag.spec.high);
    }
    // Aggregate configuration left null: the server's OPC UA defaults apply.
    let mut none_bool = BooleanBuilder::with_capacity(n);
    let mut none_u8 = UInt8Builder::with_capacity(n);
    none_bool.append_nulls(n);
    none_u8.append_nulls(n);
    let columns = vec![
        ("tag", col(name.finish())),
        ("description", col(description.finish())),
        ("unit", col(eng_unit.finish())),
        ("equipment", col(equipment.finish())),
        ("value_type", col(vtype.finish())),
        ("interpolation", col(interp.finish())),
        ("eng_low", col(low.finish())),
        ("eng_high", col(high.finish())),
        ("treat_uncertain_as_bad", col(none_bool.finish_cloned())),
        ("percent_data_good", col(none_u8.finish_cloned())),
        ("percent_data_bad", col(none_u8.finish())),
        ("use_sloped_extrapolation", col(none_bool.finish())),
    ];
    assemble(&schema("tags"), columns, n)
}

/// The ISA-95 tree: enterprise, sites, areas, lines (work centers), units.
pub fn equipment_batch(plant: &Plant) -> RecordBatch {
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut parent = StringBuilder::new();
    let mut level = StringBuilder::new();
    let mut row = |i: &str, n: &str, p: Option<&str>, l: &str| {
        id.append_value(i);
        name.append_value(n);
        parent.append_option(p);
        level.append_value(l);
    };
    let enterprise = plant.def.enterprise.as_str();
    row(enterprise, enterprise, None, "enterprise");
    for site in 1..=plant.def.sites {
        row(
            &format!("site{site}"),
            &format!("Site {site}"),
            Some(enterprise),
            "site",
        );
        for area in 1..=plant.def.areas_per_site {
            let parent = format!("site{site}");
            let name = format!("Site {site} area {area}");
            row(
                &format!("site{site}.area{area}"),
                &name,
                Some(&parent),
                "area",
            );
        }
    }
    for line in &plant.lines {
        let parent = format!("site{}.area{}", line.site, line.area);
        let name = format!("Line {}", &line.id[4..]);
        row(&line.id, &name, Some(&parent), "work_center");
    }
    for unit in &plant.units {
        let line = &plant.lines[unit.line].id;
        let name = format!("Line {} {}", &line[4..], unit.name);
        row(&unit.id, &name, Some(line), "work_unit");
    }
    let rows = id.len();
    let columns = vec![
        ("id", col(id.finish())),
        ("name", col(name.finish())),
        ("parent_id", col(parent.finish())),
        ("level", col(level.finish())),
    ];
    assemble(&schema("equipment"), columns, rows)
}

/// Pieces a run makes: the packer's rate (0.4/s) over the run.
pub(super) fn run_quantity(plant: &Plant, run: usize) -> f64 {
    let r = &plant.runs[run];
    ((r.end - r.start) as f64 * 0.4 / 100.0).round() * 100.0
}

/// Batches of at most `batch_rows` rows, one row per item of `0..total`.
fn batched(
    total: usize,
    batch_rows: usize,
    mut build: impl FnMut(std::ops::Range<usize>) -> RecordBatch + Send + 'static,
) -> impl Iterator<Item = RecordBatch> + Send + 'static {
    let step = batch_rows.max(1);
    (0..total)
        .step_by(step)
        .map(move |first| build(first..(first + step).min(total)))
}

/// One work order per production run (`WO-n`), planned a little off the
/// actual times; the orders still running at the end are `in_progress`.
pub fn work_orders(
    plant: Arc<Plant>,
    batch_rows: usize,
) -> impl Iterator<Item = RecordBatch> + Send {
    batched(plant.runs.len(), batch_rows, move |range| {
        let n = range.len();
        let mut id = StringBuilder::with_capacity(n, n * 8);
        let mut material = StringBuilder::with_capacity(n, n * 12);
        let mut quantity = Float64Builder::with_capacity(n);
        let mut uom = StringBuilder::with_capacity(n, n * 3);
        let mut status = StringBuilder::with_capacity(n, n * 10);
        let (mut ps, mut pe, mut as_, mut ae) =
            (timestamps(n), timestamps(n), timestamps(n), timestamps(n));
        for i in range {
            let r = &plant.runs[i];
            let at = |secs: i64| plant.start_ns + secs * NANOS_PER_SEC;
            let h = key(plant.seed, &[50, i as u64]);
            let planned = r.start - 300 + between(h, 0, 600) as i64;
            let planned_len = (r.end - r.start + 150) / 300 * 300;
            id.append_value(work_order_id(i));
            material.append_value(MATERIALS[r.material as usize]);
            quantity.append_value(run_quantity(&plant, i));
            uom.append_value("pcs");
            let open = plant.run_open(r);
            status.append_value(if open { "in_progress" } else { "completed" });
            ps.append_value(at(planned));
            pe.append_value(at(planned + planned_len));
            as_.append_value(at(r.start));
            ae.append_option((!open).then(|| at(r.end)));
        }
        let columns = vec![
            ("id", col(id.finish())),
            ("material", col(material.finish())),
            ("quantity", col(quantity.finish())),
            ("uom", col(uom.finish())),
            ("status", col(status.finish())),
            ("planned_start", col(ps.finish())),
            ("planned_end", col(pe.finish())),
            ("actual_start", col(as_.finish())),
            ("actual_end", col(ae.finish())),
        ];
        assemble(&schema("work_orders"), columns, n)
    })
}

/// One row per unit per run: the unit worked that order's lot from the
/// run's start to its end (null while running).
pub fn production_runs(
    plant: Arc<Plant>,
    batch_rows: usize,
) -> impl Iterator<Item = RecordBatch> + Send {
    let per_line = plant.def.units_per_line as usize;
    batched(plant.runs.len() * per_line, batch_rows, move |range| {
        let n = range.len();
        let mut equipment = StringBuilder::with_capacity(n, n * 14);
        let mut work_order = StringBuilder::with_capacity(n, n * 8);
        let mut lot = StringBuilder::with_capacity(n, n * 8);
        let mut operation = StringBuilder::with_capacity(n, n * 4);
        let (mut start, mut end) = (timestamps(n), timestamps(n));
        for row in range {
            let (i, u) = (row / per_line, row % per_line);
            let r = &plant.runs[i];
            let unit = &plant.units[r.line as usize * per_line + u];
            equipment.append_value(&unit.id);
            work_order.append_value(work_order_id(i));
            lot.append_value(lot_id(i));
            operation.append_value(OPERATIONS[unit.kind]);
            start.append_value(plant.start_ns + r.start * NANOS_PER_SEC);
            end.append_option((!plant.run_open(r)).then(|| plant.start_ns + r.end * NANOS_PER_SEC));
        }
        let columns = vec![
            ("equipment", col(equipment.finish())),
            ("work_order", col(work_order.finish())),
            ("lot", col(lot.finish())),
            ("operation", col(operation.finish())),
            ("start_ts", col(start.finish())),
            ("end_ts", col(end.finish())),
        ];
        assemble(&schema("production_runs"), columns, n)
    })
}

/// Fraction of a run's planned quantity its lot actually holds.
pub(super) fn yield_of(plant: &Plant, run: usize) -> f64 {
    0.95 + 0.05 * unit(key(plant.seed, &[51, run as u64]))
}
