//! `pilotgate analyze` as a user runs it: JSON and table output, and one clear
//! line naming file, row and column for each kind of bad input of ANALYZE.md.

use std::path::{Path, PathBuf};

use crate::support::process::{pilotgate, run, text};

fn case() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../analysis/tests/data/cases/two-arms"
    ))
}

fn analyze(dir: &Path, args: &[&str]) -> std::process::Output {
    run(pilotgate(dir, None).arg("analyze").args(args))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn json_and_table_output_on_a_reference_case() {
    let dir = tempfile::tempdir().unwrap();
    let (a, e) = (case().join("assignments.csv"), case().join("events.csv"));
    let json = analyze(
        dir.path(),
        &[
            "--assignments",
            a.to_str().unwrap(),
            "--events",
            e.to_str().unwrap(),
            "--metric",
            "purchase",
            "--format",
            "json",
        ],
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["method"], "frequentist");
    assert_eq!(report["variants"][0]["variant"], "control");
    assert!(report["comparisons"][0]["relative"]["p_value"].is_number());
    assert!(
        report["excluded"]["unknown_subject_events"]
            .as_u64()
            .unwrap()
            > 0
    );
    let table = analyze(
        dir.path(),
        &[
            "--assignments",
            a.to_str().unwrap(),
            "--events",
            e.to_str().unwrap(),
            "--metric",
            "purchase",
            "--method",
            "bayesian",
        ],
    );
    let table = text(&table.stdout);
    assert!(
        table.contains("v1 vs control") && table.contains("chance to win"),
        "{table}"
    );
}

#[test]
fn each_kind_of_bad_input_is_one_line_naming_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good_a = write(
        dir.path(),
        "a.csv",
        "subject,variant,assigned_at\ns1,control,2026-01-01T00:00:00Z\ns2,v1,2026-01-01T00:00:00+02:00\n",
    );
    let good_e = write(
        dir.path(),
        "e.csv",
        "subject,event,value,occurred_at\ns1,purchase,1.5,2026-01-02T00:00:00Z\n",
    );
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["--assignments".into(), dir.path().join("nope.csv").display().to_string(), "--events".into(), good_e.clone()], format!("{}: no such file", dir.path().join("nope.csv").display())),
        (
            vec!["--assignments".into(), write(dir.path(), "cols.csv", "subject,variant\ns1,control\n"), "--events".into(), good_e.clone()],
            "cols.csv: the column 'assigned_at' is missing (found: subject, variant)".into(),
        ),
        (
            vec!["--assignments".into(), write(dir.path(), "time.csv", "subject,variant,assigned_at\ns1,control,2026-01-01T00:00:00Z\ns2,v1,last tuesday\n"), "--events".into(), good_e.clone()],
            "time.csv: row 2: column 'assigned_at': not an RFC 3339 time such as 2026-01-08T20:50:59Z".into(),
        ),
        (
            vec!["--assignments".into(), good_a.clone(), "--events".into(), write(dir.path(), "etime.csv", "subject,event,value,occurred_at\ns1,page_view,0,whenever\ns1,purchase,1,2026-13-01T00:00:00Z\n")],
            "etime.csv: row 2: column 'occurred_at': not an RFC 3339 time such as 2026-01-08T20:50:59Z".into(),
        ),
        (
            vec!["--assignments".into(), good_a.clone(), "--events".into(), write(dir.path(), "ecols.csv", "subject,event,value\ns1,purchase,1\n")],
            "ecols.csv: the column 'occurred_at' is missing (found: subject, event, value)".into(),
        ),
        (
            vec!["--assignments".into(), good_a.clone(), "--events".into(), write(dir.path(), "quoted.csv", "subject,event,value,occurred_at\ns1,\"purchase\",1,2026-01-02T00:00:00Z\ns1,purchase,\"1,5\",2026-01-02T00:00:00Z\n")],
            "quoted.csv: row 2: column 'value': not a number".into(),
        ),
        (
            vec!["--assignments".into(), good_a.clone(), "--events".into(), write(dir.path(), "value.csv", "subject,event,value,occurred_at\ns1,purchase,ten,2026-01-02T00:00:00Z\n")],
            "value.csv: row 1: column 'value': not a number".into(),
        ),
        (
            vec!["--assignments".into(), write(dir.path(), "nocontrol.csv", "subject,variant,assigned_at\ns1,a,2026-01-01T00:00:00Z\ns2,b,2026-01-01T00:00:00Z\n"), "--events".into(), good_e.clone()],
            "nocontrol.csv: no users in the control 'control' (choose it with --control)".into(),
        ),
        (vec!["--assignments".into(), write(dir.path(), "a.json", "{}"), "--events".into(), good_e.clone()], "a.json: the file name must end in .csv or .parquet".into()),
    ];
    for (args, expected) in cases {
        let mut all = args.clone();
        all.extend(["--metric".to_owned(), "purchase".to_owned()]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let output = analyze(dir.path(), &all);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{expected}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.trim().ends_with(&expected),
            "expected …{expected}\n got {stderr}"
        );
    }
    let good = analyze(
        dir.path(),
        &[
            "--assignments",
            &good_a,
            "--events",
            &good_e,
            "--metric",
            "purchase",
            "--format",
            "json",
        ],
    );
    assert!(
        good.status.success(),
        "an offset time is fine: {}",
        text(&good.stderr)
    );
}
