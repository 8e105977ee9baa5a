//! `IngestService.WriteContext`: context events from MES adapters
//! (equipment, work orders, lots, production runs, genealogy edges) become
//! rows of the context tables' Arrow batches, one batch per table, written
//! as one atomic request through [`Engine::write_tables_as`]. Validation,
//! versioning (reasons for rewrites), audit and caches are the write path's,
//! as for Flight SQL; this module only maps events to columns and the
//! write path's errors back to event index and message field.
//!
//! [`Engine::write_tables_as`]: crate::ingest::Engine::write_tables_as

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{Field, Schema};

use super::{GrpcServices, INTERFACE, Outcome};
use crate::ingest::{IngestError, REASON_HEADER, WriteContext};
use crate::model::{self, TableDef, ValidationError};
use crate::proto::context_event::Event;
use crate::proto::{ContextEvent, ContextRequest, EventError};

/// The `interface` of context writes in their `audit_log` entries.
pub const AUDIT_INTERFACE: &str = "grpc.context";

/// A kind of context event: its `ContextEvent` field, its table, and its
/// message's fields in the order of the table's columns (timestamps carry
/// an `_ns` suffix).
struct Kind {
    name: &'static str,
    table: &'static str,
    fields: &'static [&'static str],
}

const KINDS: [Kind; 5] = [
    Kind {
        name: "equipment",
        table: "equipment",
        fields: &["id", "name", "parent_id", "level"],
    },
    Kind {
        name: "work_order",
        table: "work_orders",
        fields: &[
            "id",
            "material",
            "quantity",
            "uom",
            "status",
            "planned_start_ns",
            "planned_end_ns",
            "actual_start_ns",
            "actual_end_ns",
        ],
    },
    Kind {
        name: "lot",
        table: "lots",
        fields: &[
            "id",
            "material",
            "quantity",
            "uom",
            "status",
            "work_order",
            "created_at_ns",
        ],
    },
    Kind {
        name: "production_run",
        table: "production_runs",
        fields: &[
            "equipment",
            "work_order",
            "lot",
            "operation",
            "start_ts_ns",
            "end_ts_ns",
        ],
    },
    Kind {
        name: "genealogy_edge",
        table: "genealogy",
        fields: &[
            "input_lot",
            "output_lot",
            "quantity",
            "uom",
            "ts_ns",
            "work_order",
            "equipment",
        ],
    },
];

impl Kind {
    fn def(&self) -> &'static TableDef {
        model::table(self.table).expect("context table is registered")
    }

    /// The message field of one of the table's columns.
    fn field_of<'a>(&self, column: &'a str) -> &'a str {
        self.def()
            .column_index(column)
            .map_or(column, |i| self.fields[i])
    }
}

/// One value of an event, typed as its column.
enum Cell<'a> {
    Text(Option<&'a str>),
    Number(Option<f64>),
    /// Nanoseconds since the epoch, UTC.
    Time(Option<i64>),
}

fn set(value: &str) -> Cell<'_> {
    Cell::Text(Some(value))
}

fn opt(value: &Option<String>) -> Cell<'_> {
    Cell::Text(value.as_deref())
}

/// The kind (index into [`KINDS`]) of an event and its values in column order.
fn cells(event: &Event) -> (usize, Vec<Cell<'_>>) {
    use Cell::{Number, Time};
    match event {
        Event::Equipment(e) => (
            0,
            vec![set(&e.id), opt(&e.name), opt(&e.parent_id), opt(&e.level)],
        ),
        Event::WorkOrder(w) => (
            1,
            vec![
                set(&w.id),
                opt(&w.material),
                Number(w.quantity),
                opt(&w.uom),
                opt(&w.status),
                Time(w.planned_start_ns),
                Time(w.planned_end_ns),
                Time(w.actual_start_ns),
                Time(w.actual_end_ns),
            ],
        ),
        Event::Lot(l) => (
            2,
            vec![
                set(&l.id),
                opt(&l.material),
                Number(l.quantity),
                opt(&l.uom),
                opt(&l.status),
                opt(&l.work_order),
                Time(l.created_at_ns),
            ],
        ),
        Event::ProductionRun(r) => (
            3,
            vec![
                set(&r.equipment),
                opt(&r.work_order),
                opt(&r.lot),
                opt(&r.operation),
                Time(r.start_ts_ns),
                Time(r.end_ts_ns),
            ],
        ),
        Event::GenealogyEdge(g) => (
            4,
            vec![
                set(&g.input_lot),
                set(&g.output_lot),
                Number(g.quantity),
                opt(&g.uom),
                Time(g.ts_ns),
                opt(&g.work_order),
                opt(&g.equipment),
            ],
        ),
    }
}

/// One table's events of a request.
struct Part {
    kind: usize,
    /// Index in the request of each row's event.
    events: Vec<usize>,
    batch: RecordBatch,
}

