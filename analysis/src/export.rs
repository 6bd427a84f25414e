//! The pilot export format, which `pilotgate analyze` reads: `assignments`
//! (`subject, variant, assigned_at`) and `events` (`subject, event, value,
//! occurred_at`), as CSV with RFC 3339 times or as Parquet with UTC datetimes.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use polars::prelude::*;

/// CSV or Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
}

impl FileFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }

    /// The format a name (`csv`, `parquet`) names, as exports are requested.
    pub fn of_name(name: &str) -> Option<FileFormat> {
        match name {
            "csv" => Some(FileFormat::Csv),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }

    /// The format a file name's extension names.
    pub fn of_path(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "pq" => Some(FileFormat::Parquet),
            other => FileFormat::of_name(other),
        }
    }
}

/// A failure to write an export file, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ExportError {
    pub path: PathBuf,
    pub message: String,
}

/// Assignments, column by column; instants in microseconds since the epoch.
#[derive(Debug, Default, Clone)]
pub struct AssignmentColumns {
    pub subject: Vec<String>,
    pub variant: Vec<String>,
    pub assigned_at: Vec<i64>,
}

/// Events, column by column; instants in microseconds since the epoch.
#[derive(Debug, Default, Clone)]
pub struct EventColumns {
    pub subject: Vec<String>,
    pub event: Vec<String>,
    pub value: Vec<Option<f64>>,
    pub occurred_at: Vec<i64>,
}

/// The CUPED covariate per subject, as `pilotgate analyze --covariate`
/// reads it (`subject,value`; a subject left out has the value 0).
#[derive(Debug, Default, Clone)]
pub struct CovariateColumns {
    pub subject: Vec<String>,
    pub value: Vec<f64>,
}

impl CovariateColumns {
    pub(crate) fn frame(&self) -> PolarsResult<DataFrame> {
        DataFrame::new(
            self.subject.len(),
            vec![
                Column::new("subject".into(), &self.subject),
                Column::new("value".into(), &self.value),
            ],
        )
    }
}

