//! The fast readers against the Polars pipeline. The byte-level CSV reader
//! (`csv_scan`): on random exports (random column order, CRLF or LF, with or
//! without a last line end, times with fractions and offsets, values of every
//! plain form, subjects in two variants, unknown subjects, windows, a
//! covariate) it gives the same aggregates, whatever the size of its tasks;
//! on files it does not judge (quotes, other time forms, bad values)
//! `aggregate` gives exactly the Polars pipeline's answer, errors included.
//! The batch reader (`batches`): the same exports as Parquet give the same
//! aggregates.

use std::path::{Path, PathBuf};

use pilotgate_analysis::batches::aggregate_in_batches;
use pilotgate_analysis::csv_scan::aggregate_csv_in_chunks;
use pilotgate_analysis::input::{InputError, InputFile};
use pilotgate_analysis::pipeline::{
    Aggregates, Outcome, PipelineSpec, aggregate, aggregate_with_polars,
};
use polars::prelude::*;
use proptest::prelude::*;

const VARIANTS: [&str; 3] = ["control", "v1", "vé2"];
const EVENTS: [&str; 3] = ["purchase", "view", "purchases"];
const START: i64 = 1_767_225_600;

/// How a time is written.
#[derive(Debug, Clone)]
enum TimeForm {
    Utc,
    /// A fraction of `digits` digits (the value is the fraction's digits).
    Fraction(u32, u64),
    /// An offset in minutes east of UTC.
    Offset(i64),
    /// A form Polars reads but the byte-level reader leaves to it.
    Spaced,
}

/// How a value is written.
#[derive(Debug, Clone)]
enum ValueForm {
    Empty,
    Integer(i64),
    Decimal(i64, u32),
    Exponent(i64, i32),
}

#[derive(Debug, Clone)]
struct Row {
    subject: usize,
    label: usize,
    seconds: i64,
    time: TimeForm,
    value: ValueForm,
}

#[derive(Debug, Clone)]
struct Export {
    assignments: Vec<Row>,
    events: Vec<Row>,
    covariate: Option<Vec<Row>>,
    /// Column order of the events file (a permutation of 0..5; 4 is an extra column).
    event_columns: Vec<usize>,
    crlf: bool,
    last_line_end: bool,
    outcome: Outcome,
    window_hours: Option<f64>,
    /// A quote around one events file subject, which the reader does not judge.
    quoted: bool,
}

fn time_form() -> impl Strategy<Value = TimeForm> {
    prop_oneof![
        6 => Just(TimeForm::Utc),
        2 => (1..=9u32, any::<u64>()).prop_map(|(d, v)| TimeForm::Fraction(d, v % 10u64.pow(d))),
        2 => (-14 * 60..=14 * 60i64).prop_map(TimeForm::Offset),
        1 => Just(TimeForm::Spaced),
    ]
}

fn value_form() -> impl Strategy<Value = ValueForm> {
    prop_oneof![
        Just(ValueForm::Empty),
        (-1000..1000i64).prop_map(ValueForm::Integer),
        (-100_000..100_000i64, 1..4u32).prop_map(|(v, d)| ValueForm::Decimal(v, d)),
        (-50..50i64, -3..4i32).prop_map(|(v, e)| ValueForm::Exponent(v, e)),
    ]
}

/// A row of one of `subjects` subjects and `labels` labels (variants or
/// events), at a time within three days, so that offsets and windows matter.
fn row(subjects: usize, labels: usize) -> impl Strategy<Value = Row> {
    (
        0..subjects,
        0..labels,
        -86_400..86_400 * 2i64,
        time_form(),
        value_form(),
    )
        .prop_map(|(subject, label, seconds, time, value)| Row {
            subject,
            label,
            seconds,
            time,
            value,
        })
}

