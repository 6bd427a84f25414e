//! Property tests of the `pilotgate analyze` readers on hostile files: CSV
//! files built from valid rows with random damage (cut lines, stray quotes,
//! odd bytes, missing or extra fields, impossible numbers and times, a BOM,
//! a duplicated header), random bytes, and random bytes named `.parquet`.
//! Whatever the input, the analysis returns a report or one line naming the
//! file; it never panics. `PROPTEST_CASES=20000 cargo test -p
//! pilotgate-analysis --test fuzz_inputs` runs a longer campaign.

use std::path::Path;

use pilotgate_analysis::pipeline::{Outcome, PipelineSpec};
use pilotgate_analysis::report::{AnalyzeOptions, analyze};
use pilotgate_analysis::stats::Method;
use proptest::prelude::*;

const ASSIGNMENTS: &str = "subject,variant,assigned_at\n\
    a1,control,2026-01-01T00:00:00Z\n\
    a2,v1,2026-01-01T00:00:00Z\n\
    a3,control,2026-01-02T10:00:00+02:00\n\
    a4,v1,2026-01-02T00:00:00Z\n";
const EVENTS: &str = "subject,event,value,occurred_at\n\
    a1,purchase,10.5,2026-01-03T00:00:00Z\n\
    a2,purchase,,2026-01-03T00:00:00Z\n\
    a4,purchase,3,2026-01-04T00:00:00Z\n\
    a9,purchase,1,2026-01-04T00:00:00Z\n\
    a3,view,1,2026-01-04T00:00:00Z\n";

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut the text at this fraction of its length.
    Truncate(f64),
    /// Insert these bytes at this fraction of the length.
    Insert(f64, Vec<u8>),
    /// Replace one field (by row and column) with this text.
    Field(usize, usize, String),
    /// Drop a line.
    DropLine(usize),
    /// Repeat the header line in the middle.
    RepeatHeader,
    /// Put a byte-order mark in front.
    Bom,
}

fn damage() -> impl Strategy<Value = Damage> {
    let nasty_text = prop_oneof![
        Just("".to_owned()),
        Just("\"".to_owned()),
        Just("\"a,b\"".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e400".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("0000-01-01T00:00:00Z".to_owned()),
        Just("2026-02-30T00:00:00Z".to_owned()),
        Just("2026-01-01T00:00:00+25:00".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\u{0}".to_owned()),
        Just("é\u{202e}".to_owned()),
        "[ -~]{0,12}",
        any::<String>(),
    ];
    prop_oneof![
        (0.0..1.0f64).prop_map(Damage::Truncate),
        (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
        (0..6usize, 0..5usize, nasty_text).prop_map(|(r, c, t)| Damage::Field(r, c, t)),
        (0..6usize).prop_map(Damage::DropLine),
        Just(Damage::RepeatHeader),
        Just(Damage::Bom),
    ]
}

fn apply(text: &str, damages: &[Damage]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for damage in damages {
        match damage {
            Damage::Truncate(at) => bytes.truncate((bytes.len() as f64 * at) as usize),
            Damage::Insert(at, more) => {
                let at = (bytes.len() as f64 * at) as usize;
                bytes.splice(at..at, more.iter().copied());
            }
            Damage::Field(row, column, new) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
                if let Some(line) = lines.get_mut(*row) {
                    let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
                    if *column < fields.len() {
                        fields[*column] = new.clone();
                    } else {
                        fields.push(new.clone());
                    }
                    *line = fields.join(",");
                }
                bytes = lines.join("\n").into_bytes();
            }
            Damage::DropLine(row) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                if *row < lines.len() {
                    lines.remove(*row);
                }
                bytes = lines.join("\n").into_bytes();
            }
            Damage::RepeatHeader => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let header = text.lines().next().unwrap_or_default().to_owned();
                bytes = format!("{text}{header}\n").into_bytes();
            }
            Damage::Bom => {
                bytes.splice(0..0, [0xef, 0xbb, 0xbf]);
            }
        }
    }
    bytes
}

/// Runs the analysis; panics only if the analysis itself panics.
fn analyze_files(dir: &Path, assignments: &[u8], events: &[u8], ext: &str, outcome: Outcome) {
    if let Err(message) = analyze_written(dir, assignments, events, ext, outcome) {
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "not one line: {message:?}"
        );
    }
}

/// Writes the two files into `dir` and analyzes them; the error as said.
fn analyze_written(
    dir: &Path,
    assignments: &[u8],
    events: &[u8],
    ext: &str,
    outcome: Outcome,
) -> Result<(), String> {
    let a = dir.join(format!("assignments.{ext}"));
    let e = dir.join(format!("events.{ext}"));
    std::fs::write(&a, assignments).unwrap();
    std::fs::write(&e, events).unwrap();
    let spec = PipelineSpec {
        assignments: &a,
        events: &e,
        covariate: None,
        metric: "purchase",
        outcome,
        window_hours: Some(48.0),
    };
    let options = AnalyzeOptions {
        method: Method::Frequentist,
        control: "control".to_owned(),
        alpha: 0.05,
        weights: Vec::new(),
    };
    analyze(&spec, &options)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Cases per property: a short run by default, `PROPTEST_CASES` for a campaign.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Binary), Just(Outcome::Sum)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_csv_files_give_a_report_or_one_line(
        a_damage in prop::collection::vec(damage(), 0..3),
        e_damage in prop::collection::vec(damage(), 0..4),
        outcome in outcome(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        analyze_files(dir.path(), &apply(ASSIGNMENTS, &a_damage), &apply(EVENTS, &e_damage), "csv", outcome);
    }

    #[test]
    fn random_bytes_give_one_line(
        assignments in prop::collection::vec(any::<u8>(), 0..300),
        events in prop::collection::vec(any::<u8>(), 0..300),
        parquet in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let ext = if parquet { "parquet" } else { "csv" };
        analyze_files(dir.path(), &assignments, &events, ext, Outcome::Binary);
    }
}

/// Found by `random_bytes_give_one_line`: a CSV that begins with gzip's
/// magic bytes made Polars (built without decompression) panic.
#[test]
fn a_compressed_csv_is_refused_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, magic) in [
        ("gzip", &[0x1f, 0x8b, 0, 0][..]),
        ("zlib", &[0x78, 0x9c, 1, 2][..]),
        ("zstd", &[0x28, 0xb5, 0x2f, 0xfd][..]),
    ] {
        let message = analyze_written(dir.path(), magic, EVENTS.as_bytes(), "csv", Outcome::Binary)
            .unwrap_err();
        assert_eq!(
            message,
            format!(
                "{}: the file is {kind}-compressed; decompress it first",
                dir.path().join("assignments.csv").display()
            )
        );
    }
}