fn utc_micros(name: &str, micros: &[i64]) -> Column {
    Series::new(name.into(), micros)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

impl AssignmentColumns {
    pub(crate) fn frame(&self) -> PolarsResult<DataFrame> {
        DataFrame::new(
            self.subject.len(),
            vec![
                Column::new("subject".into(), &self.subject),
                Column::new("variant".into(), &self.variant),
                utc_micros("assigned_at", &self.assigned_at),
            ],
        )
    }
}

impl EventColumns {
    pub(crate) fn frame(&self) -> PolarsResult<DataFrame> {
        DataFrame::new(
            self.subject.len(),
            vec![
                Column::new("subject".into(), &self.subject),
                Column::new("event".into(), &self.event),
                Column::new("value".into(), &self.value),
                utc_micros("occurred_at", &self.occurred_at),
            ],
        )
    }
}

/// One table of a pilot's data for a recipient: a row per assignment
/// (`subject, variant, assigned_at`) followed by a row per event (`subject,
/// variant, event, value, occurred_at`), the columns a row does not use left
/// empty. This is what a governed export's download holds, in one file.
#[derive(Debug, Default, Clone)]
pub struct DeliveryColumns {
    pub subject: Vec<String>,
    pub variant: Vec<String>,
    pub assigned_at: Vec<Option<i64>>,
    pub event: Vec<Option<String>>,
    pub value: Vec<Option<f64>>,
    pub occurred_at: Vec<Option<i64>>,
}

impl DeliveryColumns {
    /// Appends an assignment's row.
    pub fn push_assignment(&mut self, subject: String, variant: String, assigned_at: i64) {
        self.push(subject, variant, Some(assigned_at), None, None, None);
    }

    /// Appends an event's row.
    pub fn push_event(
        &mut self,
        subject: String,
        variant: String,
        event: String,
        value: Option<f64>,
        occurred_at: i64,
    ) {
        self.push(
            subject,
            variant,
            None,
            Some(event),
            value,
            Some(occurred_at),
        );
    }

    fn push(
        &mut self,
        subject: String,
        variant: String,
        assigned_at: Option<i64>,
        event: Option<String>,
        value: Option<f64>,
        occurred_at: Option<i64>,
    ) {
        self.subject.push(subject);
        self.variant.push(variant);
        self.assigned_at.push(assigned_at);
        self.event.push(event);
        self.value.push(value);
        self.occurred_at.push(occurred_at);
    }

    fn frame(&self) -> PolarsResult<DataFrame> {
        let utc = |name: &str, micros: &[Option<i64>]| {
            Series::new(name.into(), micros)
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column()
        };
        DataFrame::new(
            self.subject.len(),
            vec![
                Column::new("subject".into(), &self.subject),
                Column::new("variant".into(), &self.variant),
                utc("assigned_at", &self.assigned_at),
                Column::new("event".into(), &self.event),
                Column::new("value".into(), &self.value),
                utc("occurred_at", &self.occurred_at),
            ],
        )
    }

    /// The table as the bytes of one CSV or Parquet file.
    pub fn encode(&self, format: FileFormat) -> Result<Vec<u8>, String> {
        let frame = self
            .frame()
            .map_err(|e| format!("cannot build the table: {e}"))?;
        encode(format, frame).map_err(|e| format!("cannot write the table: {e}"))
    }
}

/// A pilot's export as the bytes of its two files, made before any file is
/// written so that they can be hashed and audited first.
#[derive(Debug, Clone)]
pub struct EncodedExport {
    pub format: FileFormat,
    pub assignments: Vec<u8>,
    pub events: Vec<u8>,
    /// `covariate.EXT`, when asked for (see [`encode_covariate`]).
    pub covariate: Option<Vec<u8>>,
}

/// Encodes the two tables of a pilot's export.
pub fn encode_export(
    format: FileFormat,
    assignments: &AssignmentColumns,
    events: &EventColumns,
) -> Result<EncodedExport, String> {
    let table = |name: &str, frame: PolarsResult<DataFrame>| {
        frame
            .and_then(|frame| encode(format, frame))
            .map_err(|e| format!("cannot make the {name} table: {e}"))
    };
    Ok(EncodedExport {
        format,
        assignments: table("assignments", assignments.frame())?,
        events: table("events", events.frame())?,
        covariate: None,
    })
}

fn encode(format: FileFormat, mut frame: DataFrame) -> PolarsResult<Vec<u8>> {
    let mut bytes = Vec::new();
    match format {
        FileFormat::Csv => CsvWriter::new(&mut bytes)
            .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ".into()))
            .finish(&mut frame)?,
        FileFormat::Parquet => {
            ParquetWriter::new(&mut bytes).finish(&mut frame)?;
        }
    }
    Ok(bytes)
}

/// Writes `assignments.EXT` and `events.EXT` into `dir` (created if needed,
/// readable by its owner only); returns the two paths. The files are readable
/// by their owner only: they hold the pilot's pseudonymized data.
pub fn write_export(
    dir: &Path,
    format: FileFormat,
    assignments: &AssignmentColumns,
    events: &EventColumns,
) -> Result<(PathBuf, PathBuf), ExportError> {
    let encoded = encode_export(format, assignments, events).map_err(|message| ExportError {
        path: dir.to_owned(),
        message,
    })?;
    write_encoded(dir, &encoded)
}

/// Writes an encoded export's files into `dir`, as `write_export` does
/// (and `covariate.EXT` when the export carries one).
pub fn write_encoded(
    dir: &Path,
    export: &EncodedExport,
) -> Result<(PathBuf, PathBuf), ExportError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ExportError {
            path: dir.to_owned(),
            message: format!("cannot create the folder: {e}"),
        })?;
    let extension = export.format.extension();
    let assignments_path = dir.join(format!("assignments.{extension}"));
    let events_path = dir.join(format!("events.{extension}"));
    write_file(&assignments_path, &export.assignments)?;
    write_file(&events_path, &export.events)?;
    if let Some(covariate) = &export.covariate {
        write_file(&dir.join(format!("covariate.{extension}")), covariate)?;
    }
    Ok((assignments_path, events_path))
}