/// Maps a request's events to one batch per table (tables in [`KINDS`]
/// order, events in request order within a table). Nothing is checked here
/// but that each event has a kind: the write path validates.
fn to_parts(events: &[ContextEvent]) -> Result<Vec<Part>, EventError> {
    let mut rows: Vec<(Vec<usize>, Vec<Vec<Cell<'_>>>)> =
        KINDS.iter().map(|_| Default::default()).collect();
    for (index, event) in events.iter().enumerate() {
        let Some(event) = &event.event else {
            let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            return Err(EventError {
                event: Some(index as u64),
                reason: format!("event {index} sets none of {}", kinds.join(", ")),
                ..Default::default()
            });
        };
        let (kind, cells) = cells(event);
        rows[kind].0.push(index);
        rows[kind].1.push(cells);
    }
    Ok(rows
        .into_iter()
        .enumerate()
        .filter(|(_, (events, _))| !events.is_empty())
        .map(|(kind, (events, cells))| Part {
            kind,
            events,
            batch: to_batch(&KINDS[kind], &cells),
        })
        .collect())
}

/// A batch of `kind`'s table's columns from its events' cells (at least one
/// row); every column nullable, so a missing required value reaches the
/// write path's validation, which names it.
fn to_batch(kind: &Kind, rows: &[Vec<Cell<'_>>]) -> RecordBatch {
    let def = kind.def();
    let mut fields = Vec::with_capacity(def.schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
    for (i, field) in def.schema.fields().iter().enumerate() {
        // An event kind's cells have the same variant in every event.
        let array: ArrayRef = match rows[0][i] {
            Cell::Text(_) => Arc::new(StringArray::from_iter(rows.iter().map(|r| match r[i] {
                Cell::Text(v) => v,
                _ => None,
            }))),
            Cell::Number(_) => Arc::new(Float64Array::from_iter(rows.iter().map(|r| match r[i] {
                Cell::Number(v) => v,
                _ => None,
            }))),
            Cell::Time(_) => {
                let times = rows.iter().map(|r| match r[i] {
                    Cell::Time(v) => v,
                    _ => None,
                });
                Arc::new(TimestampNanosecondArray::from_iter(times).with_timezone(model::UTC))
            }
        };
        fields.push(Field::new(field.name(), array.data_type().clone(), true));
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("one column per field, one value per event")
}

/// The error entry of a request the write path refused: event, field and
/// value when the problem is one event's.
fn event_error(request: u64, parts: &[Part], e: &IngestError) -> EventError {
    let mut error = EventError {
        request,
        reason: e.to_string(),
        ..Default::default()
    };
    let IngestError::InPart { part, source, .. } = e else {
        return error;
    };
    let part = &parts[*part];
    let kind = &KINDS[part.kind];
    error.kind = kind.name.into();
    let (row, field, reason) = match source.as_ref() {
        IngestError::Invalid(ValidationError::BadValue {
            row,
            column,
            value,
            problem,
        }) => {
            let field = kind.field_of(column);
            error.value = value.clone();
            (
                *row,
                field,
                format!("{}.{field} '{value}' {problem}", kind.name),
            )
        }
        IngestError::Invalid(ValidationError::Null { row, column }) => {
            let field = kind.field_of(column);
            (
                *row,
                field,
                format!(
                    "{}.{field} must be set (the column is not nullable)",
                    kind.name
                ),
            )
        }
        IngestError::ReasonRequired {
            table,
            key,
            op,
            row,
        } => (
            *row,
            "",
            format!(
                "{op} an existing {table} record ({key}) needs a reason: set \
                 ContextRequest.reason, or the call metadata '{REASON_HEADER}' for every \
                 request of the stream"
            ),
        ),
        other => {
            error.reason = format!("{} events: {other}", kind.name);
            return error;
        }
    };
    error.event = part.events.get(row).map(|&i| i as u64);
    error.field = field.into();
    error.reason = reason;
    error
}

impl GrpcServices {
    /// Validates and writes one request of a `WriteContext` stream, atomic
    /// across the tables its events touch. The request's `reason` overrides
    /// the call's.
    pub(super) async fn write_context_one(
        &self,
        who: WriteContext,
        index: u64,
        request: ContextRequest,
    ) -> Outcome<EventError> {
        let events = request.events.len();
        if events == 0 {
            return Outcome::Written(0);
        }
        let who = match request.reason.filter(|r| !r.trim().is_empty()) {
            Some(reason) => who.with_reason(Some(reason)),
            None => who,
        };
        // Context events come by the dozen, not the million: mapping them
        // stays on the async worker.
        let parts = match to_parts(&request.events) {
            Ok(parts) => parts,
            Err(error) => {
                self.metrics.rejected(INTERFACE, "invalid");
                let error = EventError {
                    request: index,
                    ..error
                };
                return Outcome::Rejected {
                    error,
                    rows: events,
                };
            }
        };
        let tables = parts
            .iter()
            .map(|p| (KINDS[p.kind].def(), vec![p.batch.clone()]))
            .collect();
        match self.engine.write_tables_as(&who, tables).await {
            Ok(written) => {
                for (part, rows) in parts.iter().zip(&written) {
                    let table = KINDS[part.kind].table;
                    self.metrics.record_write(INTERFACE, table, &Ok(*rows));
                }
                Outcome::Written(written.iter().sum())
            }
            Err(e) => {
                let table = KINDS[parts[0].kind].table;
                let error = event_error(index, &parts, &e);
                let result = Err(e);
                self.metrics.record_write(INTERFACE, table, &result);
                match result {
                    Err(e) if !e.is_client_error() => Outcome::Failed(e),
                    _ => Outcome::Rejected {
                        error,
                        rows: events,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Equipment, GenealogyEdge, Lot, ProductionRun, WorkOrder};

    fn event(event: Event) -> ContextEvent {
        ContextEvent { event: Some(event) }
    }

    /// The write path's error for a validation problem in part `part`.
    fn in_part(part: usize, def: &'static TableDef, e: ValidationError) -> IngestError {
        IngestError::InPart {
            part,
            table: def.name,
            source: Box::new(IngestError::Invalid(e)),
        }
    }

    /// One event of every kind with every field set.
    fn every_kind() -> Vec<ContextEvent> {
        let s = |v: &str| Some(v.to_string());
        vec![
            event(Event::GenealogyEdge(GenealogyEdge {
                input_lot: "A".into(),
                output_lot: "L".into(),
                quantity: Some(2.0),
                uom: s("kg"),
                ts_ns: Some(5),
                work_order: s("WO-1"),
                equipment: s("oven"),
            })),
            event(Event::Equipment(Equipment {
                id: "oven".into(),
                name: s("Oven"),
                parent_id: s("line"),
                level: s("work_unit"),
            })),
            event(Event::WorkOrder(WorkOrder {
                id: "WO-1".into(),
                material: s("cookie"),
                quantity: Some(10.0),
                uom: s("pcs"),
                status: s("released"),
                planned_start_ns: Some(1),
                planned_end_ns: Some(2),
                actual_start_ns: Some(3),
                actual_end_ns: Some(4),
            })),
            event(Event::Lot(Lot {
                id: "L".into(),
                material: s("cookie"),
                quantity: Some(9.0),
                uom: s("pcs"),
                status: s("created"),
                work_order: s("WO-1"),
                created_at_ns: Some(6),
            })),
            event(Event::ProductionRun(ProductionRun {
                equipment: "oven".into(),
                work_order: s("WO-1"),
                lot: s("L"),
                operation: s("bake"),
                start_ts_ns: Some(3),
                end_ts_ns: Some(4),
            })),
        ]
    }

    #[test]
    fn kinds_name_every_column_of_their_table() {
        for kind in &KINDS {
            let columns: Vec<&str> = kind
                .def()
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            assert_eq!(columns.len(), kind.fields.len(), "{}", kind.table);
            for (column, field) in columns.iter().zip(kind.fields) {
                assert!(
                    *field == *column || *field == format!("{column}_ns"),
                    "{}: field {field} for column {column}",
                    kind.table
                );
            }
        }
    }

    #[test]
    fn events_map_to_valid_batches_of_their_tables() {
        let parts = to_parts(&every_kind()).unwrap();
        let tables: Vec<&str> = parts.iter().map(|p| KINDS[p.kind].table).collect();
        assert_eq!(
            tables,
            [
                "equipment",
                "work_orders",
                "lots",
                "production_runs",
                "genealogy"
            ]
        );
        assert_eq!(
            parts[4].events,
            [0],
            "the edge is the request's first event"
        );
        for part in &parts {
            let def = KINDS[part.kind].def();
            let normalized = model::normalize_batch(def, &part.batch, 0).unwrap();
            assert_eq!(normalized.num_rows(), 1);
            for (column, field) in normalized.columns().iter().zip(def.schema.fields()) {
                assert_eq!(column.null_count(), 0, "{}.{}", def.name, field.name());
            }
        }
    }

    #[test]
    fn errors_name_event_field_and_value() {
        let mut events = every_kind();
        events.push(event(Event::Equipment(Equipment {
            id: "cell".into(),
            level: Some("plant".into()),
            ..Default::default()
        })));
        let parts = to_parts(&events).unwrap();
        let def = KINDS[0].def();
        let e = model::normalize_batch(def, &parts[0].batch, 0).unwrap_err();
        let error = event_error(7, &parts, &in_part(0, def, e));
        assert_eq!((error.request, error.event), (7, Some(5)));
        assert_eq!(
            (
                error.kind.as_str(),
                error.field.as_str(),
                error.value.as_str()
            ),
            ("equipment", "level", "plant")
        );
        assert!(error.reason.contains("work_center"), "{}", error.reason);

        let run = to_parts(&[event(Event::ProductionRun(ProductionRun {
            equipment: "oven".into(),
            ..Default::default()
        }))])
        .unwrap();
        let def = KINDS[3].def();
        let e = model::normalize_batch(def, &run[0].batch, 0).unwrap_err();
        let error = event_error(0, &run, &in_part(0, def, e));
        assert_eq!(
            (error.event, error.field.as_str()),
            (Some(0), "start_ts_ns")
        );

        let empty = to_parts(&[event(Event::Lot(Lot::default())), ContextEvent::default()]);
        let error = empty.err().expect("an event without a kind");
        assert_eq!(error.event, Some(1));
        assert!(error.reason.contains("genealogy_edge"), "{}", error.reason);
    }
}
