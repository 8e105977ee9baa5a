//! Arrow IPC from clients, checked before Arrow decodes it. Arrow's readers
//! trust what a message claims: a stream reader allocates the body length
//! the header states before reading it (a handle claiming 2^40 bytes aborts
//! the process), a compressed buffer is decompressed into as many bytes as
//! its 8-byte prefix claims (and an LZ4 frame into as many as it holds), a
//! buffer that points past the body or a validity bitmap shorter than its
//! column panics a worker. Every message of a prepared-statement handle and
//! of a DoPut stream passes a [`StreamGuard`] first: claimed lengths must lie
//! within the bytes actually received, compressed buffers must decompress to
//! exactly what they claim and all of it within the request limit, and each
//! column's buffers must be as large as its type and row count need
//! ([`layout`]). What passes, Arrow decodes without panicking or allocating
//! more than the body plus the limit.

mod layout;

use std::collections::HashMap;
use std::io::{self, Read};

use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::{
    CompressionType, Message, MessageHeader, MetadataVersion, RecordBatch, root_as_message,
};

/// Bytes of the uncompressed-length prefix of a compressed IPC buffer.
const PREFIX: usize = 8;

/// Why client IPC bytes were refused before decoding.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IpcGuardError {
    #[error("not an Arrow IPC message header: {0}")]
    Header(String),
    #[error("the IPC stream ends inside a message (it claims {claimed} bytes, {available} remain)")]
    Truncated { claimed: i64, available: usize },
    #[error(
        "IPC buffer {index} (offset {offset}, length {length}) lies outside the {body} bytes of its message body"
    )]
    BufferOutOfBody {
        index: usize,
        offset: i64,
        length: i64,
        body: usize,
    },
    #[error("a column claims {rows} rows, more than the request limit allows")]
    TooManyRows { rows: i64 },
    #[error(
        "compressed IPC buffers claim {claimed} bytes once decompressed, more than the limit of {limit} bytes"
    )]
    Decompressed { claimed: u64, limit: usize },
    #[error("compressed IPC buffer {index}: {problem}")]
    Compressed { index: usize, problem: String },
    #[error("a record batch before the stream's schema")]
    NoSchema,
    #[error("a dictionary batch for dictionary {id}, which the schema does not declare")]
    UnknownDictionary { id: i64 },
    #[error("column {column}: type {data_type} is not accepted from clients")]
    Unsupported { column: String, data_type: String },
    #[error("column {column}: {problem}")]
    Layout { column: String, problem: String },
}

/// The messages of one IPC stream, checked in order: the schema message
/// gives the layout every later record and dictionary batch must have.
#[derive(Debug)]
pub struct StreamGuard {
    /// The most bytes one decoded message may take.
    limit: usize,
    schema: Option<Schema>,
    /// The value type of each dictionary the schema declares, by id.
    dictionaries: HashMap<i64, Field>,
}

impl StreamGuard {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            schema: None,
            dictionaries: HashMap::new(),
        }
    }

    /// Checks one IPC message (`header` is its flatbuffer metadata, `body`
    /// the bytes that came with it). Passes what Arrow then decodes without
    /// panicking or allocating more than `body.len() + limit`.
    pub fn check(&mut self, header: &[u8], body: &[u8]) -> Result<(), IpcGuardError> {
        let message = parse(header)?;
        let claimed = message.bodyLength();
        if claimed < 0 || claimed as u64 > body.len() as u64 {
            return Err(IpcGuardError::Truncated {
                claimed,
                available: body.len(),
            });
        }
        match message.header_type() {
            MessageHeader::Schema => {
                let schema = read_schema(&message)?;
                for field in schema.fields() {
                    layout::check_supported(field)?;
                }
                self.dictionaries = dictionary_values(schema.fields().iter().map(|f| &**f));
                self.schema = Some(schema);
                Ok(())
            }
            MessageHeader::RecordBatch => {
                let batch = message.header_as_record_batch().ok_or_else(|| {
                    IpcGuardError::Header("a record batch without its header".into())
                })?;
                let schema = self.schema.as_ref().ok_or(IpcGuardError::NoSchema)?;
                let fields: Vec<&Field> = schema.fields().iter().map(|f| &**f).collect();
                check_batch(&message, &batch, body, self.limit, &fields)
            }
            MessageHeader::DictionaryBatch => {
                let dictionary = message.header_as_dictionary_batch().ok_or_else(|| {
                    IpcGuardError::Header("a dictionary batch without its header".into())
                })?;
                let id = dictionary.id();
                let values = self
                    .dictionaries
                    .get(&id)
                    .ok_or(IpcGuardError::UnknownDictionary { id })?;
                let batch = dictionary.data().ok_or_else(|| {
                    IpcGuardError::Header("a dictionary batch without its data".into())
                })?;
                check_batch(&message, &batch, body, self.limit, &[values])
            }
            // Tensors and the like: Arrow's readers refuse them.
            _ => Ok(()),
        }
    }
}

