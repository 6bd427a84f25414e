//! Reading `pilotgate analyze` input files (CSV or Parquet, by extension) into
//! frames with parsed UTC times, and naming the file, row and column of the
//! first bad value.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::export::FileFormat;

/// Bad input, said in one line that names the file (and the row and column where one applies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: row {row}: column '{column}': {message}")]
    Value {
        file: String,
        row: usize,
        column: String,
        message: String,
    },
}

/// One input file: where it is and what it holds.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: FileFormat,
}

impl InputFile {
    /// The file at `path`, which must exist and end in `.csv` or `.parquet`.
    pub fn open(path: &Path) -> Result<InputFile, InputError> {
        let file = path.display().to_string();
        let format = FileFormat::of_path(path).ok_or_else(|| InputError::File {
            file: file.clone(),
            message: "the file name must end in .csv or .parquet".to_owned(),
        })?;
        if !path.is_file() {
            return Err(InputError::File {
                file,
                message: "no such file".to_owned(),
            });
        }
        if format == FileFormat::Csv
            && let Some(kind) = compression_of(path)
        {
            // Polars (built without decompression) would panic on it.
            return Err(InputError::File {
                file,
                message: format!("the file is {kind}-compressed; decompress it first"),
            });
        }
        Ok(InputFile {
            path: path.to_owned(),
            format,
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn file_error(&self, message: impl Into<String>) -> InputError {
        InputError::File {
            file: self.name(),
            message: one_line(&message.into()),
        }
    }

    /// A lazy scan of the file with every column read as it is stored
    /// (CSV: all text, so that bad values can be found and named).
    fn scan(&self) -> Result<LazyFrame, InputError> {
        let path = PlRefPath::try_from_path(&self.path)
            .map_err(|e| self.file_error(format!("cannot read the file: {e}")))?;
        let scanned = match self.format {
            FileFormat::Csv => LazyCsvReader::new(path)
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .finish(),
            FileFormat::Parquet => LazyFrame::scan_parquet(path, ScanArgsParquet::default()),
        };
        scanned.map_err(|e| {
            self.file_error(format!(
                "cannot read the file: {}",
                first_line(&e.to_string())
            ))
        })
    }

    /// The scan, after checking that every column in `required` is there.
    pub fn scan_columns(&self, required: &[&str]) -> Result<LazyFrame, InputError> {
        let mut frame = self.scan()?;
        let schema = frame.collect_schema().map_err(|e| {
            self.file_error(format!(
                "cannot read the header: {}",
                first_line(&e.to_string())
            ))
        })?;
        self.require(&schema, required)?;
        Ok(frame)
    }

    /// Fails naming the first column of `required` that `schema` lacks.
    fn require(&self, schema: &Schema, required: &[&str]) -> Result<(), InputError> {
        if let Some(missing) = required.iter().find(|c| schema.get(c).is_none()) {
            // A damaged header (an unclosed quote) can hold the whole file: show a little of it.
            let found: Vec<String> = schema
                .iter_names()
                .map(|n| n.as_str())
                .filter(|n| *n != ROW)
                .take(10)
                .map(|n| one_line(&n.chars().take(40).collect::<String>()))
                .collect();
            return Err(self.file_error(format!(
                "the column '{missing}' is missing (found: {})",
                found.join(", ")
            )));
        }
        Ok(())
    }

    /// The rows whose `column` is `value`, with `required` columns checked.
    /// A CSV file is first filtered byte by byte when it can be
    /// ([`crate::prefilter`]), and then holds only those rows with their
    /// numbers in the file in column [`ROW`] (the flag is `true`); otherwise
    /// this is the whole scan, to be filtered and numbered by the caller.
    pub fn scan_rows_where(
        &self,
        required: &[&str],
        column: &str,
        value: &str,
    ) -> Result<(LazyFrame, bool), InputError> {
        if self.format != FileFormat::Csv {
            return Ok((self.scan_columns(required)?, false));
        }
        let filtered = crate::prefilter::rows_where(&self.path, column, value)
            .map_err(|e| self.file_error(format!("cannot read the file: {e}")))?;
        let Some(bytes) = filtered else {
            return Ok((self.scan_columns(required)?, false));
        };
        let frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(std::io::Cursor::new(bytes))
            .finish()
            .map_err(|e| {
                self.file_error(format!(
                    "cannot read the file: {}",
                    first_line(&e.to_string())
                ))
            })?;
        self.require(frame.schema(), required)?;
        let numbered = frame.lazy().with_column(col(ROW).cast(DataType::UInt64));
        Ok((numbered, true))
    }

    /// Expression turning column `name` into a float: a stored number as it
    /// is, text parsed (null where it is not a number, which the caller
    /// reports), anything else through its text.
    pub fn number_expr(&self, frame_schema: &Schema, name: &str) -> Expr {
        match frame_schema.get(name) {
            Some(dtype) if dtype.is_primitive_numeric() => col(name).cast(DataType::Float64),
            _ => col(name).cast(DataType::String).cast(DataType::Float64),
        }
    }

    /// Expression turning column `name` into UTC microseconds, whatever it is stored as.
    pub fn time_expr(&self, frame_schema: &Schema, name: &str) -> Expr {
        match frame_schema.get(name) {
            Some(DataType::Datetime(_, _)) => col(name).cast(DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            )),
            _ => col(name).cast(DataType::String).str().to_datetime(
                Some(TimeUnit::Microseconds),
                Some(TimeZone::UTC),
                StrptimeOptions {
                    format: Some("%+".into()),
                    strict: false,
                    exact: true,
                    cache: false,
                },
                lit("raise"),
            ),
        }
    }

    /// Fails with the first row where `raw` holds a value that `parsed` could not read.
    pub fn check_parsed(
        &self,
        frame: &DataFrame,
        raw: &str,
        parsed: &str,
        what: &str,
    ) -> Result<(), InputError> {
        let raw_column = frame
            .column(raw)
            .map_err(|e| self.file_error(e.to_string()))?;
        let parsed_column = frame
            .column(parsed)
            .map_err(|e| self.file_error(e.to_string()))?;
        if parsed_column.null_count() == raw_column.null_count() {
            return Ok(());
        }
        let bad = raw_column.is_not_null() & parsed_column.is_null();
        let row = bad.first_true_idx().unwrap_or(0);
        Err(InputError::Value {
            file: self.name(),
            row: self.row_number(frame, row),
            column: raw.to_owned(),
            message: what.to_owned(),
        })
    }

    /// Fails with the first row where `column` is empty.
    pub fn check_present(&self, frame: &DataFrame, column: &str) -> Result<(), InputError> {
        let values = frame
            .column(column)
            .map_err(|e| self.file_error(e.to_string()))?;
        if values.null_count() == 0 {
            return Ok(());
        }
        let nulls = values.is_null();
        let row = nulls.first_true_idx().unwrap_or(0);
        Err(InputError::Value {
            file: self.name(),
            row: self.row_number(frame, row),
            column: column.to_owned(),
            message: "is empty".to_owned(),
        })
    }

    /// The 1-based data row (after the header) of frame row `index`, from the `row` column when kept.
    fn row_number(&self, frame: &DataFrame, index: usize) -> usize {
        frame
            .column(ROW)
            .ok()
            .and_then(|c| c.get(index).ok())
            .and_then(|v| v.extract::<u64>())
            .map_or(index + 1, |r| r as usize + 1)
    }
}

/// The name of the row-index column added to scans, so errors can name rows.
pub const ROW: &str = "__row";

/// `text` as one line of at most 300 characters: control characters (line
/// breaks included) become `?`, so that an error never spans lines or
/// carries terminal escapes from a damaged file.
/// The compression whose magic bytes begin the file at `path`, if any: those
/// Polars' CSV reader looks for (gzip, zlib, zstd).
fn compression_of(path: &Path) -> Option<&'static str> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut magic)
        .ok()?;
    match magic {
        [0x1f, 0x8b, _, _] => Some("gzip"),
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, _, _] => Some("zlib"),
        [0x28, 0xb5, 0x2f, 0xfd] => Some("zstd"),
        _ => None,
    }
}

fn one_line(text: &str) -> String {
    text.chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}