/// Encodes the covariate table (`covariate.EXT` beside the export's two).
pub fn encode_covariate(
    format: FileFormat,
    covariate: &CovariateColumns,
) -> Result<Vec<u8>, String> {
    covariate
        .frame()
        .and_then(|frame| encode(format, frame))
        .map_err(|e| format!("cannot make the covariate table: {e}"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let fail = |message: String| ExportError {
        path: path.to_owned(),
        message,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|file| {
            // A file that existed keeps its mode on open: narrow it too.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            Ok(file)
        })
        .map_err(|e| fail(format!("cannot create the file: {e}")))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(format!("cannot write the file: {e}")))
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn sample() -> (AssignmentColumns, EventColumns) {
        let assignments = AssignmentColumns {
            subject: vec!["s1".into(), "s2".into()],
            variant: vec!["control".into(), "v1".into()],
            assigned_at: vec![1_767_225_600_000_000, 1_767_225_601_500_000],
        };
        let events = EventColumns {
            subject: vec!["s1".into()],
            event: vec!["purchase".into()],
            value: vec![Some(12.5)],
            occurred_at: vec![1_767_229_200_000_000],
        };
        (assignments, events)
    }

    #[test]
    fn csv_exports_carry_rfc3339_times() {
        let dir = tempfile::tempdir().unwrap();
        let (assignments, events) = sample();
        let (a, e) = write_export(dir.path(), FileFormat::Csv, &assignments, &events).unwrap();
        let text = std::fs::read_to_string(a).unwrap();
        assert_eq!(
            text,
            "subject,variant,assigned_at\ns1,control,2026-01-01T00:00:00.000000Z\ns2,v1,2026-01-01T00:00:01.500000Z\n"
        );
        let text = std::fs::read_to_string(e).unwrap();
        assert_eq!(
            text,
            "subject,event,value,occurred_at\ns1,purchase,12.5,2026-01-01T01:00:00.000000Z\n"
        );
    }

    #[test]
    fn parquet_exports_read_back_with_utc_datetimes() {
        let dir = tempfile::tempdir().unwrap();
        let (assignments, events) = sample();
        let (a, _) = write_export(dir.path(), FileFormat::Parquet, &assignments, &events).unwrap();
        let frame = ParquetReader::new(File::open(a).unwrap()).finish().unwrap();
        assert_eq!(frame.height(), 2);
        assert_eq!(
            frame.column("assigned_at").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
    }

    #[test]
    fn a_delivery_holds_assignments_then_events_in_one_table() {
        let mut delivery = DeliveryColumns::default();
        delivery.push_assignment("r1".into(), "control".into(), 1_767_225_600_000_000);
        delivery.push_event(
            "r1".into(),
            "control".into(),
            "purchase".into(),
            Some(2.5),
            1_767_229_200_000_000,
        );
        let csv = String::from_utf8(delivery.encode(FileFormat::Csv).unwrap()).unwrap();
        assert_eq!(
            csv,
            "subject,variant,assigned_at,event,value,occurred_at\n\
             r1,control,2026-01-01T00:00:00.000000Z,,,\n\
             r1,control,,purchase,2.5,2026-01-01T01:00:00.000000Z\n"
        );
        let parquet = delivery.encode(FileFormat::Parquet).unwrap();
        let frame = ParquetReader::new(std::io::Cursor::new(parquet))
            .finish()
            .unwrap();
        assert_eq!(frame.height(), 2);
        assert_eq!(frame.column("event").unwrap().null_count(), 1);
        assert_eq!(
            frame.column("occurred_at").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(
            FileFormat::of_path(Path::new("a/b.CSV")),
            Some(FileFormat::Csv)
        );
        assert_eq!(
            FileFormat::of_path(Path::new("b.parquet")),
            Some(FileFormat::Parquet)
        );
        assert_eq!(FileFormat::of_path(Path::new("b.json")), None);
    }
}
