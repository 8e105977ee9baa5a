//! Write-ahead log: numbered files of length-prefixed, checksummed records.
//!
//! One record holds one accepted write request (one table, any number of rows)
//! so a request is replayed whole or not at all. Record layout, little endian:
//!
//! ```text
//! magic u32 = "LLW1" | payload_len u32 | crc32(payload) u32 | payload
//! payload = zstd( table_id u8 | Arrow IPC stream of the request's batches )
//! ```
//!
//! A group record binds records that must survive together (a write and its
//! audit entry): the same header with magic "LLWG" around a payload that is
//! the concatenation of whole records (not compressed again). Its checksum
//! covers them all, so replay yields all of them or none.
//!
//! A record that does not verify (short read, bad magic, bad checksum,
//! undecodable payload) is told apart by what follows it: with no verifiable
//! record after it, it is a torn tail (the last write, never acknowledged),
//! cut by recovery; with verifiable group records after it, it is corruption
//! of acknowledged data ([`records_after`]), which recovery does not cut on
//! its own (see `crate::ingest` recovery). [`salvage`] keeps every group that
//! verifies.
//!
//! Readers may check a group beyond its checksum ([`GroupCheck`]: the audit
//! layer's rule that each record matches its entry's digest); a group that
//! fails it is damaged like one whose checksum fails.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;

use super::disk::{self, Disk, DiskFile};

const MAGIC: u32 = u32::from_le_bytes(*b"LLW1");
const GROUP_MAGIC: u32 = u32::from_le_bytes(*b"LLWG");
const HEADER_LEN: usize = 12;
/// zstd level for WAL payloads: fast, since it sits on the ack path.
const ZSTD_LEVEL: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("encoding a WAL record: {0}")]
    Encode(String),
    #[error("WAL group commit failed, request not written: {0}")]
    GroupFailed(String),
    #[error("the WAL writer has stopped")]
    Closed,
    /// An earlier write, fsync or truncate of the WAL failed: what is on disk
    /// after it is unknown, so nothing more is acknowledged until a restart
    /// recovers from what is there.
    #[error(
        "writes are stopped since a WAL I/O error ({0}); nothing after it was acknowledged. \
         Fix the cause (disk full, failing disk) and restart lotline; queries keep working"
    )]
    Stopped(String),
}

impl WalError {
    /// Whether the WAL can take no more writes until a restart.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped(_) | Self::Closed)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encodes one request into a complete record (header and payload).
pub fn encode_record(table_id: u8, batches: &[RecordBatch]) -> Result<Vec<u8>, WalError> {
    let schema = batches
        .first()
        .ok_or_else(|| WalError::Encode("empty request".into()))?
        .schema();
    let mut raw = vec![table_id];
    {
        let mut writer = StreamWriter::try_new(&mut raw, &schema)
            .map_err(|e| WalError::Encode(e.to_string()))?;
        for batch in batches {
            writer
                .write(batch)
                .map_err(|e| WalError::Encode(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| WalError::Encode(e.to_string()))?;
    }
    let payload =
        zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| WalError::Encode(e.to_string()))?;
    Ok(frame(&payload))
}

/// A whole record around a (compressed) payload: magic, length, checksum, payload.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    frame_with(MAGIC, payload)
}

/// One group record holding whole `records`: replayed all together or not at all.
pub fn frame_group(records: &[&[u8]]) -> Vec<u8> {
    frame_with(GROUP_MAGIC, &records.concat())
}

fn frame_with(magic: u32, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len());
    record.extend_from_slice(&magic.to_le_bytes());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    record
}

/// A record read back from the log.
#[derive(Debug)]
pub struct Record {
    pub table_id: u8,
    pub batches: Vec<RecordBatch>,
    /// SHA-256 of the whole record as written (header and payload), the
    /// bytes [`encode_record`] returned.
    pub sha256: [u8; 32],
}

/// A check of one group's records beyond its checksum; an `Err` names why
/// the group is damaged.
pub type GroupCheck<'a> = &'a dyn Fn(&[Record]) -> Result<(), String>;

/// How a [`Cut`]'s reason starts when a group's checksum verified but its
/// [`GroupCheck`] failed: never a torn write.
const CHECK_FAILED: &str = "group fails its audit check";

impl Cut {
    /// Whether whole, checksummed bytes were refused by a [`GroupCheck`]
    /// (a torn tail never verifies its checksum).
    pub fn failed_check(&self) -> bool {
        self.reason.starts_with(CHECK_FAILED)
    }
}

/// The check of readers that take every group whose checksum verifies.
pub fn any_group(_: &[Record]) -> Result<(), String> {
    Ok(())
}

/// Why reading stopped before the end of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub offset: u64,
    pub bytes: u64,
    pub reason: String,
}

