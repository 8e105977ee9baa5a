//! Keeps a scan's segment files on disk until the scan is done.
//!
//! [`PinnedReaderFactory`] wraps the Parquet reader factory of a scan and
//! holds the snapshot's [`Pins`]; so does every reader it creates. The
//! factory lives as long as the plan and the file streams that open files,
//! and a reader as long as its file is read, so a compaction or restamp that
//! replaces segments mid-query deletes them only after the last of these is
//! dropped: a query that started before a rewrite finishes with the files it
//! planned.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result as DfResult;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::ParquetMetaData;

use crate::storage::Pins;

#[derive(Debug)]
pub struct PinnedReaderFactory {
    inner: Arc<dyn ParquetFileReaderFactory>,
    pins: Pins,
}

impl PinnedReaderFactory {
    pub fn new(inner: Arc<dyn ParquetFileReaderFactory>, pins: Pins) -> Self {
        Self { inner, pins }
    }
}

impl ParquetFileReaderFactory for PinnedReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(PinnedReader {
            inner,
            _pins: self.pins.clone(),
        }))
    }
}

/// A reader that keeps its snapshot's files while it exists.
struct PinnedReader {
    inner: Box<dyn AsyncFileReader + Send>,
    _pins: Pins,
}

impl AsyncFileReader for PinnedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        self.inner.get_metadata(options)
    }
}
