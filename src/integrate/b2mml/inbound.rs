//! B2MML documents into lotline's rows (docs/INTEGRATION.md has the table):
//! `{Process,Sync}OperationsSchedule` → `work_orders`,
//! `work_order_segments`, `work_order_materials`, `work_order_parameters`;
//! `{Process,Sync}MaterialInformation`, `…MaterialDefinition`,
//! `…MaterialLot` → `materials`, `lots`; `{Process,Sync}EquipmentInformation`
//! and `…Equipment` → `equipment` (nested `EquipmentChild` gives
//! `parent_id`). Identifiers stay as the sender wrote them here, marked with
//! their kind; [`super::resolve`] maps them to lotline's keys.

use super::B2mmlError;
use super::schema::{self, check};
use super::tree::{Element, NAMESPACE};

/// An identifier of the sending system, to be resolved to lotline's key.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalId {
    /// What it names (`equipment`, `material`, `lot`, `work_order`).
    pub kind: &'static str,
    pub id: String,
    /// A reference to a record that must exist (in lotline, or defined by
    /// the same document); else the id names a record the document defines
    /// or plans (a new key is fine).
    pub must_exist: bool,
    pub path: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// The document leaves the value out: lotline keeps the value it has
    /// (null for a new record). A work order's actual times are the
    /// MES's, not the ERP's; a partial equipment tree keeps its parents.
    Keep,
    Text(String),
    Number(f64),
    /// Nanoseconds since the epoch, UTC.
    Time(i64),
    Id(ExternalId),
}

/// One row for `table`, with the element it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<(&'static str, Cell)>,
    pub path: String,
    pub line: usize,
}

/// The rows of one table; columns a row does not name are kept as lotline
/// has them ([`Cell::Keep`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub table: &'static str,
    pub rows: Vec<Row>,
}

/// A document read: who sent it, what it is, and its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `ApplicationArea/Sender/LogicalID`: the system its ids belong to.
    pub system: String,
    pub bod_id: Option<String>,
    /// The root element's name (`ProcessOperationsSchedule`).
    pub root: String,
    /// The `ID`s of its container nouns (an operations schedule's, a
    /// material or equipment information's), for the import's reason.
    pub noun_ids: Vec<String>,
    pub parts: Vec<Part>,
}

/// The verbs lotline takes: both ask the receiver to store the nouns.
const VERBS: &[&str] = &["Process", "Sync"];

/// Reads a parsed B2MML document into rows, or says which element is wrong.
pub fn read(root: &Element) -> Result<Document, B2mmlError> {
    if root.namespace != NAMESPACE {
        return Err(B2mmlError::NotB2mml {
            root: root.name.clone(),
            namespace: root.namespace.clone(),
        });
    }
    let (verb, noun) = VERBS
        .iter()
        .find_map(|v| root.name.strip_prefix(v).map(|n| (*v, n)))
        .ok_or_else(|| B2mmlError::Unsupported(root.name.clone()))?;
    let area = root
        .first("ApplicationArea")
        .ok_or_else(|| root.invalid("<ApplicationArea> is required"))?;
    check(area, schema::APPLICATION_AREA)?;
    area.required("CreationDateTime")?;
    let sender = area
        .first("Sender")
        .ok_or_else(|| area.invalid("<Sender> with a <LogicalID> is required: it names the system whose ids the document uses"))?;
    let system = sender.required("LogicalID")?.to_string();
    let data = root
        .first("DataArea")
        .ok_or_else(|| root.invalid("<DataArea> is required"))?;
    if data.first(verb).is_none() {
        return Err(data.invalid(format!(
            "<{verb}> is required as the first child of <DataArea>"
        )));
    }
    let mut parts = Vec::new();
    let mut nouns = 0;
    let mut noun_ids = Vec::new();
    for child in &data.children {
        if child.name == verb {
            continue;
        }
        if child.name != noun {
            return Err(child.invalid(format!(
                "<{}> does not belong in the <DataArea> of <{}>: expected <{verb}> and <{noun}>",
                child.name, root.name
            )));
        }
        nouns += 1;
        // A container noun's id names the document (a schedule's week);
        // a record noun's is a record's key.
        let container = noun == "OperationsSchedule" || noun.ends_with("Information");
        if let Some(id) = child.text_of("ID").filter(|_| container) {
            noun_ids.push(id.to_string());
        }
        match noun {
            "OperationsSchedule" => operations_schedule(child, &mut parts)?,
            "MaterialInformation" => material_information(child, &mut parts)?,
            "MaterialDefinition" => material_definition(child, &mut parts)?,
            "MaterialLot" => material_lot(child, &mut parts)?,
            "EquipmentInformation" => {
                check(child, schema::EQUIPMENT_INFORMATION)?;
                for equipment in child.all("Equipment") {
                    equipment_tree(equipment, None, &mut parts)?;
                }
            }
            "Equipment" => equipment_tree(child, None, &mut parts)?,
            _ => return Err(B2mmlError::Unsupported(root.name.clone())),
        }
    }
    if nouns == 0 {
        return Err(data.invalid(format!("<{noun}> is required in <DataArea>")));
    }
    Ok(Document {
        system,
        bod_id: area.text_of("BODID").map(str::to_string),
        root: root.name.clone(),
        noun_ids,
        parts,
    })
}

