//! The `ConfirmBOD` that answers an imported document: `Accepted` with
//! what was written, or `Rejected` with the element and the problem. B2MML
//! V0701 has no structured failure message, so the problem is the `BOD`'s
//! `Note` (the element's path first), and `ChangeStatus/ReasonCode` says
//! its kind.

use super::tree::Element;
use super::write::{Area, Xml};
use super::{B2mmlError, Imported};

/// The root's name and application area of a document lotline received,
/// when it has one (the area is echoed as `OriginalApplicationArea`).
pub type Original = (String, Area);

/// The [`Original`] of a parsed document.
pub fn original(root: &Element) -> Option<Original> {
    let area = root.first("ApplicationArea")?;
    let created = area.text_of("CreationDateTime")?.to_string();
    let sender = area
        .first("Sender")
        .and_then(|s| s.text_of("LogicalID"))
        .map(str::to_string);
    let original = Area {
        sender,
        receiver: None,
        created,
        bod_id: area.text_of("BODID").map(str::to_string),
    };
    Some((root.name.clone(), original))
}

/// Why a document was refused, as `ChangeStatus/ReasonCode`.
fn reason_code(error: &B2mmlError) -> &'static str {
    match error {
        B2mmlError::Xml { .. } => "NotWellFormed",
        B2mmlError::NotB2mml { .. } | B2mmlError::Unsupported(_) => "UnsupportedDocument",
        B2mmlError::TooLarge { .. } => "TooLarge",
        B2mmlError::Invalid { .. } => "SchemaValidation",
        B2mmlError::Unknown { .. } => "UnknownReference",
        B2mmlError::Write(_) => "Refused",
        B2mmlError::Internal(_) => "InternalError",
    }
}

/// The `ConfirmBOD` for a document (`original`: its root and application
/// area, if it could be read that far) and its import's outcome.
pub fn document(original: Option<&Original>, outcome: Result<&Imported, &B2mmlError>) -> Vec<u8> {
    let receiver = original.and_then(|(_, area)| area.sender.clone());
    let root_name = original.map_or("(unreadable document)".to_string(), |(root, _)| {
        root.clone()
    });
    let (action, code, note, description) = match outcome {
        Ok(imported) => {
            let written: Vec<String> = imported
                .written
                .iter()
                .map(|(table, rows)| format!("{table}: {rows}"))
                .collect();
            let summary = if written.is_empty() {
                "nothing changed".to_string()
            } else {
                format!("rows written: {}", written.join(", "))
            };
            (
                "Accepted",
                None,
                None,
                format!(
                    "{root_name} accepted: {summary}; {} record(s) unchanged",
                    imported.unchanged
                ),
            )
        }
        Err(error) => (
            "Rejected",
            Some(reason_code(error)),
            Some(error.to_string()),
            format!("{root_name} rejected; nothing was imported"),
        ),
    };
    let mut doc = Xml::new("ConfirmBOD", false);
    doc.application_area("ApplicationArea", &Area::ours(receiver));
    doc.open("DataArea");
    doc.open("Confirm");
    if let Some((_, area)) = original {
        doc.application_area("OriginalApplicationArea", area);
    }
    doc.open("ResponseCriteria");
    doc.leaf_with(
        "ResponseExpression",
        &[("actionCode", action)],
        &format!("/{root_name}"),
    );
    doc.open("ChangeStatus");
    doc.leaf("Code", action);
    doc.maybe("ReasonCode", code);
    doc.close("ChangeStatus");
    doc.close("ResponseCriteria");
    doc.close("Confirm");
    doc.open("BOD");
    if let Some((_, area)) = original {
        doc.application_area("OriginalApplicationArea", area);
    }
    doc.leaf("Description", &description);
    doc.maybe("Note", note.as_deref());
    doc.close("BOD");
    doc.close("DataArea");
    doc.finish("ConfirmBOD")
}
