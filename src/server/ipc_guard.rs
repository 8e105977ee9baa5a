//! Arrow IPC from clients, checked before Arrow decodes it. Arrow's readers
//! trust the lengths a message claims: a stream reader allocates the body
//! length the header states before reading it (a handle claiming 2^40 bytes
//! aborts the process), a compressed buffer is decompressed into as many
//! bytes as its 8-byte prefix claims, and a buffer that points past the body
//! panics a worker. Every message of a prepared-statement handle and of a
//! DoPut stream passes [`check_message`] first: claimed lengths must lie
//! within the bytes actually received, and what decompression would produce
//! within the request limit.

use arrow::ipc::{Message, MessageHeader, root_as_message};

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
}

/// Checks one IPC message (`header` is its flatbuffer metadata, `body` the
/// bytes that came with it) against `limit`, the most bytes the decoded
/// message may take. Passes what Arrow then decodes without allocating more
/// than `body.len() + limit`.
pub fn check_message(header: &[u8], body: &[u8], limit: usize) -> Result<(), IpcGuardError> {
    let message = parse(header)?;
    let claimed = message.bodyLength();
    if claimed < 0 || claimed as u64 > body.len() as u64 {
        return Err(IpcGuardError::Truncated {
            claimed,
            available: body.len(),
        });
    }
    let batch = match message.header_type() {
        MessageHeader::Schema => return check_schema(&message),
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => {
            message.header_as_dictionary_batch().and_then(|d| d.data())
        }
        _ => None,
    };
    let Some(batch) = batch else {
        return Ok(());
    };
    // Rows are bounded by the limit too: a Null column of 2^40 rows takes no
    // body bytes, but everything downstream of it would.
    if batch.length() < 0 || batch.length() as u64 > limit as u64 {
        return Err(IpcGuardError::TooManyRows {
            rows: batch.length(),
        });
    }
    for node in batch.nodes().iter().flatten() {
        if node.length() < 0 || node.length() as u64 > limit as u64 {
            return Err(IpcGuardError::TooManyRows {
                rows: node.length(),
            });
        }
    }
    let compressed = batch.compression().is_some();
    let mut decompressed: u64 = 0;
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
        if compressed && length as usize >= PREFIX {
            let start = offset as usize;
            let prefix: [u8; PREFIX] = body[start..start + PREFIX].try_into().expect("8 bytes");
            // -1: stored uncompressed, the bytes that follow are the data.
            let claimed = i64::from_le_bytes(prefix);
            if claimed > 0 {
                decompressed = decompressed.saturating_add(claimed as u64);
            }
        }
    }
    if decompressed > limit as u64 {
        return Err(IpcGuardError::Decompressed {
            claimed: decompressed,
            limit,
        });
    }
    Ok(())
}

/// Arrow converts a schema message with `unwrap`s and `panic!`s on what a
/// writer would never send (a schema without fields, a list without its
/// child, an unknown unit; found by the `ipc_guard` fuzz target). The
/// conversion is tried here, and a panic is a refusal.
fn check_schema(message: &Message<'_>) -> Result<(), IpcGuardError> {
    let schema = message
        .header_as_schema()
        .ok_or_else(|| IpcGuardError::Header("a schema message without a schema".into()))?;
    let converted = std::panic::catch_unwind(|| arrow::ipc::convert::fb_to_schema(schema));
    converted
        .map(|_| ())
        .map_err(|_| IpcGuardError::Header("a schema Arrow cannot read".into()))
}

/// Checks every message of an IPC stream held whole in `bytes` (as a
/// prepared-statement handle carries its parameters).
pub fn check_stream(bytes: &[u8], limit: usize) -> Result<(), IpcGuardError> {
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
        check_message(header, body, limit)?;
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
    use arrow::ipc::CompressionType;
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

    use super::*;

    /// An IPC stream of one Int64 column of 1000 rows (an 8000-byte value buffer).
    fn stream(compression: Option<CompressionType>) -> Vec<u8> {
        let values = Int64Array::from_iter_values(0..1000);
        let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
        let options = IpcWriteOptions::default()
            .try_with_compression(compression)
            .unwrap();
        let mut writer =
            StreamWriter::try_new_with_options(Vec::new(), &batch.schema(), options).unwrap();
        writer.write(&batch).unwrap();
        writer.into_inner().unwrap()
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
        let bytes = include_bytes!("../../fuzz/seeds/ipc_guard/schema-without-fields.arrows");
        assert!(matches!(
            check_stream(bytes, 1 << 20),
            Err(IpcGuardError::Header(_))
        ));
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