/// The rows for `table` in `parts`.
pub(super) fn part<'a>(parts: &'a mut Vec<Part>, table: &'static str) -> &'a mut Vec<Row> {
    let at = match parts.iter().position(|p| p.table == table) {
        Some(at) => at,
        None => {
            parts.push(Part {
                table,
                rows: Vec::new(),
            });
            parts.len() - 1
        }
    };
    &mut parts[at].rows
}

fn row(element: &Element, cells: Vec<(&'static str, Cell)>) -> Row {
    Row {
        cells,
        path: element.path.clone(),
        line: element.line,
    }
}

fn text(element: &Element, name: &str) -> Cell {
    element
        .text_of(name)
        .map_or(Cell::Keep, |t| Cell::Text(t.to_string()))
}

/// The id in the child `name` (a key the document defines when
/// `must_exist` is false, else a reference).
fn id_of(element: &Element, name: &str, kind: &'static str, must_exist: bool) -> Cell {
    match element.first(name).filter(|c| !c.text.is_empty()) {
        Some(child) => Cell::Id(ExternalId {
            kind,
            id: child.text.clone(),
            must_exist,
            path: child.path.clone(),
            line: child.line,
        }),
        None => Cell::Keep,
    }
}

fn required_id(element: &Element, kind: &'static str) -> Result<Cell, B2mmlError> {
    element.required("ID")?;
    Ok(id_of(element, "ID", kind, false))
}

/// An `xsd:dateTime` in nanoseconds (UTC when the text has no offset).
fn time(element: &Element, name: &str) -> Result<Cell, B2mmlError> {
    let Some(child) = element.first(name).filter(|c| !c.text.is_empty()) else {
        return Ok(Cell::Keep);
    };
    let text = child.text.as_str();
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|e| child.invalid(format!("'{text}' is not an xsd:dateTime: {e}")))?;
    parsed
        .timestamp_nanos_opt()
        .map(Cell::Time)
        .ok_or_else(|| child.invalid(format!("'{text}' is outside 1677..2262")))
}

/// The first `Quantity` child: its number and unit.
fn quantity(element: &Element) -> Result<(Cell, Cell), B2mmlError> {
    let Some(quantity) = element.first("Quantity") else {
        return Ok((Cell::Keep, Cell::Keep));
    };
    check(quantity, schema::QUANTITY)?;
    let value = match quantity.text_of("QuantityString") {
        Some(text) => {
            let number: f64 = text.parse().map_err(|_| {
                quantity
                    .first("QuantityString")
                    .expect("has text")
                    .invalid(format!("'{text}' is not a number"))
            })?;
            if !number.is_finite() || number < 0.0 {
                return Err(
                    quantity.invalid(format!("'{text}' is not a quantity (finite, at least 0)"))
                );
            }
            Cell::Number(number)
        }
        None => Cell::Keep,
    };
    Ok((value, text(quantity, "UnitOfMeasure")))
}

