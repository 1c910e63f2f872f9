//! Feeding an [`Importer`] batch after batch while the caller reads the next rows.

use tokio::task::JoinHandle;

use super::{ImportOptions, ImportRecord, ImportReport, Importer};
use crate::store::StoreError;

/// Rows written per transaction during an import: large enough that SQLite's per-commit cost
/// (a WAL sync) is amortised, small enough that an interrupted import loses little work and
/// memory stays flat.
const IMPORT_BATCH: usize = 5_000;

/// Why a [`BatchWriter`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A batch failed and was rolled back; the batches before it are committed.
    #[error("the import stopped ({} before this batch)", done.summary(*dry_run))]
    Batch {
        /// What the import had done before this batch.
        done: ImportReport,
        /// Whether it was a dry run (so `done` was never written).
        dry_run: bool,
        /// Why the batch failed.
        source: StoreError,
    },
    /// The task writing a batch panicked or was cancelled.
    #[error("the import's database task failed")]
    Task(#[source] tokio::task::JoinError),
    /// Every batch is written, but the connection could not be handed back.
    #[error(transparent)]
    Finish(StoreError),
}

/// A batch back from the database task: the importer, to write the next one, the batch's
/// rows (freed by the caller, see `submit`) and the outcome.
type WrittenBatch = (
    Importer,
    Vec<ImportRecord>,
    Result<ImportReport, StoreError>,
);

/// Collects rows into batches and writes each in the background while the next one is read:
/// reading and validating the CSV and SQLite's own work then run on two cores side by side.
/// One batch at a time is in flight, so batches still commit in file order.
///
/// Every per-row remark (a rejection, an erased address, a kept unsubscribe) goes to
/// `on_note` as `(line, message)` as soon as it is known, and stays in the final report.
pub struct BatchWriter<N> {
    /// Between batches; `None` while a batch is in flight (the task owns it then) or after a
    /// batch failed (dropping it closed its connection).
    importer: Option<Importer>,
    options: ImportOptions,
    /// Rows waiting for the next batch.
    batch: Vec<ImportRecord>,
    report: ImportReport,
    in_flight: Option<JoinHandle<WrittenBatch>>,
    on_note: N,
    /// Rows of the batches written so far (committed, or rolled back on a dry run).
    rows_written: u64,
}

impl<N: FnMut(u64, &str)> BatchWriter<N> {
    /// A writer of batches to `importer`, calling `on_note` with every per-row remark.
    pub fn new(importer: Importer, options: ImportOptions, on_note: N) -> Self {
        Self {
            importer: Some(importer),
            options,
            batch: Vec::with_capacity(IMPORT_BATCH),
            report: ImportReport::default(),
            in_flight: None,
            on_note,
            rows_written: 0,
        }
    }

    /// Adds a row to the next batch; once [`BatchWriter::batch_full`], write it with
    /// [`BatchWriter::write_batch`].
    ///
    /// Not `async`: this runs once a row, and a future per row measurably cost the reading
    /// side (a few tens of nanoseconds a row, on the core that parses the file).
    pub fn push(&mut self, record: ImportRecord) {
        self.batch.push(record);
    }

    /// Whether the next batch holds as many rows as a transaction writes.
    pub fn batch_full(&self) -> bool {
        self.batch.len() >= IMPORT_BATCH
    }

    /// Sends the rows added so far to the database once the batch before them is written.
    pub async fn write_batch(&mut self) -> Result<(), BatchError> {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(IMPORT_BATCH));
        self.submit(full).await
    }

    /// Counts a row refused before reaching the database (`line`, and why).
    pub fn reject(&mut self, line: u64, reason: String) {
        (self.on_note)(line, &reason);
        self.report.rejected += 1;
        self.report.notes.push((line, reason));
    }

    /// Writes the rows still waiting, waits for every batch and ends the import.
    /// Returns what was written and how many rows that was.
    pub async fn finish(mut self) -> Result<(ImportReport, u64), BatchError> {
        let last = std::mem::take(&mut self.batch);
        self.submit(last).await?;
        self.abandon().await
    }

    /// Ends the import without writing the rows still waiting: the file named a list that
    /// does not exist, and a batch is all or nothing. The batch in flight, if any, is
    /// already being committed and is waited for. Returns what was written and how many
    /// rows that was.
    pub async fn abandon(mut self) -> Result<(ImportReport, u64), BatchError> {
        self.batch.clear();
        self.wait().await?;
        if let Some(importer) = self.importer.take() {
            importer.finish().await.map_err(BatchError::Finish)?;
        }
        Ok((self.report, self.rows_written))
    }

    async fn submit(&mut self, batch: Vec<ImportRecord>) -> Result<(), BatchError> {
        let written = self.wait().await?;
        if !batch.is_empty()
            && let Some(mut importer) = self.importer.take()
        {
            let options = self.options.clone();
            self.in_flight = Some(tokio::spawn(async move {
                let result = importer.import_batch(&batch, &options).await;
                (importer, batch, result)
            }));
        }
        // Freeing thousands of rows takes a while: done here, once the next batch is already
        // being written, rather than while the database waits for it.
        drop(written);
        Ok(())
    }

    /// Waits for the batch in flight, if any, and hands its rows back.
    async fn wait(&mut self) -> Result<Vec<ImportRecord>, BatchError> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(Vec::new());
        };
        let (importer, written, result) = handle.await.map_err(BatchError::Task)?;
        let part = result.map_err(|source| BatchError::Batch {
            done: std::mem::take(&mut self.report),
            dry_run: self.options.dry_run,
            source,
        })?;
        self.importer = Some(importer);
        self.rows_written += written.len() as u64;
        for (line, message) in &part.notes {
            (self.on_note)(*line, message);
        }
        self.report.absorb(part);
        Ok(written)
    }
}