/// Checks one record batch (of a record or dictionary batch message)
/// against the columns it must hold.
fn check_batch(
    message: &Message<'_>,
    batch: &RecordBatch<'_>,
    body: &[u8],
    limit: usize,
    fields: &[&Field],
) -> Result<(), IpcGuardError> {
    // Rows are bounded by the limit too: a Null column of 2^40 rows takes no
    // body bytes, but everything downstream of it would.
    let nodes = batch.nodes();
    let rows =
        std::iter::once(batch.length()).chain(nodes.iter().flatten().map(|node| node.length()));
    for rows in rows {
        if rows < 0 || rows as u64 > limit as u64 {
            return Err(IpcGuardError::TooManyRows { rows });
        }
    }
    let codec = batch.compression().map(|c| c.codec());
    let buffers = buffer_lengths(batch, body, limit, codec)?;
    let v4 = message.version() < MetadataVersion::V5;
    layout::check_columns(batch, fields, &buffers, v4)
}

/// A buffer as Arrow will see it: its length once decompressed, and its
/// offset in the body (0 for a decompressed buffer, which Arrow allocates).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub len: usize,
    pub offset: usize,
}

/// The length each buffer of `batch` has once decompressed, after checking
/// that it lies within `body` and that all of them fit in `limit`.
fn buffer_lengths(
    batch: &RecordBatch<'_>,
    body: &[u8],
    limit: usize,
    codec: Option<CompressionType>,
) -> Result<Vec<Held>, IpcGuardError> {
    let mut slices = Vec::new();
    for (index, buffer) in batch.buffers().iter().flatten().enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = offset.checked_add(length);
        if offset < 0 || length < 0 || end.is_none_or(|end| end as u64 > body.len() as u64) {
            return Err(IpcGuardError::BufferOutOfBody {
                index,
                offset,
                length,
                body: body.len(),
            });
        }
        slices.push(&body[offset as usize..(offset + length) as usize]);
    }
    let Some(codec) = codec else {
        let buffers = batch.buffers();
        let offsets = buffers.iter().flatten().map(|b| b.offset() as usize);
        return Ok(slices
            .iter()
            .zip(offsets)
            .map(|(s, offset)| Held {
                len: s.len(),
                offset,
            })
            .collect());
    };
    // What the prefixes claim is bounded before anything is decompressed.
    let mut claimed_total: u64 = 0;
    for (index, bytes) in slices.iter().enumerate() {
        if !bytes.is_empty() && bytes.len() < PREFIX {
            return Err(IpcGuardError::Compressed {
                index,
                problem: format!("{} bytes, shorter than its length prefix", bytes.len()),
            });
        }
        if let Some(prefix) = bytes.first_chunk::<PREFIX>() {
            claimed_total = claimed_total.saturating_add(i64::from_le_bytes(*prefix).max(0) as u64);
        }
    }
    if claimed_total > limit as u64 {
        return Err(IpcGuardError::Decompressed {
            claimed: claimed_total,
            limit,
        });
    }
    slices
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            decompressed_length(codec, bytes, index).map(|len| Held { len, offset: 0 })
        })
        .collect()
}