fn export() -> impl Strategy<Value = Export> {
    (
        prop::collection::vec(row(30, 3), 0..40),
        prop::collection::vec(row(36, 3), 0..80),
        prop::option::of(prop::collection::vec(row(36, 1), 0..20)),
        Just(vec![0usize, 1, 2, 3, 4]).prop_shuffle(),
        any::<(bool, bool, bool)>(),
        prop::option::of(0.5..48.0f64),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(assignments, events, covariate, event_columns, flags, window_hours, quoted)| Export {
                assignments,
                events,
                covariate,
                event_columns,
                crlf: flags.0,
                last_line_end: flags.1,
                outcome: if flags.2 {
                    Outcome::Sum
                } else {
                    Outcome::Binary
                },
                window_hours,
                quoted,
            },
        )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn render_time(seconds: i64, form: &TimeForm) -> String {
    let offset = match form {
        TimeForm::Offset(minutes) => minutes * 60,
        _ => 0,
    };
    let local = START + seconds + offset;
    let (y, m, d) = civil(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
    let separator = if matches!(form, TimeForm::Spaced) {
        ' '
    } else {
        'T'
    };
    let base = format!("{y:04}-{m:02}-{d:02}{separator}{hh:02}:{mm:02}:{ss:02}");
    match form {
        TimeForm::Utc | TimeForm::Spaced => format!("{base}Z"),
        TimeForm::Fraction(digits, value) => {
            format!("{base}.{value:0width$}Z", width = *digits as usize)
        }
        TimeForm::Offset(minutes) => {
            let sign = if *minutes < 0 { '-' } else { '+' };
            let m = minutes.abs();
            format!("{base}{sign}{:02}:{:02}", m / 60, m % 60)
        }
    }
}

fn render_value(form: &ValueForm) -> String {
    match form {
        ValueForm::Empty => String::new(),
        ValueForm::Integer(v) => v.to_string(),
        ValueForm::Decimal(v, digits) => {
            let scale = 10i64.pow(*digits);
            let sign = if *v < 0 { "-" } else { "" };
            let v = v.abs();
            format!(
                "{sign}{}.{:0width$}",
                v / scale,
                v % scale,
                width = *digits as usize
            )
        }
        ValueForm::Exponent(v, e) => format!("{v}e{e}"),
    }
}

fn subject(i: usize) -> String {
    // Subjects of several lengths, one of them beyond 8 bytes and not ASCII.
    if i % 7 == 3 {
        format!("sübject-{i}")
    } else {
        format!("s{i}")
    }
}

fn write_file(path: &Path, lines: &[String], export: &Export) {
    let end = if export.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(end);
    if export.last_line_end {
        text.push_str(end);
    }
    std::fs::write(path, text).unwrap();
}

struct Files {
    _dir: tempfile::TempDir,
    assignments: PathBuf,
    events: PathBuf,
    covariate: Option<PathBuf>,
}

fn write_export(export: &Export) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec!["subject,variant,assigned_at".to_owned()];
    lines.extend(export.assignments.iter().map(|r| {
        format!(
            "{},{},{}",
            subject(r.subject),
            VARIANTS[r.label],
            render_time(r.seconds, &r.time)
        )
    }));
    let assignments = dir.path().join("assignments.csv");
    write_file(&assignments, &lines, export);

    let names = ["subject", "event", "value", "occurred_at", "note"];
    let order = &export.event_columns;
    let mut lines = vec![
        order
            .iter()
            .map(|c| names[*c])
            .collect::<Vec<_>>()
            .join(","),
    ];
    lines.extend(export.events.iter().enumerate().map(|(i, r)| {
        let quoted = export.quoted && i == export.events.len() / 2;
        let fields = [
            if quoted {
                format!("\"{}\"", subject(r.subject))
            } else {
                subject(r.subject)
            },
            EVENTS[r.label].to_owned(),
            render_value(&r.value),
            render_time(r.seconds, &r.time),
            format!("n{i}"),
        ];
        order
            .iter()
            .map(|c| fields[*c].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }));
    let events = dir.path().join("events.csv");
    write_file(&events, &lines, export);

    let covariate = export.covariate.as_ref().map(|rows| {
        let mut lines = vec!["value,subject".to_owned()];
        lines.extend(
            rows.iter()
                .map(|r| format!("{},{}", render_value(&r.value), subject(r.subject))),
        );
        let path = dir.path().join("covariate.csv");
        write_file(&path, &lines, export);
        path
    });
    Files {
        _dir: dir,
        assignments,
        events,
        covariate,
    }
}

fn spec<'a>(files: &'a Files, export: &Export) -> PipelineSpec<'a> {
    PipelineSpec {
        assignments: &files.assignments,
        events: &files.events,
        covariate: files.covariate.as_deref(),
        metric: "purchase",
        outcome: export.outcome,
        window_hours: export.window_hours,
    }
}

/// Whether every value is in the plain form the byte-level reader judges.
fn plain(export: &Export) -> bool {
    let mut rows = export.assignments.iter().chain(
        export
            .events
            .iter()
            .filter(|r| EVENTS[r.label] == "purchase"),
    );
    let quoted = export.quoted && !export.events.is_empty();
    !quoted && rows.all(|r| !matches!(r.time, TimeForm::Spaced))
}

