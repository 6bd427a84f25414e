//! Property test of `pilotgate consents import` on hostile inventories: valid
//! rows with random fields replaced by odd values, random bytes spliced in,
//! lines cut short, and plain random bytes. Whatever the file, the import
//! ends with a summary whose counts add up, or one line naming the file; a
//! bad row is reported as one `FILE:LINE:` line; the report never repeats a
//! raw user id; and a second import of the same file stores nothing new.
//! `PROPTEST_CASES=5000 cargo test -p pilotgate-server --test fuzz_import`
//! runs a longer campaign.

use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_server::import::import_consents;
use pilotgate_store::Dialect;
use pilotgate_store::testing::TestDb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const HEADER: &str = "user_id,purpose,basis,status,notice_id,notice_version,source_channel,source_method,collected_at,proof_ref";

fn row(n: usize) -> String {
    format!(
        "uid-{n:05},personalize.content,consent,granted,pn,2,banner,click,2026-01-0{}T10:00:00Z,cmp://r/{n}",
        n % 9 + 1
    )
}

fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\"".to_owned()),
        Just("\"a,\nb\"".to_owned()),
        Just("granted\u{0}".to_owned()),
        Just("-1".to_owned()),
        Just("4294967296".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("1999-12-31T23:59:59Z".to_owned()),
        Just("2026-13-01T00:00:00Z".to_owned()),
        Just("legitimate_interest".to_owned()),
        Just("no.such_purpose".to_owned()),
        Just("x".repeat(600)),
        Just("'; DROP TABLE consent_records; --".to_owned()),
        "[ -~]{0,10}",
        any::<String>(),
    ]
}

#[derive(Debug, Clone)]
enum Damage {
    Field(usize, usize, String),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (1..12usize, 0..11usize, odd_value()).prop_map(|(r, c, v)| Damage::Field(r, c, v)),
        1 => (0..2000usize, prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(at, b)| Damage::Insert(at, b)),
        1 => (0..2000usize).prop_map(Damage::Truncate),
    ]
}

fn inventory(damages: &[Damage]) -> Vec<u8> {
    let mut lines: Vec<String> = std::iter::once(HEADER.to_owned())
        .chain((0..11).map(row))
        .collect();
    for damage in damages {
        if let Damage::Field(r, c, value) = damage {
            let mut fields: Vec<String> = lines[*r].split(',').map(str::to_owned).collect();
            if *c < fields.len() {
                fields[*c] = value.clone();
            }
            lines[*r] = fields.join(",");
        }
    }
    let mut bytes = (lines.join("\n") + "\n").into_bytes();
    for damage in damages {
        match damage {
            Damage::Insert(at, more) => {
                let at = (*at).min(bytes.len());
                bytes.splice(at..at, more.iter().copied());
            }
            Damage::Truncate(at) => bytes.truncate((*at).max(HEADER.len())),
            Damage::Field(..) => {}
        }
    }
    bytes
}

#[test]
fn hostile_inventories_are_imported_or_refused_in_one_line_and_never_echo_a_raw_id() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(async {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let purpose = Purpose {
            key: PurposeKey::parse("personalize.content").unwrap(),
            description: "fuzz".to_owned(),
            allowed_bases: [LegalBasis::Consent].into_iter().collect(),
            min_notice_version: 1,
            special_category: false,
            li_assessment_ref: None,
            contract_necessary: false,
            retention_days: 90,
        };
        db.store
            .create_purpose(&purpose, &Actor::operator())
            .await
            .unwrap();
        db
    });
    let keys = KeyRing::new(vec![PseudonymKey::new(1, vec![9; 32]).unwrap()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.csv");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let contents = prop_oneof![
        4 => prop::collection::vec(damage(), 0..5).prop_map(|d| inventory(&d)),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ];
    runner
        .run(&contents, |bytes| {
            std::fs::write(&file, &bytes).unwrap();
            let name = file.display().to_string();
            let mut report = Vec::new();
            let outcome = runtime.block_on(import_consents(&file, &db.store, &keys, &mut report));
            let report = String::from_utf8(report).unwrap();
            prop_assert!(!report.contains("uid-"), "a raw id was echoed: {report}");
            match outcome {
                Ok(summary) => {
                    prop_assert_eq!(
                        summary.rows,
                        summary.stored + summary.duplicates + summary.invalid
                    );
                    let row_lines = report
                        .lines()
                        .filter(|l| l.starts_with(&format!("{name}:")))
                        .count() as u64;
                    prop_assert_eq!(row_lines, summary.invalid, "{}", report);
                    let mut again = Vec::new();
                    let second = runtime
                        .block_on(import_consents(&file, &db.store, &keys, &mut again))
                        .unwrap();
                    prop_assert_eq!(second.stored, 0);
                    prop_assert_eq!(second.duplicates, summary.stored + summary.duplicates);
                }
                Err(error) => {
                    let message = error.to_string();
                    prop_assert!(
                        message.starts_with(&name) && !message.contains('\n'),
                        "{}",
                        message
                    );
                    prop_assert!(
                        !message.contains("uid-"),
                        "a raw id was echoed: {}",
                        message
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        runtime
            .block_on(db.store.verify_audit_chain(None))
            .unwrap()
            .ok
    );
}