/// The bytes one compressed buffer stands for. A positive prefix must be
/// exactly what its data decompresses to: Arrow decompresses an LZ4 frame
/// whole whatever the prefix says, and takes a shorter zstd result as is.
fn decompressed_length(
    codec: CompressionType,
    bytes: &[u8],
    index: usize,
) -> Result<usize, IpcGuardError> {
    let Some((prefix, data)) = bytes.split_first_chunk::<PREFIX>() else {
        return Ok(0);
    };
    let problem = |problem: String| IpcGuardError::Compressed { index, problem };
    let claimed = match i64::from_le_bytes(*prefix) {
        // Stored uncompressed: the data follows the prefix.
        -1 => return Ok(data.len()),
        0 => return Ok(0),
        n if n < 0 => return Err(problem(format!("a length prefix of {n}"))),
        n => n as u64,
    };
    let reader: Box<dyn Read + '_> = match codec {
        CompressionType::LZ4_FRAME => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        CompressionType::ZSTD => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| problem(format!("not zstd data: {e}")))?;
            // The decoder allocates the window a frame's header asks for
            // (found by the fuzz target: 75 MB from a few bytes). A frame
            // needs no window larger than its content, which is `claimed`.
            let window_log = (u64::BITS - claimed.saturating_sub(1).leading_zeros()).clamp(10, 27);
            decoder
                .window_log_max(window_log)
                .map_err(|e| problem(format!("zstd window: {e}")))?;
            Box::new(decoder)
        }
        other => return Err(problem(format!("unknown codec {other:?}"))),
    };
    // One byte more than claimed is enough to know the claim is false.
    let actual = io::copy(&mut reader.take(claimed + 1), &mut io::sink())
        .map_err(|e| problem(format!("does not decompress: {e}")))?;
    if actual > claimed {
        return Err(problem(format!(
            "decompresses to more than the {claimed} bytes it claims"
        )));
    }
    if actual < claimed {
        return Err(problem(format!(
            "decompresses to {actual} bytes but claims {claimed}"
        )));
    }
    Ok(claimed as usize)
}

/// Arrow converts a schema message with `unwrap`s and `panic!`s on what a
/// writer would never send (a schema without fields, a list without its
/// child, an unknown unit; found by the `ipc_guard` fuzz target). The
/// conversion is tried here, and a panic is a refusal.
fn read_schema(message: &Message<'_>) -> Result<Schema, IpcGuardError> {
    let schema = message
        .header_as_schema()
        .ok_or_else(|| IpcGuardError::Header("a schema message without a schema".into()))?;
    std::panic::catch_unwind(|| arrow::ipc::convert::fb_to_schema(schema))
        .map_err(|_| IpcGuardError::Header("a schema Arrow cannot read".into()))
}

/// Every dictionary among `fields` and their children: its id and a field of
/// its value type, the one column its dictionary batches hold.
fn dictionary_values<'a>(fields: impl Iterator<Item = &'a Field>) -> HashMap<i64, Field> {
    let mut found = HashMap::new();
    let mut pending: Vec<&Field> = fields.collect();
    while let Some(field) = pending.pop() {
        if let DataType::Dictionary(_, values) = field.data_type() {
            // Arrow's reader finds dictionaries by this id too.
            #[allow(deprecated)]
            if let Some(id) = field.dict_id() {
                found.insert(id, Field::new(field.name(), (**values).clone(), true));
            }
        }
        pending.extend(layout::children(field.data_type()));
    }
    found
}