fn assert_same(got: &Aggregates, want: &Aggregates) {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
    assert_eq!(got.unknown_subject_events, want.unknown_subject_events);
    assert_eq!(
        got.multiple_variant_subjects,
        want.multiple_variant_subjects
    );
    assert_eq!(
        got.variants.len(),
        want.variants.len(),
        "{got:?} vs {want:?}"
    );
    for (g, w) in got.variants.iter().zip(&want.variants) {
        assert_eq!((&g.variant, g.users), (&w.variant, w.users));
        for (a, b) in [
            (g.sum, w.sum),
            (g.sum_squares, w.sum_squares),
            (g.x_sum, w.x_sum),
            (g.x_sum_squares, w.x_sum_squares),
            (g.xy_sum, w.xy_sum),
        ] {
            assert!(close(a, b), "{got:?} vs {want:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_byte_level_reader_agrees_with_polars(export in export(), chunk in 1..300u64) {
        let files = write_export(&export);
        let spec = spec(&files, &export);
        let want = aggregate_with_polars(&spec).expect("generated exports are valid");
        match aggregate_csv_in_chunks(&spec, chunk) {
            Some(fast) => assert_same(&fast, &want),
            None => prop_assert!(!plain(&export), "the reader judges plain files"),
        }
        assert_same(&aggregate(&spec).unwrap(), &want);

        let twins = parquet_twins(&files);
        let spec = PipelineSpec {
            assignments: &twins.assignments,
            events: &twins.events,
            covariate: twins.covariate.as_deref(),
            ..spec
        };
        let open = |path: &Path| InputFile::open(path).unwrap();
        let covariate = spec.covariate.map(open);
        let batched = aggregate_in_batches(
            &spec,
            &open(spec.assignments),
            &open(spec.events),
            covariate.as_ref(),
        )
        .expect("the batch reader reads valid files");
        assert_same(&batched, &want);
    }
}

/// The files as Parquet, every column a string as in the CSV file.
fn parquet_twins(files: &Files) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let twin = |path: &Path| {
        let mut frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_owned()))
            .unwrap()
            .finish()
            .unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        let out = dir.path().join(format!("{name}.parquet"));
        ParquetWriter::new(std::fs::File::create(&out).unwrap())
            .finish(&mut frame)
            .unwrap();
        out
    };
    Files {
        assignments: twin(&files.assignments),
        events: twin(&files.events),
        covariate: files.covariate.as_deref().map(twin),
        _dir: dir,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const ASSIGNMENTS: &str = "subject,variant,assigned_at\n\
    a1,control,2026-01-01T00:00:00Z\n\
    a2,v1,2026-01-01T00:00:00Z\n";

/// `aggregate` and the Polars pipeline on the same files: the same answer.
fn both(assignments: &str, events: &str) -> (Result<Aggregates, InputError>, String) {
    let dir = tempfile::tempdir().unwrap();
    let assignments = write(dir.path(), "assignments.csv", assignments);
    let events = write(dir.path(), "events.csv", events);
    let spec = PipelineSpec {
        assignments: &assignments,
        events: &events,
        covariate: None,
        metric: "purchase",
        outcome: Outcome::Sum,
        window_hours: None,
    };
    let got = aggregate(&spec);
    let want = aggregate_with_polars(&spec);
    assert_eq!(got, want);
    let events_name = events.display().to_string();
    (got, events_name)
}

#[test]
fn a_bad_value_in_a_metric_row_is_one_line_naming_file_row_and_column() {
    for (events, row, column) in [
        (
            "subject,event,value,occurred_at\n\
             a1,view,oops,yesterday\n\
             a1,purchase,1,2026-01-02T00:00:00Z\n\
             a2,purchase,1,2026-13-02T00:00:00Z\n",
            3,
            "occurred_at",
        ),
        (
            "subject,event,value,occurred_at\r\n\
             a1,purchase,1.5.2,2026-01-02T00:00:00Z\r\n",
            1,
            "value",
        ),
        (
            "subject,event,value,occurred_at\n\
             a1,purchase,1,2026-01-02T00:00:00Z\n\
             ,purchase,1,2026-01-02T00:00:00Z\n",
            2,
            "subject",
        ),
    ] {
        let (got, file) = both(ASSIGNMENTS, events);
        let message = got.unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with(&format!("{file}: row {row}: column '{column}': ")),
            "{message}"
        );
    }
}

#[test]
fn a_bad_assignment_row_is_named_by_file_row_and_column() {
    let assignments = "subject,variant,assigned_at\n\
                       a1,control,2026-01-01T00:00:00Z\n\
                       a2,,2026-01-01T00:00:00Z\n";
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "assignments.csv", assignments);
    let events = write(
        dir.path(),
        "events.csv",
        "subject,event,value,occurred_at\n",
    );
    let error = aggregate(&PipelineSpec {
        assignments: &path,
        events: &events,
        covariate: None,
        metric: "purchase",
        outcome: Outcome::Binary,
        window_hours: None,
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}: row 2: column 'variant': is empty", path.display())
    );
}

#[test]
fn quoted_fields_crlf_and_files_without_rows_give_the_polars_answer() {
    let quoted = "subject,event,value,occurred_at\n\
                  \"a1\",purchase,\"2.5\",2026-01-02T00:00:00Z\n\
                  a2,\"purchase\",1,2026-01-02T00:00:00Z\n";
    let (got, _) = both(ASSIGNMENTS, quoted);
    let sums: Vec<f64> = got.unwrap().variants.iter().map(|v| v.sum).collect();
    assert_eq!(sums, [2.5, 1.0]);

    let crlf = "subject,event,value,occurred_at\r\na1,purchase,2,2026-01-02T00:00:00Z\r\n";
    let (got, _) = both(&ASSIGNMENTS.replace('\n', "\r\n"), crlf);
    assert_eq!(got.unwrap().variants[0].sum, 2.0);

    let (got, _) = both(ASSIGNMENTS, "subject,event,value,occurred_at");
    assert_eq!(got.unwrap().variants.len(), 2);
    let (got, _) = both(ASSIGNMENTS, "");
    assert!(got.is_err());
}
