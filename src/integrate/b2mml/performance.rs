//! `ShowOperationsPerformance`: what production did, for Level 4. One
//! `OperationsPerformance` holds one `OperationsResponse` per work order;
//! each production run of the work order is a `SegmentResponse` with its
//! actual start and end, its equipment (`EquipmentActual`), the lots it
//! consumed (from `genealogy`) and produced (its lot) as `MaterialActual`,
//! and per tag of its equipment a `SegmentData` whose children are the
//! run's time-weighted average, minimum, maximum and percent good (the
//! Part 13 kernels of `history_aggregate`), units as UN/ECE
//! Recommendation 20 codes ([`units`]). Element order follows the
//! V0701 schema's sequences (note its `Endtime` spelling in
//! `OperationsPerformance`).

use super::write::{Area, Xml, date_time};
use crate::model::units;

/// A work order and its runs, as the server gathered them.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder {
    pub id: String,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub equipment: String,
    /// `production_runs.operation`, the ISA-95 process segment.
    pub operation: Option<String>,
    /// The planned segment (`work_order_segments.segment`) this run did,
    /// when the plan names the run's equipment.
    pub segment: Option<String>,
    pub start: i64,
    /// `None` while the run goes on.
    pub end: Option<i64>,
    pub consumed: Vec<Material>,
    pub produced: Vec<Material>,
    pub tags: Vec<TagSummary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    pub material: Option<String>,
    pub lot: String,
    pub quantity: Option<f64>,
    pub uom: Option<String>,
}

/// A tag's figures over one run.
#[derive(Debug, Clone, PartialEq)]
pub struct TagSummary {
    pub tag: String,
    pub unit: Option<String>,
    pub time_weighted_average: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub percent_good: Option<f64>,
}

/// The document for `orders` (each with at least one run), to `receiver`.
pub fn document(id: &str, orders: &[WorkOrder], receiver: Option<String>) -> Vec<u8> {
    let mut doc = Xml::new("ShowOperationsPerformance", true);
    doc.application_area("ApplicationArea", &Area::ours(receiver));
    doc.open("DataArea");
    doc.empty("Show");
    doc.open("OperationsPerformance");
    doc.leaf("ID", id);
    let runs = || orders.iter().flat_map(|o| &o.runs);
    if let Some(start) = runs().map(|r| r.start).min() {
        doc.leaf("StartTime", &date_time(start));
    }
    if let Some(end) = finished_end(runs()) {
        doc.leaf("Endtime", &date_time(end));
    }
    doc.leaf("OperationsType", "Production");
    doc.leaf("PerformanceState", state(runs()));
    for order in orders {
        response(&mut doc, order);
    }
    doc.close("OperationsPerformance");
    doc.close("DataArea");
    doc.finish("ShowOperationsPerformance")
}

/// The latest end, when every run has ended.
fn finished_end<'a>(runs: impl Iterator<Item = &'a Run>) -> Option<i64> {
    runs.map(|r| r.end)
        .try_fold(i64::MIN, |latest, end| end.map(|e| latest.max(e)))
}

/// `Completed` when every run has ended, else `Running`.
fn state<'a>(runs: impl Iterator<Item = &'a Run>) -> &'static str {
    if finished_end(runs).is_some() {
        "Completed"
    } else {
        "Running"
    }
}

fn response(doc: &mut Xml, order: &WorkOrder) {
    doc.open("OperationsResponse");
    doc.leaf("ID", &order.id);
    if let Some(start) = order.runs.iter().map(|r| r.start).min() {
        doc.leaf("StartTime", &date_time(start));
    }
    if let Some(end) = finished_end(order.runs.iter()) {
        doc.leaf("EndTime", &date_time(end));
    }
    doc.leaf("OperationsType", "Production");
    doc.leaf("OperationsRequestID", &order.id);
    doc.leaf("ResponseState", state(order.runs.iter()));
    for (index, run) in order.runs.iter().enumerate() {
        segment(doc, order, index + 1, run);
    }
    doc.close("OperationsResponse");
}

fn segment(doc: &mut Xml, order: &WorkOrder, number: usize, run: &Run) {
    doc.open("SegmentResponse");
    doc.leaf("ID", &format!("{}.{number}", order.id));
    doc.leaf("ActualStartTime", &date_time(run.start));
    if let Some(end) = run.end {
        doc.leaf("ActualEndTime", &date_time(end));
    }
    doc.leaf("OperationsType", "Production");
    doc.maybe("ProcessSegmentID", run.operation.as_deref());
    doc.leaf("OperationsRequestID", &order.id);
    doc.maybe("SegmentRequirementID", run.segment.as_deref());
    doc.leaf("SegmentState", state(std::iter::once(run)));
    for tag in &run.tags {
        doc.open("SegmentData");
        doc.leaf("ID", &tag.tag);
        let unit = tag.unit.as_deref().map(units::unece_code);
        let figures = [
            ("TimeWeightedAverage", tag.time_weighted_average, unit),
            ("Minimum", tag.minimum, unit),
            ("Maximum", tag.maximum, unit),
            // UNECE Recommendation 20: P1 is percent.
            ("PercentGood", tag.percent_good, Some("P1")),
        ];
        for (name, value, unit) in figures {
            let Some(value) = value else { continue };
            doc.open("SegmentDataChild");
            doc.leaf("ID", name);
            doc.number("Value", "ValueString", value, unit);
            doc.close("SegmentDataChild");
        }
        doc.close("SegmentData");
    }
    doc.open("EquipmentActual");
    doc.leaf("ID", "1");
    doc.leaf("EquipmentID", &run.equipment);
    doc.close("EquipmentActual");
    let materials = run
        .consumed
        .iter()
        .map(|m| (m, "Consumed"))
        .chain(run.produced.iter().map(|m| (m, "Produced")));
    for (index, (material, use_)) in materials.enumerate() {
        doc.open("MaterialActual");
        doc.leaf("ID", &(index + 1).to_string());
        doc.maybe("MaterialDefinitionID", material.material.as_deref());
        doc.leaf("MaterialLotID", &material.lot);
        doc.leaf("MaterialUse", use_);
        if let Some(quantity) = material.quantity {
            let uom = material.uom.as_deref().map(units::unece_code);
            doc.number("Quantity", "QuantityString", quantity, uom);
        }
        doc.close("MaterialActual");
    }
    doc.close("SegmentResponse");
}
