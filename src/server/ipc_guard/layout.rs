//! The buffers a column's type and row count need, checked against what an
//! IPC record batch holds, in the order Arrow's IPC format lays them out:
//! one field node per column (children after their parent) and, per node,
//! the buffers of its type's layout. Arrow's reader builds validity bitmaps
//! with assertions, not errors, so a bitmap shorter than its column would
//! panic; values and offsets are checked too, so a refusal names the column.
//! Types lotline never takes from clients (run-end encoded, list views) are
//! refused at the schema. Unions are taken: SQL clients bind parameters as
//! dense unions (flightsql-dbapi).

use std::collections::VecDeque;

use arrow::datatypes::{DataType, Field, UnionMode};
use arrow::ipc::{FieldNode, RecordBatch};

use super::{Held, IpcGuardError};

/// Refuses `field` if it or a child has a type outside what the layout walk
/// knows (and lotline could store or bind).
pub(super) fn check_supported(field: &Field) -> Result<(), IpcGuardError> {
    let supported = match field.data_type() {
        DataType::RunEndEncoded(..) | DataType::ListView(_) | DataType::LargeListView(_) => false,
        DataType::FixedSizeBinary(width) | DataType::FixedSizeList(_, width) => *width >= 0,
        _ => true,
    };
    if !supported {
        return Err(IpcGuardError::Unsupported {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
        });
    }
    children(field.data_type())
        .into_iter()
        .try_for_each(check_supported)
}

/// The child fields a type's IPC layout nests under its own node.
pub(super) fn children(data_type: &DataType) -> Vec<&Field> {
    match data_type {
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::FixedSizeList(child, _)
        | DataType::Map(child, _) => vec![&**child],
        DataType::Struct(fields) => fields.iter().map(|f| &**f).collect(),
        DataType::Union(fields, _) => fields.iter().map(|(_, f)| &**f).collect(),
        _ => Vec::new(),
    }
}

/// Checks that `batch`'s nodes and `buffers` (each buffer's decompressed
/// length, in order) hold exactly the columns `fields`.
pub(super) fn check_columns(
    batch: &RecordBatch<'_>,
    fields: &[&Field],
    buffers: &[Held],
    v4: bool,
) -> Result<(), IpcGuardError> {
    let nodes: Vec<&FieldNode> = batch.nodes().iter().flatten().collect();
    let mut walk = Walk {
        nodes: nodes.into_iter(),
        buffers: buffers.iter().copied(),
        v4,
        variadic: batch
            .variadicBufferCounts()
            .map(|counts| counts.iter().collect())
            .unwrap_or_default(),
    };
    fields.iter().try_for_each(|field| walk.column(field))?;
    // Arrow asserts that the view columns used every count there is.
    if !walk.variadic.is_empty() {
        return Err(IpcGuardError::Layout {
            column: "(batch)".into(),
            problem: format!(
                "{} data-buffer count(s) more than its view columns",
                walk.variadic.len()
            ),
        });
    }
    Ok(())
}

/// Nodes and buffers not yet matched to a column.
struct Walk<'a, B: Iterator<Item = Held>> {
    nodes: std::vec::IntoIter<&'a FieldNode>,
    buffers: B,
    /// Metadata version 4, whose unions still have a validity bitmap.
    v4: bool,
    /// Data buffers of each view column, in column order.
    variadic: VecDeque<i64>,
}

