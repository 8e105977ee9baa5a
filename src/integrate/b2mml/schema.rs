//! The part of B2MML V0701's schema lotline reads: for each element type it
//! maps, the children the schema allows (from the official XSDs). A child
//! outside its list (a misspelled or invented element) makes the document
//! invalid, so a typo never turns into a silently missing value; children
//! in the list that lotline does not map are accepted and ignored.

use super::B2mmlError;
use super::tree::{Element, NAMESPACE};

pub const APPLICATION_AREA: &[&str] = &[
    "Sender",
    "Receiver",
    "CreationDateTime",
    "Signature",
    "BODID",
    "UserArea",
];

pub const OPERATIONS_SCHEDULE: &[&str] = &[
    "ID",
    "Description",
    "Version",
    "PublishedDate",
    "StartTime",
    "EndTime",
    "HierarchyScope",
    "OperationsType",
    "ScheduleState",
    "OperationsRequest",
];

pub const OPERATIONS_REQUEST: &[&str] = &[
    "ID",
    "Description",
    "Version",
    "StartTime",
    "EndTime",
    "HierarchyScope",
    "OperationsType",
    "Priority",
    "RequestState",
    "OperationsDefinitionID",
    "OperationsSegmentID",
    "SegmentRequirement",
    "RequestedSegmentResponse",
    "RequiredByRequestedSegmentResponse",
];

pub const SEGMENT_REQUIREMENT: &[&str] = &[
    "ID",
    "Description",
    "Version",
    "EarliestStartTime",
    "LatestEndTime",
    "HierarchyScope",
    "OperationsType",
    "ProcessSegmentID",
    "Duration",
    "OperationsDefinitionID",
    "OperationsSegmentID",
    "SegmentState",
    "SegmentParameter",
    "PersonnelRequirement",
    "EquipmentRequirement",
    "PhysicalAssetRequirement",
    "MaterialRequirement",
    "SegmentRequirementChild",
    "RequestedSegmentResponse",
    "RequiredByRequestedSegmentResponse",
];

pub const EQUIPMENT_REQUIREMENT: &[&str] = &[
    "ID",
    "EquipmentClassID",
    "EquipmentID",
    "EquipmentLevel",
    "Description",
    "EquipmentUse",
    "Quantity",
    "HierarchyScope",
    "SpatialDefinition",
    "OperationalLocation",
    "EquipmentRequirementChild",
    "EquipmentRequirementProperty",
    "RequiredByRequestedSegmentResponse",
    "TestSpecificationID",
];

pub const MATERIAL_REQUIREMENT: &[&str] = &[
    "ID",
    "MaterialClassID",
    "MaterialDefinitionID",
    "MaterialLotID",
    "MaterialSubLotID",
    "Description",
    "MaterialUse",
    "SpatialDefinition",
    "StorageLocation",
    "Quantity",
    "AssemblyRequirement",
    "AssemblyType",
    "AssemblyRelationship",
    "HierarchyScope",
    "MaterialRequirementProperty",
    "RequiredByRequestedSegmentResponse",
    "TestSpecificationID",
];

pub const QUANTITY: &[&str] = &["QuantityString", "DataType", "UnitOfMeasure", "Key"];

pub const PARAMETER: &[&str] = &[
    "ID",
    "Value",
    "Description",
    "HierarchyScope",
    "ParameterChild",
    "ParameterSpecificationID",
    "ProcessSegmentParameterID",
];

pub const VALUE: &[&str] = &["ValueString", "DataType", "UnitOfMeasure", "Key"];

pub const MATERIAL_INFORMATION: &[&str] = &[
    "ID",
    "Description",
    "HierarchyScope",
    "PublishedDate",
    "MaterialClass",
    "MaterialDefinition",
    "MaterialLot",
    "MaterialSubLot",
    "TestSpecification",
];

pub const MATERIAL_DEFINITION: &[&str] = &[
    "ID",
    "Version",
    "Description",
    "PublishedDate",
    "EffectiveStartDate",
    "EffectiveEndDate",
    "HierarchyScope",
    "SpatialDefinition",
    "MaterialDefinitionProperty",
    "MaterialClassID",
    "MaterialLotSourceID",
    "TestSpecificationID",
    "AssemblyDefinition",
    "AssemblyType",
    "AssemblyRelationship",
];

pub const MATERIAL_LOT: &[&str] = &[
    "ID",
    "Version",
    "Description",
    "PublishedDate",
    "EffectiveStartDate",
    "EffectiveEndDate",
    "HierarchyScope",
    "SpatialDefinition",
    "MaterialDefinitionID",
    "Status",
    "Disposition",
    "MaterialLotProperty",
    "MaterialSubLot",
    "StorageLocation",
    "Quantity",
    "TestSpecificationID",
    "AssemblyLot",
    "AssemblySubLot",
    "AssemblyType",
    "AssemblyRelationship",
];

pub const EQUIPMENT_INFORMATION: &[&str] = &[
    "ID",
    "Description",
    "HierarchyScope",
    "PublishedDate",
    "Equipment",
    "EquipmentClass",
    "TestSpecification",
];

pub const EQUIPMENT: &[&str] = &[
    "ID",
    "Version",
    "Description",
    "PublishedDate",
    "EffectiveStartDate",
    "EffectiveEndDate",
    "HierarchyScope",
    "EquipmentLevel",
    "SpatialDefinition",
    "EquipmentAssetMapping",
    "PhysicalAssetID",
    "OperationalLocation",
    "EquipmentProperty",
    "EquipmentChild",
    "EquipmentClassID",
    "TestSpecificationID",
];

/// B2MML `EquipmentLevel` values and the ISA-95 level of lotline's
/// `equipment.level` each falls under (`None`: no level recorded).
pub const EQUIPMENT_LEVELS: &[(&str, Option<&str>)] = &[
    ("Enterprise", Some("enterprise")),
    ("Site", Some("site")),
    ("Area", Some("area")),
    ("ProcessCell", Some("work_center")),
    ("ProductionLine", Some("work_center")),
    ("ProductionUnit", Some("work_center")),
    ("StorageZone", Some("work_center")),
    ("WorkCenter", Some("work_center")),
    ("Unit", Some("work_unit")),
    ("WorkCell", Some("work_unit")),
    ("StorageUnit", Some("work_unit")),
    ("WorkUnit", Some("work_unit")),
    ("EquipmentModule", None),
    ("ControlModule", None),
    ("Other", None),
];

/// Checks that `element` is in the B2MML namespace and has only children
/// the schema allows it (`allowed`), each in that namespace too.
pub fn check(element: &Element, allowed: &[&str]) -> Result<(), B2mmlError> {
    if element.namespace != NAMESPACE {
        return Err(element.invalid(format!(
            "<{}> is not in the B2MML namespace {NAMESPACE}",
            element.name
        )));
    }
    for child in &element.children {
        if !allowed.contains(&child.name.as_str()) {
            return Err(child.invalid(format!(
                "<{}> is not an element of <{}> in B2MML V0701 (allowed: {})",
                child.name,
                element.name,
                allowed.join(", ")
            )));
        }
        if child.namespace != NAMESPACE {
            return Err(child.invalid(format!(
                "<{}> is not in the B2MML namespace {NAMESPACE}",
                child.name
            )));
        }
    }
    Ok(())
}