fn operations_schedule(schedule: &Element, parts: &mut Vec<Part>) -> Result<(), B2mmlError> {
    check(schedule, schema::OPERATIONS_SCHEDULE)?;
    for request in schedule.all("OperationsRequest") {
        check(request, schema::OPERATIONS_REQUEST)?;
        let work_order = required_id(request, "work_order")?;
        let mut produced = (Cell::Keep, Cell::Keep, Cell::Keep);
        for segment in request.all("SegmentRequirement") {
            check(segment, schema::SEGMENT_REQUIREMENT)?;
            for required in [
                "ID",
                "ProcessSegmentID",
                "OperationsDefinitionID",
                "OperationsSegmentID",
            ] {
                segment.required(required)?;
            }
            let segment_id = text(segment, "ID");
            let mut equipment = Cell::Keep;
            if let Some(requirement) = segment.first("EquipmentRequirement") {
                check(requirement, schema::EQUIPMENT_REQUIREMENT)?;
                requirement.required("ID")?;
                equipment = id_of(requirement, "EquipmentID", "equipment", true);
            }
            let cells = vec![
                ("work_order", work_order.clone()),
                ("segment", segment_id.clone()),
                ("process_segment", text(segment, "ProcessSegmentID")),
                ("equipment", equipment),
                ("earliest_start", time(segment, "EarliestStartTime")?),
                ("latest_end", time(segment, "LatestEndTime")?),
            ];
            part(parts, "work_order_segments").push(row(segment, cells));
            for parameter in segment.all("SegmentParameter") {
                let at = (&work_order, &segment_id);
                segment_parameter(parameter, at, None, parts)?;
            }
            for material in segment.all("MaterialRequirement") {
                check(material, schema::MATERIAL_REQUIREMENT)?;
                material.required("ID")?;
                let use_ = text(material, "MaterialUse");
                let definition = id_of(material, "MaterialDefinitionID", "material", true);
                let (amount, uom) = quantity(material)?;
                if use_ == Cell::Text("Produced".into()) {
                    produced = (definition.clone(), amount.clone(), uom.clone());
                }
                let cells = vec![
                    ("work_order", work_order.clone()),
                    ("segment", segment_id.clone()),
                    ("requirement", text(material, "ID")),
                    ("material_use", use_),
                    ("material", definition),
                    ("lot", id_of(material, "MaterialLotID", "lot", false)),
                    ("quantity", amount),
                    ("uom", uom),
                ];
                part(parts, "work_order_materials").push(row(material, cells));
            }
        }
        // The work order's material is what its last segment produces.
        let (material, amount, uom) = produced;
        let cells = vec![
            ("id", work_order),
            ("material", material),
            ("quantity", amount),
            ("uom", uom),
            ("status", text(request, "RequestState")),
            ("planned_start", time(request, "StartTime")?),
            ("planned_end", time(request, "EndTime")?),
        ];
        part(parts, "work_orders").push(row(request, cells));
    }
    Ok(())
}

