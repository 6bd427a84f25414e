//! The pilot export format, which `pilotgate analyze` reads: `assignments`
//! (`subject, variant, assigned_at`) and `events` (`subject, event, value,
//! occurred_at`), as CSV with RFC 3339 times or as Parquet with UTC datetimes.

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

    /// The format a file name's extension names.
    pub fn of_path(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
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

/// Writes `assignments.EXT` and `events.EXT` into `dir` (created if needed,
/// readable by its owner only); returns the two paths. The files are readable
/// by their owner only: they hold the pilot's pseudonymized data.
pub fn write_export(
    dir: &Path,
    format: FileFormat,
    assignments: &AssignmentColumns,
    events: &EventColumns,
) -> Result<(PathBuf, PathBuf), ExportError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ExportError {
            path: dir.to_owned(),
            message: format!("cannot create the folder: {e}"),
        })?;
    let assignments_path = dir.join(format!("assignments.{}", format.extension()));
    let events_path = dir.join(format!("events.{}", format.extension()));
    write_frame(&assignments_path, format, assignments.frame())?;
    write_frame(&events_path, format, events.frame())?;
    Ok((assignments_path, events_path))
}

/// Writes `covariate.EXT` into `dir` (made by [`write_export`] first),
/// readable by its owner only; returns its path.
pub fn write_covariate(
    dir: &Path,
    format: FileFormat,
    covariate: &CovariateColumns,
) -> Result<PathBuf, ExportError> {
    let path = dir.join(format!("covariate.{}", format.extension()));
    write_frame(&path, format, covariate.frame())?;
    Ok(path)
}

fn write_frame(
    path: &Path,
    format: FileFormat,
    frame: PolarsResult<DataFrame>,
) -> Result<(), ExportError> {
    let fail = |message: String| ExportError {
        path: path.to_owned(),
        message,
    };
    let mut frame = frame.map_err(|e| fail(format!("cannot build the table: {e}")))?;
    let file = std::fs::OpenOptions::new()
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
    let written = match format {
        FileFormat::Csv => CsvWriter::new(file)
            .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ".into()))
            .finish(&mut frame),
        FileFormat::Parquet => ParquetWriter::new(file).finish(&mut frame).map(|_| ()),
    };
    written.map_err(|e| fail(format!("cannot write the file: {e}")))
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