/// Checks every message of an IPC stream held whole in `bytes` (as a
/// prepared-statement handle carries its parameters).
pub fn check_stream(bytes: &[u8], limit: usize) -> Result<(), IpcGuardError> {
    let mut guard = StreamGuard::new(limit);
    let mut rest = bytes;
    loop {
        let Some(mut length) = take_i32(&mut rest) else {
            return Ok(());
        };
        // 0xFFFFFFFF continues with the length; older writers omit it.
        if length == -1 {
            match take_i32(&mut rest) {
                Some(l) => length = l,
                None => return Ok(()),
            }
        }
        if length == 0 {
            return Ok(());
        }
        if length < 0 || length as usize > rest.len() {
            return Err(IpcGuardError::Truncated {
                claimed: length.into(),
                available: rest.len(),
            });
        }
        let (header, after) = rest.split_at(length as usize);
        let body_length = parse(header)?.bodyLength();
        if body_length < 0 || body_length as u64 > after.len() as u64 {
            return Err(IpcGuardError::Truncated {
                claimed: body_length,
                available: after.len(),
            });
        }
        let (body, after) = after.split_at(body_length as usize);
        guard.check(header, body)?;
        rest = after;
    }
}

fn parse(header: &[u8]) -> Result<Message<'_>, IpcGuardError> {
    root_as_message(header).map_err(|e| IpcGuardError::Header(e.to_string()))
}