/// Decodes the records of one WAL file image. Returns the whole records and,
/// when the image does not end on a record boundary with a valid record, where
/// and why the readable log ends.
pub fn decode_records(image: &[u8]) -> (Vec<Record>, Option<Cut>) {
    decode_records_checked(image, &any_group)
}

/// [`decode_records`], where a group that fails `check` is damaged.
pub fn decode_records_checked(image: &[u8], check: GroupCheck) -> (Vec<Record>, Option<Cut>) {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < image.len() {
        match decode_one(&image[offset..], check) {
            Ok((decoded, len)) => {
                records.extend(decoded);
                offset += len;
            }
            Err(reason) => {
                let cut = Cut {
                    offset: offset as u64,
                    bytes: (image.len() - offset) as u64,
                    reason,
                };
                return (records, Some(cut));
            }
        }
    }
    (records, None)
}

/// The record(s) at the start of `bytes` (a group yields several) and the
/// bytes they take.
fn decode_one(bytes: &[u8], check: GroupCheck) -> Result<(Vec<Record>, usize), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "torn header ({} of {HEADER_LEN} bytes)",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let magic = word(0);
    if magic != MAGIC && magic != GROUP_MAGIC {
        return Err("bad record magic".into());
    }
    let len = word(4) as usize;
    let end = HEADER_LEN + len;
    if bytes.len() < end {
        return Err(format!(
            "torn record ({} of {len} payload bytes)",
            bytes.len() - HEADER_LEN
        ));
    }
    let payload = &bytes[HEADER_LEN..end];
    if crc32fast::hash(payload) != word(8) {
        return Err("checksum mismatch".into());
    }
    if magic == GROUP_MAGIC {
        return match decode_records(payload) {
            (records, None) => match check(&records) {
                Ok(()) => Ok((records, end)),
                Err(why) => Err(format!("{CHECK_FAILED}: {why}")),
            },
            (_, Some(cut)) => Err(format!("corrupt record in a group: {}", cut.reason)),
        };
    }
    let raw = Buffer::from(zstd::stream::decode_all(payload).map_err(|e| format!("zstd: {e}"))?);
    let table_id = *raw.first().ok_or("empty payload")?;
    // Found by fuzz/wal_decode: arrow's `StreamReader` allocates whatever a
    // message's body length claims before reading it (GBs from a few corrupt
    // bytes), and its array decoding panics on some malformed input instead
    // of returning an error. So: the push decoder, which slices the payload
    // already in memory, under `catch_unwind`; a bad record is cut like any
    // other undecodable one and recovery never crash-loops the server.
    let batches = std::panic::catch_unwind(|| {
        let ipc_err = |e: arrow::error::ArrowError| format!("arrow ipc: {e}");
        let mut decoder = StreamDecoder::new();
        let mut ipc = raw.slice(1);
        let mut batches = Vec::new();
        while !ipc.is_empty() {
            batches.extend(decoder.decode(&mut ipc).map_err(ipc_err)?);
        }
        decoder.finish().map_err(ipc_err)?;
        match decoder.schema() {
            Some(_) => Ok(batches),
            None => Err("arrow ipc: no schema".to_string()),
        }
    })
    .map_err(|_| "arrow ipc: malformed record (the decoder panicked)".to_string())??;
    let sha256 = super::digest::sha256(&bytes[..end]);
    Ok((
        vec![Record {
            table_id,
            batches,
            sha256,
        }],
        end,
    ))
}

/// The offset of the first group record at or after `from` whose header and
/// checksum verify (its payload may still fail to decode). Only group
/// records count: every commit writes exactly one, so a group is the unit a
/// write was acknowledged in, and the plain records inside a damaged group
/// (a write without its audit entry) are never taken on their own.
pub fn next_group(image: &[u8], from: usize) -> Option<usize> {
    let last = image.len().checked_sub(HEADER_LEN)?;
    (from..=last).find(|&at| verified_group_len(&image[at..]).is_some())
}

/// The length of the group record at the start of `bytes` if its header and
/// checksum verify.
fn verified_group_len(bytes: &[u8]) -> Option<usize> {
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != GROUP_MAGIC {
        return None;
    }
    let end = HEADER_LEN.checked_add(word(4) as usize)?;
    let payload = bytes.get(HEADER_LEN..end)?;
    (crc32fast::hash(payload) == word(8)).then_some(end)
}

/// How many group records that verify lie after the damage at `cut`: none
/// means the damage runs to the end of the image, a torn tail.
pub fn records_after(image: &[u8], cut: &Cut) -> usize {
    let mut count = 0;
    let mut from = cut.offset as usize + 1;
    while let Some(at) = next_group(image, from) {
        count += 1;
        from = at + verified_group_len(&image[at..]).expect("verified");
    }
    count
}

