//! Tests of `experiment`.

use super::*;

pub(crate) fn design() -> Design {
    Design {
        key: ExperimentKey::parse("homepage-hero").unwrap(),
        name: "Homepage hero".to_owned(),
        hypothesis: "A personalized hero lifts sign-ups".to_owned(),
        owner: "growth team".to_owned(),
        purpose: PurposeKey::parse("personalize.content").unwrap(),
        variants: vec![
            Variant {
                key: "control".to_owned(),
                weight: 1.0,
            },
            Variant {
                key: "v1".to_owned(),
                weight: 1.0,
            },
        ],
        coverage: 1.0,
        seed: "homepage-hero".to_owned(),
        primary_metric: Metric {
            event: "signup".to_owned(),
            kind: MetricKind::Binary,
        },
        guardrails: vec![Metric {
            event: "unsubscribe".to_owned(),
            kind: MetricKind::Binary,
        }],
        mde: 0.05,
        alpha: 0.05,
        power: 0.8,
        baseline_rate: Some(0.1),
        attribution_window_hours: Some(72),
        data_categories: vec!["browsing history".to_owned()],
        retention_days: 90,
        segments: vec![crate::inventory::segments::Dimension::LegalBasis],
        segment_correction: Default::default(),
    }
}

#[test]
fn a_sound_design_validates() {
    assert_eq!(design().validate(), Ok(()));
}

#[test]
fn each_broken_rule_names_its_field() {
    type Change = Box<dyn Fn(&mut Design)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|d| d.key = ExperimentKey::parse("new").unwrap()),
            "key",
        ),
        (Box::new(|d| d.variants.truncate(1)), "variants"),
        (Box::new(|d| d.variants[1].weight = -1.0), "variants"),
        (Box::new(|d| d.variants[1].weight = 0.0), "variants"),
        (Box::new(|d| d.variants[1].weight = f64::NAN), "variants"),
        (
            Box::new(|d| d.variants[1].key = "control".to_owned()),
            "variants",
        ),
        (Box::new(|d| d.coverage = 0.0), "coverage"),
        (Box::new(|d| d.coverage = 1.5), "coverage"),
        (Box::new(|d| d.mde = 0.0), "mde"),
        (Box::new(|d| d.alpha = 0.5), "alpha"),
        (Box::new(|d| d.power = 1.0), "power"),
        (Box::new(|d| d.baseline_rate = Some(1.0)), "baseline_rate"),
        (Box::new(|d| d.data_categories.clear()), "data_categories"),
        (
            Box::new(|d| d.primary_metric.event = "sign up".to_owned()),
            "primary_metric",
        ),
        (Box::new(|d| d.name = String::new()), "name"),
        (Box::new(|d| d.retention_days = 0), "retention_days"),
        (
            Box::new(|d| d.segments = vec![crate::inventory::segments::Dimension::Country]),
            "segments",
        ),
        (
            Box::new(|d| d.attribution_window_hours = Some(0)),
            "attribution_window_hours",
        ),
    ];
    for (change, field) in cases {
        let mut d = design();
        change(&mut d);
        assert_eq!(d.validate().unwrap_err().field, field);
    }
}

#[test]
fn every_transition_valid_and_invalid() {
    use Action::*;
    use State::*;
    let valid = [
        (Draft, Edit, Draft),
        (Submitted, Edit, Draft),
        (Approved, Edit, Draft),
        (Denied, Edit, Draft),
        (Draft, Submit, Submitted),
        (Submitted, Approve, Approved),
        (Submitted, Deny, Denied),
        (Approved, Start, Running),
        (Running, Stop, Stopped),
    ];
    for state in State::ALL {
        for action in Action::ALL {
            let expected = valid
                .iter()
                .find(|(s, a, _)| *s == state && *a == action)
                .map(|(_, _, to)| *to);
            match (transition(state, action), expected) {
                (Ok(to), Some(expected)) => assert_eq!(to, expected, "{state} {action:?}"),
                (Err(error), None) => {
                    assert_eq!(error.current, state);
                    assert!(
                        error.to_string().contains(&format!("it is {state}")),
                        "{error}"
                    );
                }
                (outcome, expected) => {
                    panic!("{state} {action:?}: got {outcome:?}, expected {expected:?}")
                }
            }
        }
    }
}

#[test]
fn only_compliance_reviews_and_never_their_own_pilot() {
    assert_eq!(
        check_reviewer(&Actor::token("dana", Role::Compliance), &people(&["mia"])),
        Ok(())
    );
    assert_eq!(
        check_reviewer(&Actor::token("mia", Role::Compliance), &people(&["mia"])),
        Err(ReviewError::OwnPilot("mia".to_owned()))
    );
    // An editor or submitter counts as much as the creator.
    assert_eq!(
        check_reviewer(
            &Actor::token("max", Role::Compliance),
            &people(&["mia", "max"])
        ),
        Err(ReviewError::OwnPilot("max".to_owned()))
    );
    assert_eq!(
        check_reviewer(&Actor::token("root", Role::Admin), &people(&["mia"])),
        Err(ReviewError::NotCompliance)
    );
    assert_eq!(
        check_reviewer(&Actor::token("mia", Role::Marketer), &people(&["x"])),
        Err(ReviewError::NotCompliance)
    );
}

fn people(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn a_decision_holds_only_for_the_version_reviewed() {
    assert_eq!(check_reviewed_version(3, 3), Ok(()));
    assert_eq!(
        check_reviewed_version(2, 3),
        Err(DesignChanged {
            reviewed: 2,
            current: 3
        })
    );
}

#[test]
fn special_category_purposes_are_refused_for_pilots() {
    let mut purpose = Purpose {
        key: PurposeKey::parse("personalize.content").unwrap(),
        description: "d".to_owned(),
        allowed_bases: [crate::purpose::LegalBasis::Consent].into_iter().collect(),
        min_notice_version: 1,
        special_category: true,
        li_assessment_ref: None,
        contract_necessary: false,
        retention_days: 365,
    };
    assert_eq!(
        design().check_purpose(&purpose).unwrap_err().field,
        "purpose"
    );
    purpose.special_category = false;
    assert_eq!(design().check_purpose(&purpose), Ok(()));
    purpose.retention_days = 30;
    assert_eq!(
        design().check_purpose(&purpose).unwrap_err().field,
        "retention_days"
    );
}