fn take_i32(rest: &mut &[u8]) -> Option<i32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(i32::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field};
    use arrow::ipc::CompressionType;
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

    use super::*;

    /// An IPC stream of one Int64 column of 1000 rows (an 8000-byte value buffer).
    fn stream(compression: Option<CompressionType>) -> Vec<u8> {
        let values = Int64Array::from_iter_values(0..1000);
        let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
        ipc(&batch, 1, compression)
    }

    /// An IPC stream of `batch` written `times` times, as an Arrow writer sends it.
    fn ipc(batch: &RecordBatch, times: usize, compression: Option<CompressionType>) -> Vec<u8> {
        let options = IpcWriteOptions::default()
            .try_with_compression(compression)
            .unwrap();
        let mut writer =
            StreamWriter::try_new_with_options(Vec::new(), &batch.schema(), options).unwrap();
        for _ in 0..times {
            writer.write(batch).unwrap();
        }
        writer.into_inner().unwrap()
    }

    /// What a [`IpcGuardError::Layout`] refusal of `bytes` says.
    fn layout_problem(bytes: &[u8]) -> String {
        match check_stream(bytes, 1 << 20) {
            Err(IpcGuardError::Layout { problem, .. }) => problem,
            other => panic!("not refused for its layout: {other:?}"),
        }
    }

    /// What a [`IpcGuardError::Compressed`] refusal of `bytes` says.
    fn compressed_problem(bytes: &[u8]) -> String {
        match check_stream(bytes, 1 << 20) {
            Err(IpcGuardError::Compressed { problem, .. }) => problem,
            other => panic!("not refused for a compressed buffer: {other:?}"),
        }
    }

    /// `bytes` with the first little-endian occurrence of `from` replaced by `to`.
    fn patched(mut bytes: Vec<u8>, from: i64, to: i64) -> Vec<u8> {
        let needle = from.to_le_bytes();
        let at = bytes
            .windows(8)
            .position(|w| w == needle)
            .expect("value present");
        bytes[at..at + 8].copy_from_slice(&to.to_le_bytes());
        bytes
    }

    #[test]
    fn honest_streams_pass_plain_and_compressed() {
        for compression in [
            None,
            Some(CompressionType::LZ4_FRAME),
            Some(CompressionType::ZSTD),
        ] {
            assert_eq!(check_stream(&stream(compression), 1 << 20), Ok(()));
        }
    }

    #[test]
    fn a_body_longer_than_the_bytes_sent_is_refused() {
        let bytes = patched(stream(None), 8000, 1 << 40);
        assert!(matches!(
            check_stream(&bytes, 1 << 20),
            Err(IpcGuardError::Truncated { .. } | IpcGuardError::BufferOutOfBody { .. })
        ));
        let bytes = patched(stream(None), 8000, -1);
        assert!(check_stream(&bytes, 1 << 20).is_err());
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decompressing() {
        let bytes = patched(stream(Some(CompressionType::LZ4_FRAME)), 8000, 1 << 40);
        assert_eq!(
            check_stream(&bytes, 1 << 20),
            Err(IpcGuardError::Decompressed {
                claimed: 1 << 40,
                limit: 1 << 20
            })
        );
    }

    #[test]
    fn a_schema_arrow_cannot_read_is_refused_not_a_panic() {
        // Found by the fuzz target: a schema message without its field list.
        let bytes = include_bytes!("../../../fuzz/seeds/ipc_guard/schema-without-fields.arrows");
        assert!(matches!(
            check_stream(bytes, 1 << 20),
            Err(IpcGuardError::Header(_))
        ));
    }

    #[test]
    fn a_validity_bitmap_shorter_than_its_rows_is_refused() {
        // Found by the fuzz target (this seed): Arrow's decoder asserts on a
        // short validity bitmap and panics.
        let seed = include_bytes!("../../../fuzz/seeds/ipc_guard/short-validity-buffer.arrows");
        assert!(check_stream(seed, 1 << 20).is_err());
        // The same defect made on purpose: 1000 rows with nulls (a 125-byte
        // bitmap) whose batch and node claim 5000.
        let values = Int64Array::from_iter((0..1000).map(|i| (i % 3 != 0).then_some(2 * i + 1)));
        let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
        let mut bytes = ipc(&batch, 1, None);
        let (from, to) = (1000i64.to_le_bytes(), 5000i64.to_le_bytes());
        let mut patched = 0;
        for at in 0..bytes.len() - 8 {
            if bytes[at..at + 8] == from {
                bytes[at..at + 8].copy_from_slice(&to);
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "the batch's and the node's length");
        let error = check_stream(&bytes, 1 << 20).unwrap_err();
        assert_eq!(
            error,
            IpcGuardError::Layout {
                column: "v".into(),
                problem: "its validity bitmap holds 125 bytes, its rows need 625".into()
            }
        );
    }

    #[test]
    fn honest_streams_of_every_accepted_layout_pass() {
        use arrow::array::{
            ArrayRef, BooleanArray, DictionaryArray, FixedSizeBinaryArray, LargeStringArray,
            ListArray, StringArray, StringViewArray, StructArray,
        };
        use arrow::datatypes::Int32Type;
        let strings = StringArray::from(vec![Some("a"), None, Some("ccc")]);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            ("s", Arc::new(strings.clone())),
            (
                "ls",
                Arc::new(LargeStringArray::from(vec![Some("x"), None, Some("")])),
            ),
            (
                "sv",
                Arc::new(StringViewArray::from(vec![
                    Some("a string longer than twelve"),
                    None,
                    Some("b"),
                ])),
            ),
            (
                "fsb",
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        vec![Some([1u8, 2]), None, Some([3, 4])].into_iter(),
                        2,
                    )
                    .unwrap(),
                ),
            ),
            (
                "l",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1)]),
                    None,
                    Some(vec![]),
                ])),
            ),
            (
                "st",
                Arc::new(StructArray::from(vec![(
                    Arc::new(Field::new("s", DataType::Utf8, true)),
                    Arc::new(strings) as ArrayRef,
                )])),
            ),
            (
                "d",
                Arc::new(DictionaryArray::<Int32Type>::from_iter([
                    Some("line1"),
                    None,
                    Some("line1"),
                ])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        for compression in [
            None,
            Some(CompressionType::LZ4_FRAME),
            Some(CompressionType::ZSTD),
        ] {
            let bytes = ipc(&batch, 2, compression);
            assert_eq!(check_stream(&bytes, 1 << 20), Ok(()), "{compression:?}");
        }
    }

    #[test]
    fn an_offsets_buffer_of_partial_offsets_is_refused() {
        // Found by the fuzz target: Arrow's offset validation views the
        // whole buffer as i32 and asserts it is made of whole ones.
        let seed = include_bytes!("../../../fuzz/seeds/ipc_guard/offsets-not-whole.arrows");
        let problem = layout_problem(seed);
        assert!(problem.contains("not a whole number"), "{problem}");
    }

    #[test]
    fn data_buffer_counts_no_view_column_uses_are_refused() {
        // Found by the fuzz target: Arrow asserts every count was used.
        let seed = include_bytes!("../../../fuzz/seeds/ipc_guard/variadic-counts-left.arrows");
        let problem = layout_problem(seed);
        assert!(problem.contains("more than its view columns"), "{problem}");
    }

    #[test]
    fn a_zstd_frame_asking_for_a_window_beyond_its_content_is_refused() {
        // Found by the fuzz target: the guard's own decoder allocated the
        // 75 MB window a frame header asked for.
        let seed = include_bytes!("../../../fuzz/seeds/ipc_guard/zstd-window-bomb.arrows");
        let problem = compressed_problem(seed);
        assert!(problem.contains("does not decompress"), "{problem}");
    }

    #[test]
    fn an_lz4_frame_holding_more_than_it_claims_is_refused() {
        // Arrow decompresses an LZ4 frame whole, whatever the prefix says: an
        // 8000-byte column claiming 8 bytes would decompress to 1000 times that.
        let bytes = patched(stream(Some(CompressionType::LZ4_FRAME)), 8000, 8);
        let problem = compressed_problem(&bytes);
        assert!(problem.contains("more than the 8 bytes"), "{problem}");
    }

    #[test]
    fn a_zstd_buffer_shorter_than_it_claims_is_refused() {
        let bytes = patched(stream(Some(CompressionType::ZSTD)), 8000, 9000);
        let problem = compressed_problem(&bytes);
        assert!(problem.contains("8000 bytes but claims 9000"), "{problem}");
    }

    #[test]
    fn a_record_batch_needs_the_schema_first() {
        let bytes = stream(None);
        // Skip the schema message: continuation, length, header (padded).
        let length = i32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let without_schema = &bytes[8 + length..];
        assert_eq!(
            check_stream(without_schema, 1 << 20),
            Err(IpcGuardError::NoSchema)
        );
    }

    #[test]
    fn union_parameters_pass_and_run_end_encoded_columns_are_refused_by_name() {
        use arrow::array::{RunArray, StringArray, UnionArray};
        use arrow::buffer::ScalarBuffer;
        use arrow::datatypes::{Int32Type, UnionFields};
        // How flightsql-dbapi binds parameters: a dense union per parameter.
        let fields = UnionFields::try_new(
            [0, 1],
            [
                Field::new("0", DataType::Int64, true),
                Field::new("1", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let union = UnionArray::try_new(
            fields,
            ScalarBuffer::from(vec![0i8, 1, 0]),
            Some(ScalarBuffer::from(vec![0i32, 0, 1])),
            vec![
                Arc::new(Int64Array::from(vec![7, 8])) as _,
                Arc::new(StringArray::from(vec!["L-1"])) as _,
            ],
        )
        .unwrap();
        let batch = RecordBatch::try_from_iter([("param_0", Arc::new(union) as _)]).unwrap();
        assert_eq!(check_stream(&ipc(&batch, 1, None), 1 << 20), Ok(()));

        let runs = RunArray::<Int32Type>::from_iter([Some("a"), Some("a"), None]);
        let batch = RecordBatch::try_from_iter([("r", Arc::new(runs) as _)]).unwrap();
        let error = check_stream(&ipc(&batch, 1, None), 1 << 20).unwrap_err();
        assert!(
            matches!(&error, IpcGuardError::Unsupported { column, .. } if column == "r"),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_not_a_header() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0];
        bytes.extend_from_slice(&[0xAB; 24]);
        assert!(matches!(
            check_stream(&bytes, 1 << 20),
            Err(IpcGuardError::Header(_))
        ));
    }
}
