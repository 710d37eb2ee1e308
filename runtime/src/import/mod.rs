//! Bulk contact import (`hogsend import contacts`, `POST /v1/contacts/import`): CSV or
//! NDJSON read as a stream, each line validated into an [`ImportRow`] or reported as a
//! [`RowError`], the good rows written in batches of one transaction each
//! ([`write::write_batch`], the upsert `PUT /v1/contacts/{key}` uses).
//!
//! A bad row never aborts its batch: rows are validated before their batch is written, so
//! a batch holds only good rows and commits whole or not at all. Re-importing the same
//! file changes nothing and reports every row unchanged (no `updated_at` churn).

mod csv;
mod row;
mod write;

pub use csv::{Record, RecordError, Records};
pub use row::{ndjson_row, Catalog, Header, ImportRow, RowError, KEY_COLUMNS};
pub use write::{write_batch, BatchOutcome};

use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;
use std::io::BufRead;

/// Rows per transaction unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 5_000;

/// `contacts` is re-analyzed after this many upserted rows: a bulk load into a small table
/// leaves statistics that make the upsert's join scan the whole table for every batch (the
/// import then slows down as the table grows).
const ANALYZE_EVERY: u64 = 20_000;

/// The input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header record.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// The format a file name's extension says: `.csv`, `.ndjson`/`.jsonl`/`.json`.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// What went wrong with the import as a whole (bad rows are not errors: see [`Summary`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The CSV header is unusable; nothing was written.
    #[error("line {line}: {message}")]
    Header {
        /// The header's line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The input could not be read.
    #[error("could not read the input: {0}")]
    Io(#[from] std::io::Error),
    /// A batch could not be written (the batches before it are committed).
    #[error(transparent)]
    Database(#[from] crate::Error),
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Rows read (good and bad; blank lines are not rows).
    pub rows: u64,
    /// Rows that created or changed a contact or a subscription.
    pub upserted: u64,
    /// Good rows that changed nothing.
    pub unchanged: u64,
    /// Rows not imported.
    pub bad: u64,
    /// The bad rows by line, in order.
    pub errors: Vec<RowError>,
}

/// What the caller hears while an import runs.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A row was refused.
    Bad(&'a RowError),
    /// A batch committed; the totals so far and the input bytes consumed.
    Committed {
        /// The summary so far.
        summary: &'a Summary,
        /// Bytes of the input read.
        bytes: u64,
        /// The keys the batch changed.
        keys: &'a [String],
    },
}

/// Reads rows one at a time from CSV or NDJSON.
pub enum RowSource<R> {
    /// CSV: the records and the header read from the first.
    Csv {
        /// The records.
        records: Records<R>,
        /// The header.
        header: Header,
    },
    /// NDJSON: lines.
    Ndjson {
        /// The input.
        input: R,
        /// Lines read.
        line: u64,
        /// Bytes read.
        bytes: u64,
        /// The current line's bytes.
        buf: Vec<u8>,
    },
}

impl<R: BufRead> RowSource<R> {
    /// Opens `input`: for CSV, reads and checks the header.
    pub fn open(input: R, format: Format, catalog: &Catalog) -> Result<RowSource<R>, ImportError> {
        match format {
            Format::Ndjson => Ok(RowSource::Ndjson {
                input,
                line: 0,
                bytes: 0,
                buf: Vec::new(),
            }),
            Format::Csv => {
                let mut records = Records::new(input);
                let header = match records.next_record()? {
                    None => {
                        return Err(ImportError::Header {
                            line: 1,
                            message: "the file is empty (a CSV import starts with a header)".into(),
                        })
                    }
                    Some(Err(e)) => {
                        return Err(ImportError::Header {
                            line: e.line,
                            message: e.message,
                        })
                    }
                    Some(Ok(rec)) => Header::parse(&rec.fields, catalog).map_err(|message| {
                        ImportError::Header {
                            line: rec.line,
                            message,
                        }
                    })?,
                };
                Ok(RowSource::Csv { records, header })
            }
        }
    }

    /// Bytes of the input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        match self {
            RowSource::Csv { records, .. } => records.bytes_read(),
            RowSource::Ndjson { bytes, .. } => *bytes,
        }
    }

    /// The next row (or row error); `None` at the end.
    pub fn next_row(
        &mut self,
        catalog: &Catalog,
    ) -> std::io::Result<Option<Result<ImportRow, RowError>>> {
        match self {
            RowSource::Csv { records, header } => Ok(records.next_record()?.map(|rec| {
                rec.map_err(|e| RowError {
                    line: e.line,
                    message: e.message,
                })
                .and_then(|rec| header.row(rec.line, &rec.fields, catalog))
            })),
            RowSource::Ndjson {
                input,
                line,
                bytes,
                buf,
            } => loop {
                buf.clear();
                let n = input.read_until(b'\n', buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                *bytes += n as u64;
                let text = match std::str::from_utf8(buf) {
                    Ok(t) => t,
                    Err(_) => {
                        return Ok(Some(Err(RowError {
                            line: *line,
                            message: "the line is not valid UTF-8".into(),
                        })))
                    }
                };
                if let Some(row) = ndjson_row(*line, text, catalog) {
                    return Ok(Some(row));
                }
            },
        }
    }
}

/// Imports `input` into the database behind `pool`: rows validated as they are read, good
/// ones written `batch_size` at a time, each batch one transaction. `progress` hears every
/// bad row and every committed batch.
pub async fn import<R: BufRead>(
    pool: &PgPool,
    input: R,
    format: Format,
    batch_size: usize,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Summary, ImportError> {
    let catalog = {
        let mut conn = pool.acquire().await.map_err(crate::Error::from)?;
        Catalog::load(&mut conn).await?
    };
    let mut source = RowSource::open(input, format, &catalog)?;
    let batch_size = batch_size.max(1);
    let mut summary = Summary::default();
    let mut batch: Vec<ImportRow> = Vec::with_capacity(batch_size.min(DEFAULT_BATCH_SIZE));
    let mut analyzed_at: u64 = 0;
    loop {
        let next = source.next_row(&catalog)?;
        let done = next.is_none();
        match next {
            Some(Ok(row)) => {
                summary.rows += 1;
                batch.push(row);
            }
            Some(Err(bad)) => {
                summary.rows += 1;
                summary.bad += 1;
                progress(Progress::Bad(&bad));
                summary.errors.push(bad);
            }
            None => {}
        }
        if batch.len() >= batch_size || (done && !batch.is_empty()) {
            let outcome = write_batch(pool, &batch, Utc::now()).await?;
            summary.upserted += outcome.upserted;
            summary.unchanged += outcome.unchanged;
            batch.clear();
            if summary.upserted - analyzed_at >= ANALYZE_EVERY {
                analyzed_at = summary.upserted;
                sqlx::query("analyze contacts")
                    .execute(pool)
                    .await
                    .map_err(crate::Error::from)?;
            }
            progress(Progress::Committed {
                summary: &summary,
                bytes: source.bytes_read(),
                keys: &outcome.keys,
            });
        }
        if done {
            return Ok(summary);
        }
    }
}