/// What [`salvage`] kept of a damaged WAL image.
#[derive(Debug)]
pub struct Salvaged {
    pub records: Vec<Record>,
    /// The kept records' bytes, in order: a WAL file image without the damage.
    pub image: Vec<u8>,
    /// Each damaged range skipped.
    pub skipped: Vec<Cut>,
}

/// Every group record of `image` that verifies and decodes, skipping each
/// damaged range up to the next group record that verifies.
pub fn salvage(image: &[u8], check: GroupCheck) -> Salvaged {
    let mut kept = Salvaged {
        records: Vec::new(),
        image: Vec::with_capacity(image.len()),
        skipped: Vec::new(),
    };
    let mut start = 0;
    while start < image.len() {
        let (records, cut) = decode_records_checked(&image[start..], check);
        kept.records.extend(records);
        let Some(cut) = cut else {
            kept.image.extend_from_slice(&image[start..]);
            break;
        };
        let at = start + cut.offset as usize;
        kept.image.extend_from_slice(&image[start..at]);
        let resume = next_group(image, at + 1).unwrap_or(image.len());
        kept.skipped.push(Cut {
            offset: at as u64,
            bytes: (resume - at) as u64,
            reason: cut.reason,
        });
        start = resume;
    }
    kept
}

/// Name of WAL file number `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// WAL file numbers present in `dir`, ascending.
pub fn list_files(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The length of a WAL file.
pub fn file_len(path: &Path) -> Result<u64, WalError> {
    Ok(std::fs::metadata(path).map_err(io_err(path))?.len())
}

/// Maps a WAL file for recovery (`None` when it is empty).
pub fn map(path: &Path) -> Result<Option<memmap2::Mmap>, WalError> {
    let file = File::open(path).map_err(io_err(path))?;
    if file.metadata().map_err(io_err(path))?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the file is private to this process while it replays (the server
    // holds the data directory lock) and is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    Ok(Some(map))
}

/// Cuts a WAL file at `len` (a torn tail), durably.
pub fn truncate(disk: &dyn Disk, path: &Path, len: u64) -> Result<(), WalError> {
    // Opened for appending, which would create it: a missing file is an error.
    std::fs::metadata(path).map_err(io_err(path))?;
    let mut file = disk.append(path).map_err(io_err(path))?;
    file.set_len(len).map_err(io_err(path))?;
    file.sync().map_err(io_err(path))
}

/// Replaces the file at `path` with `bytes` atomically (a temporary file
/// beside it, fsynced, renamed over it, the directory fsynced): a crash
/// leaves the old file or the new one. A salvaged WAL file, and the edge
/// queue's small state files, are written so.
pub fn replace(disk: &dyn Disk, path: &Path, bytes: &[u8]) -> Result<(), WalError> {
    // `.tmp`, never `.wal`: recovery lists only WAL files.
    let temporary = path.with_extension("tmp");
    disk::replace(disk, path, &temporary, bytes).map_err(io_err(path))
}

/// Reads one WAL file without changing it (for readers beside a running
/// server, such as `verify-audit`): its whole records and, if it ends in a
/// torn or corrupt record, where.
pub fn read_records(
    path: &Path,
    check: GroupCheck,
) -> Result<(Vec<Record>, Option<Cut>), WalError> {
    let image = std::fs::read(path).map_err(io_err(path))?;
    Ok(decode_records_checked(&image, check))
}

/// The file currently appended to.
pub struct WalFile {
    pub seq: u64,
    path: PathBuf,
    file: Box<dyn DiskFile>,
    len: u64,
}

impl WalFile {
    pub fn create(disk: &dyn Disk, dir: &Path, seq: u64) -> Result<Self, WalError> {
        let path = dir.join(file_name(seq));
        let file = disk.append(&path).map_err(io_err(&path))?;
        let len = file.len().map_err(io_err(&path))?;
        sync_dir(disk, dir)?;
        Ok(Self {
            seq,
            path,
            file,
            len,
        })
    }

    /// Whether nothing was appended to this file yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends records and, when `fsync`, makes them durable. On error the
    /// file is cut back to where it was, so a failed group leaves no partial
    /// record behind. Durable when this returns `Ok` with `fsync` set.
    pub fn append_group(&mut self, records: &[&[u8]], fsync: bool) -> Result<(), WalError> {
        let start = self.len;
        let result = (|| {
            let total: usize = records.iter().map(|r| r.len()).sum();
            let mut buf = Vec::with_capacity(total);
            for r in records {
                buf.extend_from_slice(r);
            }
            self.file.write_all(&buf)?;
            if fsync {
                self.file.sync_data()?;
            }
            Ok(total as u64)
        })();
        match result {
            Ok(written) => {
                self.len += written;
                Ok(())
            }
            Err(source) => {
                let _ = self.file.set_len(start);
                Err(WalError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    pub fn sync(&mut self) -> Result<(), WalError> {
        self.file.sync().map_err(io_err(&self.path))
    }
}

/// Makes a directory entry change (create, rename, delete) durable.
pub fn sync_dir(disk: &dyn Disk, dir: &Path) -> Result<(), WalError> {
    disk.sync_dir(dir).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..n)) as _)])
            .unwrap()
    }

    /// A record with a valid checksum whose Arrow IPC makes arrow's reader
    /// panic (a validity buffer shorter than its rows): found by fuzzing.
    #[test]
    fn malformed_ipc_is_cut_not_a_panic() {
        let input =
            include_bytes!("../../fuzz/seeds/wal_decode/regression-ipc-short-validity-buffer");
        // The fuzz input: a mode byte, then the uncompressed payload.
        let record = frame(&zstd::bulk::compress(&input[1..], 1).unwrap());
        let good = encode_record(0, &[batch(3)]).unwrap();
        let image = [good.clone(), record].concat();
        let (records, cut) = decode_records(&image);
        assert_eq!(records.len(), 1);
        let cut = cut.expect("the malformed record is cut");
        assert_eq!(cut.offset, good.len() as u64);
        assert!(cut.reason.starts_with("arrow ipc"), "{}", cut.reason);
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let a = encode_record(0, &[batch(3)]).unwrap();
        let b = encode_record(1, &[batch(5), batch(2)]).unwrap();
        let mut image = [a.clone(), b.clone()].concat();
        let (records, cut) = decode_records(&image);
        assert_eq!(cut, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].table_id, 1);
        assert_eq!(
            records[1]
                .batches
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>(),
            7
        );

        image.truncate(image.len() - 3);
        let (records, cut) = decode_records(&image);
        assert_eq!(records.len(), 1);
        let cut = cut.unwrap();
        assert_eq!(cut.offset, a.len() as u64);
        assert!(cut.reason.contains("torn"), "{}", cut.reason);

        let group = frame_group(&[&a, &b]);
        let image = [group.clone(), a.clone()].concat();
        let (records, cut) = decode_records(&image);
        assert_eq!((records.len(), cut), (3, None));
        // A torn group loses all its records, never some of them.
        let (records, cut) = decode_records(&group[..group.len() - 1]);
        assert_eq!(records.len(), 0);
        assert!(cut.unwrap().reason.contains("torn"));

        let mut flipped = [a.clone(), b].concat();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let (records, cut) = decode_records(&flipped);
        assert_eq!(records.len(), 1);
        assert_eq!(cut.unwrap().reason, "checksum mismatch");
    }

    /// Three commits as the WAL thread writes them: one group each.
    fn three_groups() -> Vec<Vec<u8>> {
        (1..=3)
            .map(|n| {
                let data = encode_record(0, &[batch(n)]).unwrap();
                let audit = encode_record(1, &[batch(1)]).unwrap();
                frame_group(&[&data, &audit])
            })
            .collect()
    }

    #[test]
    fn a_torn_last_group_is_a_torn_tail_even_with_whole_records_inside() {
        let groups = three_groups();
        let whole = groups.concat();
        // Only the first half of the last group reached the disk: its inner
        // data record is whole and verifies, but it is not a group.
        let torn = &whole[..whole.len() - groups[2].len() / 2];
        let (records, cut) = decode_records(torn);
        assert_eq!(records.len(), 4);
        assert_eq!(records_after(torn, &cut.unwrap()), 0);
    }

    #[test]
    fn damage_with_groups_after_it_is_corruption_and_salvage_keeps_them() {
        let groups = three_groups();
        let mut image = groups.concat();
        // A bit flip inside the first group's payload.
        image[groups[0].len() / 2] ^= 0x01;
        let (records, cut) = decode_records(&image);
        assert!(records.is_empty());
        let cut = cut.unwrap();
        assert_eq!((cut.offset, cut.reason.as_str()), (0, "checksum mismatch"));
        assert_eq!(records_after(&image, &cut), 2);

        let kept = salvage(&image, &any_group);
        assert_eq!(kept.records.len(), 4, "two whole groups of two records");
        assert_eq!(kept.image, [groups[1].clone(), groups[2].clone()].concat());
        assert_eq!(kept.skipped.len(), 1);
        assert_eq!(kept.skipped[0].bytes, groups[0].len() as u64);
        // A corrupted length field that claims past the end is corruption
        // too: the groups after it still verify.
        let mut image = groups.concat();
        image[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, cut) = decode_records(&image);
        assert_eq!(records_after(&image, &cut.unwrap()), 2);
    }
}
