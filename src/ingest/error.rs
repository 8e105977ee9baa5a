//! What can go wrong on the write path ([`IngestError`]), and how the
//! interfaces tell its kinds apart: the client's mistake, a resource that is
//! short for now, writes stopped until a restart.

use std::path::PathBuf;

use super::requests::BadRequestId;
use super::stamping::StampError;
use super::versions::reason_hint;
use super::wal::WalError;
use crate::model::{self, TableDef, ValidationError};
use crate::storage::StorageError;
use crate::storage::compaction::CompactionError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("unknown table '{0}' (writable tables: {names})", names = model::writable_table_names())]
    UnknownTable(String),
    #[error(
        "table '{0}' is written by lotline only (the append-only, hash-chained audit trail); clients may read it but not write it"
    )]
    ReadOnly(&'static str),
    #[error(
        "request of {bytes} bytes exceeds the limit of {limit} bytes (max_request_bytes); split it into smaller batches"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("stamping: {0}")]
    Stamp(#[from] StampError),
    #[error("compaction: {0}")]
    Compaction(#[from] CompactionError),
    #[error("data directory {path} is in use by another lotline process")]
    Locked { path: PathBuf },
    /// A WAL record that does not verify, with acknowledged records after it.
    #[error(
        "{file} is damaged at offset {offset} ({reason}), and {records_after} record(s) that verify \
         follow it in that file, {later_files} later WAL file(s) hold more: acknowledged writes, \
         which lotline does not cut on its own. To start keeping every record that verifies \
         (the damaged file is copied to wal/quarantine/, and the salvage is recorded in audit_log), \
         run `lotline serve --wal-recovery salvage`"
    )]
    WalDamaged {
        file: String,
        offset: u64,
        reason: String,
        records_after: usize,
        later_files: usize,
    },
    #[error("{op} an existing {table} record ({key}) needs a reason: {hint}", hint = reason_hint())]
    ReasonRequired {
        table: &'static str,
        key: String,
        op: &'static str,
        /// The row of the request, counted as validation errors count them.
        row: usize,
    },
    /// A problem with one table's rows of a request spanning several tables
    /// ([`Engine::write_tables_as`]); row numbers in `source` count within
    /// that part.
    #[error("{table}: {source}")]
    InPart {
        part: usize,
        table: &'static str,
        source: Box<IngestError>,
    },
    /// Free space fell below the reserve: refused before anything is written.
    #[error(
        "only {free} bytes are free on the filesystem of {path}, below the reserve of {reserve} \
         bytes (--min-free-bytes): writes are refused until space is freed, and resume by \
         themselves then; nothing of this request was written"
    )]
    DiskFull {
        path: PathBuf,
        free: u64,
        reserve: u64,
    },
    /// The buffers stayed full for the whole bounded wait.
    #[error(
        "the write buffers are full ({rows} rows, {bytes} bytes not yet flushed) and {cause}; \
         nothing of this request was written: retry later (GET /health tells when flushes work again)"
    )]
    BufferFull {
        rows: usize,
        bytes: usize,
        cause: String,
    },
    #[error("{0}")]
    Column(#[from] model::columns::ColumnError),
    #[error("{0}")]
    BadRequestId(#[from] BadRequestId),
    #[error("{0}")]
    Statement(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl IngestError {
    /// True when the client sent something wrong (as opposed to a server fault).
    pub fn is_client_error(&self) -> bool {
        if let Self::InPart { source, .. } = self {
            return source.is_client_error();
        }
        matches!(
            self,
            Self::Invalid(_)
                | Self::UnknownTable(_)
                | Self::ReadOnly(_)
                | Self::TooLarge { .. }
                | Self::ReasonRequired { .. }
                | Self::BadRequestId(_)
                | Self::Statement(_)
        )
    }

    /// True when a resource the server needs (disk space) is short; the
    /// same request may succeed later.
    pub fn is_resource_exhausted(&self) -> bool {
        match self {
            Self::InPart { source, .. } => source.is_resource_exhausted(),
            Self::DiskFull { .. } => true,
            _ => false,
        }
    }

    /// True when the server takes no writes until restarted (a failed WAL).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::InPart { source, .. } => source.is_unavailable(),
            Self::Wal(e) => e.is_stopped(),
            Self::BufferFull { .. } => true,
            _ => false,
        }
    }

    /// The problem itself, without the part of a multi-table request it is in.
    pub fn without_part(self) -> Self {
        match self {
            Self::InPart { source, .. } => *source,
            e => e,
        }
    }

    pub(super) fn in_part(self, part: usize, def: &TableDef) -> Self {
        Self::InPart {
            part,
            table: def.name,
            source: Box::new(self),
        }
    }
}
