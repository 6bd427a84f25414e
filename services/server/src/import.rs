//! `pilotgate consents import FILE.csv`: loads an existing consent inventory.
//!
//! Each row is checked on its own: a bad row is reported as `FILE:LINE:
//! column 'X': reason` (never with its values) and skipped; good rows are
//! stored in transactions of 10,000 with their audit entry. Records are
//! identified by a content hash, so importing the same file again adds nothing.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_store::Store;

use crate::consent_input::{ConsentInput, FieldError, Registry, SourceInput};

/// Valid rows per transaction: large, because each commit writes every index page it dirtied.
const BATCH: usize = 10_000;

/// Columns a file must have.
const REQUIRED: [&str; 7] = [
    "user_id",
    "purpose",
    "basis",
    "status",
    "notice_id",
    "notice_version",
    "collected_at",
];
/// Columns a file may have.
const OPTIONAL: [&str; 5] = [
    "source_channel",
    "source_method",
    "effective_from",
    "expires_at",
    "proof_ref",
];

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub invalid: u64,
}

/// A failure that stops the import; rows stored before it stay stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: storing rows failed after {stored} were stored: {source}")]
    Store {
        file: String,
        stored: u64,
        #[source]
        source: pilotgate_store::StoreError,
    },
}

/// Imports `path` into `store`; progress and bad rows go to `report`.
pub async fn import_consents(
    path: &Path,
    store: &Store,
    keys: &KeyRing,
    report: &mut dyn Write,
) -> Result<ImportSummary, ImportError> {
    let file = path.display().to_string();
    let file_error = |message: String| ImportError::File {
        file: file.clone(),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| file_error(format!("cannot read the file: {e}")))?
        .len()
        .max(1);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| file_error(format!("cannot read the file: {e}")))?;
    let columns = Columns::from_headers(
        reader
            .headers()
            .map_err(|e| file_error(format!("cannot read the header row: {e}")))?,
    )
    .map_err(file_error)?;
    let purposes = Registry::new(
        store
            .list_purpose_records()
            .await
            .map_err(|e| file_error(format!("cannot read the purpose registry: {e}")))?,
    );

    let actor = Actor::operator();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                summary.rows += 1;
                let line = record.position().map_or(line, |p| p.line());
                match columns
                    .parse(&record)
                    .and_then(|input| input.into_record(&purposes, keys, store.now()))
                {
                    Ok(consent) => batch.push(consent),
                    Err(error) => {
                        summary.invalid += 1;
                        // The API's `source.channel` is the file's `source_channel`.
                        let column = error.field.replace('.', "_");
                        let _ =
                            writeln!(report, "{file}:{line}: column '{column}': {}", error.reason);
                    }
                }
            }
            Err(error) => {
                summary.rows += 1;
                summary.invalid += 1;
                let line = error.position().map_or(line, |p| p.line());
                let _ = writeln!(report, "{file}:{line}: {}", describe_csv_error(&error));
                if !matches!(
                    error.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    return Err(file_error(format!(
                        "line {line}: cannot read on: {}",
                        describe_csv_error(&error)
                    )));
                }
            }
        }
        if batch.len() >= BATCH {
            store_batch(store, &mut batch, &actor, &mut summary)
                .await
                .map_err(|source| ImportError::Store {
                    file: file.clone(),
                    stored: summary.stored,
                    source,
                })?;
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            let done = reader.position().byte() as f64 / size as f64;
            let _ = writeln!(
                report,
                "import: {} rows read ({:.0}%), {} stored, {} already present, {} invalid, {:.0} rows/s",
                summary.rows,
                done * 100.0,
                summary.stored,
                summary.duplicates,
                summary.invalid,
                summary.rows as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    store_batch(store, &mut batch, &actor, &mut summary)
        .await
        .map_err(|source| ImportError::Store {
            file: file.clone(),
            stored: summary.stored,
            source,
        })?;
    Ok(summary)
}

async fn store_batch(
    store: &Store,
    batch: &mut Vec<pilotgate_domain::consent::NewConsent>,
    actor: &Actor,
    summary: &mut ImportSummary,
) -> Result<(), pilotgate_store::StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let appended = store.append_consents(batch, actor).await?;
    let duplicates = appended.iter().filter(|a| a.duplicate).count() as u64;
    summary.duplicates += duplicates;
    summary.stored += appended.len() as u64 - duplicates;
    batch.clear();
    Ok(())
}

/// A CSV error described without the offending bytes.
fn describe_csv_error(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields; the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not valid UTF-8", err.field() + 1),
        csv::ErrorKind::Io(e) => format!("read error: {e}"),
        _ => "the row is not valid CSV".to_owned(),
    }
}

/// Where each known column is in the file.
struct Columns {
    index: HashMap<&'static str, usize>,
}

impl Columns {
    fn from_headers(headers: &csv::StringRecord) -> Result<Columns, String> {
        let mut index = HashMap::new();
        for (position, header) in headers.iter().enumerate() {
            let Some(known) = REQUIRED
                .iter()
                .chain(OPTIONAL.iter())
                .find(|c| **c == header)
            else {
                return Err(format!(
                    "line 1: unknown column '{}'; the columns are {} and optionally {}",
                    header.chars().take(40).collect::<String>(),
                    REQUIRED.join(", "),
                    OPTIONAL.join(", ")
                ));
            };
            if index.insert(*known, position).is_some() {
                return Err(format!("line 1: the column '{known}' appears twice"));
            }
        }
        if let Some(missing) = REQUIRED.iter().find(|c| !index.contains_key(*c)) {
            return Err(format!(
                "line 1: the required column '{missing}' is missing"
            ));
        }
        Ok(Columns { index })
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.index
            .get(column)
            .and_then(|i| record.get(*i))
            .filter(|v| !v.is_empty())
    }

    fn parse(&self, record: &csv::StringRecord) -> Result<ConsentInput, FieldError> {
        let required = |column: &'static str| {
            self.get(record, column)
                .map(str::to_owned)
                .ok_or_else(|| FieldError::new(column, "is empty"))
        };
        let notice_version = required("notice_version")?
            .parse::<u32>()
            .map_err(|_| FieldError::new("notice_version", "must be a whole number from 0"))?;
        Ok(ConsentInput {
            user_id: required("user_id")?,
            purpose: required("purpose")?,
            basis: required("basis")?,
            status: required("status")?,
            notice_id: required("notice_id")?,
            notice_version,
            source: SourceInput {
                channel: self
                    .get(record, "source_channel")
                    .unwrap_or("import")
                    .to_owned(),
                method: self
                    .get(record, "source_method")
                    .unwrap_or("csv_import")
                    .to_owned(),
            },
            collected_at: required("collected_at")?,
            effective_from: self.get(record, "effective_from").map(str::to_owned),
            expires_at: self.get(record, "expires_at").map(str::to_owned),
            proof_ref: self.get(record, "proof_ref").map(str::to_owned),
        })
    }
}