impl<B: Iterator<Item = Held>> Walk<'_, B> {
    fn column(&mut self, field: &Field) -> Result<(), IpcGuardError> {
        let column = field.name();
        let fail = |problem: String| IpcGuardError::Layout {
            column: column.clone(),
            problem,
        };
        let node = self
            .nodes
            .next()
            .ok_or_else(|| fail("the batch holds no field node for it".into()))?;
        // Lengths were bounded by the request limit before the walk.
        let (rows, nulls) = (node.length() as usize, node.null_count());
        if nulls < 0 || nulls as u64 > rows as u64 {
            return Err(fail(format!("{nulls} nulls in {rows} rows")));
        }
        if matches!(field.data_type(), DataType::Null) {
            return Ok(());
        }
        if let DataType::Union(fields, mode) = field.data_type() {
            return self.union(&fail, rows, fields.iter().map(|(_, f)| &**f), *mode);
        }
        // Every other layout starts with the validity bitmap; Arrow reads it
        // only when the node has nulls.
        let validity = self.buffer(&fail, "validity bitmap")?;
        if nulls > 0 {
            need(&fail, "validity bitmap", validity, rows.div_ceil(8))?;
        }
        match field.data_type() {
            DataType::Boolean => self.values(&fail, rows.div_ceil(8), 1),
            DataType::Utf8 | DataType::Binary => {
                self.offsets(&fail, rows, 4)?;
                self.buffer(&fail, "values").map(drop)
            }
            DataType::LargeUtf8 | DataType::LargeBinary => {
                self.offsets(&fail, rows, 8)?;
                self.buffer(&fail, "values").map(drop)
            }
            DataType::Utf8View | DataType::BinaryView => {
                self.values(&fail, rows.saturating_mul(16), 16)?;
                let count = self
                    .variadic
                    .pop_front()
                    .ok_or_else(|| fail("no count of its data buffers".into()))?;
                if count < 0 {
                    return Err(fail(format!("{count} data buffers")));
                }
                (0..count).try_for_each(|_| self.buffer(&fail, "data buffer").map(drop))
            }
            DataType::FixedSizeBinary(width) => {
                self.values(&fail, rows.saturating_mul(*width as usize), 1)
            }
            DataType::List(child) | DataType::Map(child, _) => {
                self.offsets(&fail, rows, 4)?;
                self.column(child)
            }
            DataType::LargeList(child) => {
                self.offsets(&fail, rows, 8)?;
                self.column(child)
            }
            DataType::FixedSizeList(child, _) => self.column(child),
            DataType::Struct(fields) => fields.iter().try_for_each(|f| self.column(f)),
            // A dictionary column's node and buffers are its keys'.
            DataType::Dictionary(key, _) => {
                let width = key.primitive_width().unwrap_or(1);
                self.values(&fail, rows.saturating_mul(width), width)
            }
            other => match other.primitive_width() {
                Some(width) => self.values(&fail, rows.saturating_mul(width), width),
                None => Err(IpcGuardError::Unsupported {
                    column: column.clone(),
                    data_type: other.to_string(),
                }),
            },
        }
    }

    /// A union: type ids (one byte a row), for a dense one i32 offsets
    /// into its children, then the children. Arrow slices both buffers by
    /// the row count and views the offsets in place, so they must be long
    /// enough and the offsets 4-byte aligned in the body.
    fn union<'f>(
        &mut self,
        fail: &impl Fn(String) -> IpcGuardError,
        rows: usize,
        children: impl Iterator<Item = &'f Field>,
        mode: UnionMode,
    ) -> Result<(), IpcGuardError> {
        if self.v4 {
            self.buffer(fail, "validity bitmap")?;
        }
        let type_ids = self.buffer(fail, "type ids")?;
        need(fail, "type ids buffer", type_ids, rows)?;
        if mode == UnionMode::Dense {
            let offsets = self.next_held(fail, "offsets")?;
            need(fail, "offsets buffer", offsets.len, rows.saturating_mul(4))?;
            if offsets.offset % 4 != 0 {
                return Err(fail(format!(
                    "its offsets buffer starts at body offset {}, not 4-byte aligned",
                    offsets.offset
                )));
            }
        }
        children
            .into_iter()
            .try_for_each(|child| self.column(child))
    }

    fn next_held(
        &mut self,
        fail: &impl Fn(String) -> IpcGuardError,
        what: &str,
    ) -> Result<Held, IpcGuardError> {
        self.buffers
            .next()
            .ok_or_else(|| fail(format!("the batch holds no {what} buffer for it")))
    }

    fn buffer(
        &mut self,
        fail: &impl Fn(String) -> IpcGuardError,
        what: &str,
    ) -> Result<usize, IpcGuardError> {
        self.next_held(fail, what).map(|held| held.len)
    }

    /// A values buffer of at least `bytes`, in whole `element`s: Arrow
    /// views typed buffers whole and asserts they hold whole elements.
    fn values(
        &mut self,
        fail: &impl Fn(String) -> IpcGuardError,
        bytes: usize,
        element: usize,
    ) -> Result<(), IpcGuardError> {
        let held = self.buffer(fail, "values")?;
        need(fail, "values buffer", held, bytes)?;
        whole(fail, "values buffer", held, element)
    }

    /// An offsets buffer of `width`-byte offsets: one more than rows, or none
    /// at all for an empty column.
    fn offsets(
        &mut self,
        fail: &impl Fn(String) -> IpcGuardError,
        rows: usize,
        width: usize,
    ) -> Result<(), IpcGuardError> {
        let held = self.buffer(fail, "offsets")?;
        whole(fail, "offsets buffer", held, width)?;
        if rows == 0 {
            return Ok(());
        }
        need(
            fail,
            "offsets buffer",
            held,
            (rows + 1).saturating_mul(width),
        )
    }
}

/// Fixed-width elements (offsets, keys, numbers) must fill `held` exactly;
/// a padded buffer still does, as writers pad to multiples of 8 or 64.
fn whole(
    fail: &impl Fn(String) -> IpcGuardError,
    what: &str,
    held: usize,
    element: usize,
) -> Result<(), IpcGuardError> {
    if element > 1 && held % element != 0 {
        return Err(fail(format!(
            "its {what} holds {held} bytes, not a whole number of {element}-byte elements"
        )));
    }
    Ok(())
}

fn need(
    fail: &impl Fn(String) -> IpcGuardError,
    what: &str,
    held: usize,
    needed: usize,
) -> Result<(), IpcGuardError> {
    if held < needed {
        return Err(fail(format!(
            "its {what} holds {held} bytes, its rows need {needed}"
        )));
    }
    Ok(())
}