/// A `SegmentParameter` (or `ParameterChild`, whose id is its path under
/// `parent`) of the segment `at` (work order, segment), depth first.
fn segment_parameter(
    parameter: &Element,
    at: (&Cell, &Cell),
    parent: Option<&str>,
    parts: &mut Vec<Part>,
) -> Result<(), B2mmlError> {
    check(parameter, schema::PARAMETER)?;
    let id = parameter.required("ID")?;
    if id.contains('/') {
        let element = parameter.first("ID").expect("required above");
        return Err(element.invalid(format!(
            "parameter ID '{id}' holds '/', which lotline keeps for a ParameterChild's path \
             (PARENT/CHILD)"
        )));
    }
    let path = parent.map_or_else(|| id.to_string(), |p| format!("{p}/{id}"));
    let mut values = parameter.all("Value");
    let value = values.next();
    if let Some(second) = values.next() {
        return Err(second.invalid(format!(
            "parameter '{path}' has more than one <Value>: lotline keeps one value per parameter"
        )));
    }
    let (text_value, data_type, uom) = match value {
        Some(value) => {
            check(value, schema::VALUE)?;
            (
                text(value, "ValueString"),
                text(value, "DataType"),
                text(value, "UnitOfMeasure"),
            )
        }
        None => (Cell::Keep, Cell::Keep, Cell::Keep),
    };
    let cells = vec![
        ("work_order", at.0.clone()),
        ("segment", at.1.clone()),
        ("parameter", Cell::Text(path.clone())),
        ("value", text_value),
        ("data_type", data_type),
        ("uom", uom),
        ("description", text(parameter, "Description")),
    ];
    part(parts, "work_order_parameters").push(row(parameter, cells));
    for child in parameter.all("ParameterChild") {
        segment_parameter(child, at, Some(&path), parts)?;
    }
    Ok(())
}

fn material_information(info: &Element, parts: &mut Vec<Part>) -> Result<(), B2mmlError> {
    check(info, schema::MATERIAL_INFORMATION)?;
    for definition in info.all("MaterialDefinition") {
        material_definition(definition, parts)?;
    }
    for lot in info.all("MaterialLot") {
        material_lot(lot, parts)?;
    }
    Ok(())
}

fn material_definition(definition: &Element, parts: &mut Vec<Part>) -> Result<(), B2mmlError> {
    check(definition, schema::MATERIAL_DEFINITION)?;
    let cells = vec![
        ("id", required_id(definition, "material")?),
        ("description", text(definition, "Description")),
        ("material_class", text(definition, "MaterialClassID")),
    ];
    part(parts, "materials").push(row(definition, cells));
    Ok(())
}

fn material_lot(lot: &Element, parts: &mut Vec<Part>) -> Result<(), B2mmlError> {
    check(lot, schema::MATERIAL_LOT)?;
    let (amount, uom) = quantity(lot)?;
    let cells = vec![
        ("id", required_id(lot, "lot")?),
        (
            "material",
            id_of(lot, "MaterialDefinitionID", "material", true),
        ),
        ("quantity", amount),
        ("uom", uom),
        ("status", text(lot, "Status")),
    ];
    part(parts, "lots").push(row(lot, cells));
    Ok(())
}

/// An `Equipment` and its `EquipmentChild` elements, depth first.
fn equipment_tree(
    equipment: &Element,
    parent: Option<&Cell>,
    parts: &mut Vec<Part>,
) -> Result<(), B2mmlError> {
    check(equipment, schema::EQUIPMENT)?;
    let id = required_id(equipment, "equipment")?;
    let level = match equipment.first("EquipmentLevel") {
        None => Cell::Keep,
        Some(level) => schema::EQUIPMENT_LEVELS
            .iter()
            .find(|(name, _)| *name == level.text)
            .map(|(_, ours)| ours.map_or(Cell::Keep, |l| Cell::Text(l.to_string())))
            .ok_or_else(|| {
                let names: Vec<&str> = schema::EQUIPMENT_LEVELS.iter().map(|l| l.0).collect();
                level.invalid(format!(
                    "'{}' is not an EquipmentLevel (one of {})",
                    level.text,
                    names.join(", ")
                ))
            })?,
    };
    let parent_id = match parent {
        Some(Cell::Id(parent)) => Cell::Id(ExternalId {
            must_exist: true,
            ..parent.clone()
        }),
        _ => Cell::Keep,
    };
    let cells = vec![
        ("id", id.clone()),
        ("name", text(equipment, "Description")),
        ("parent_id", parent_id),
        ("level", level),
    ];
    part(parts, "equipment").push(row(equipment, cells));
    for child in equipment.all("EquipmentChild") {
        equipment_tree(child, Some(&id), parts)?;
    }
    Ok(())
}
