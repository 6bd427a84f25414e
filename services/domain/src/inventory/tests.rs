use super::*;

fn category(key: &str, sensitivity: Sensitivity, measures: Measures) -> DataCategory {
    DataCategory {
        key: CategoryKey::parse(key).unwrap(),
        name: key.replace('_', " "),
        description: format!("{key} data"),
        sensitivity,
        prohibited: sensitivity == Sensitivity::Special,
        measures,
    }
}

fn vocabulary() -> Vec<DataCategory> {
    let all = Measures {
        pseudonymised: true,
        encrypted_at_rest: true,
        retention_ceiling_days: Some(180),
        dpo_sign_off: true,
    };
    let mut children = category("children", Sensitivity::High, all);
    children.prohibited = true;
    children.name = "Children's data".to_owned();
    vec![
        category("behavioural", Sensitivity::Moderate, all),
        category(
            "device",
            Sensitivity::Low,
            Measures {
                pseudonymised: true,
                ..Measures::default()
            },
        ),
        category("special_category", Sensitivity::Special, all),
        children,
    ]
}

fn names(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

fn deployment(encrypted: Option<&str>) -> DeploymentFacts {
    DeploymentFacts {
        pseudonym_key_version: 2,
        encrypted_at_rest: encrypted.map(str::to_owned),
    }
}

#[test]
fn category_keys_are_snake_case() {
    for good in ["behavioural", "inferred_interests", "page_views", "x1"] {
        assert!(CategoryKey::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "Page",
        "page views",
        "1abc",
        "_x",
        "a-b",
        "a".repeat(65).as_str(),
    ] {
        assert!(CategoryKey::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sensitivity_classes_read_back_and_others_are_refused() {
    for class in Sensitivity::ALL {
        assert_eq!(class.as_str().parse::<Sensitivity>(), Ok(class));
    }
    assert_eq!(
        "secret".parse::<Sensitivity>().unwrap_err().field,
        "sensitivity"
    );
}

/// A change to a category that breaks one rule.
type Change = Box<dyn Fn(&mut DataCategory)>;

#[test]
fn a_category_is_validated_field_by_field() {
    let good = vocabulary().remove(0);
    assert_eq!(good.validate(), Ok(()));
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.name = " ".to_owned()), "name"),
        (Box::new(|c| c.name = "a\u{1b}b".to_owned()), "name"),
        (
            Box::new(|c| c.description = "x".repeat(1001)),
            "description",
        ),
        (
            Box::new(|c| c.measures.retention_ceiling_days = Some(0)),
            "retention_ceiling_days",
        ),
        (
            Box::new(|c| c.measures.retention_ceiling_days = Some(MAX_CEILING_DAYS + 1)),
            "retention_ceiling_days",
        ),
        (
            Box::new(|c| {
                c.sensitivity = Sensitivity::Special;
                c.prohibited = false;
            }),
            "prohibited",
        ),
    ];
    for (change, field) in cases {
        let mut c = good.clone();
        change(&mut c);
        assert_eq!(c.validate().unwrap_err().field, field);
    }
}

#[test]
fn a_design_names_only_permitted_categories_of_the_inventory() {
    let vocabulary = vocabulary();
    assert_eq!(
        check_design_categories(&names(&["behavioural", "device"]), &vocabulary),
        Ok(())
    );
    let free_text =
        check_design_categories(&names(&["device", "favourite colour"]), &vocabulary).unwrap_err();
    assert_eq!(
        free_text.to_string(),
        "data_categories: 'favourite colour' is not in the data inventory"
    );
    let special = check_design_categories(&names(&["special_category"]), &vocabulary).unwrap_err();
    assert_eq!(
        special.to_string(),
        "data_categories: 'special_category' is special-category data (Art. 9): refused for pilots"
    );
    let children = check_design_categories(&names(&["children"]), &vocabulary).unwrap_err();
    assert!(
        children
            .to_string()
            .ends_with("'children' is prohibited for pilots (Children's data): refused for pilots"),
        "{children}"
    );
}

#[test]
fn the_checklist_judges_each_required_measure_with_its_evidence() {
    let categories = names(&["behavioural", "device"]);
    let pilot = PilotFacts {
        data_categories: &categories,
        retention_days: 90,
        design_version: 3,
        sign_off: Some(SignOff {
            by: "dana".to_owned(),
            on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            design_version: 3,
        }),
    };
    let items = checklist(&pilot, &vocabulary(), &deployment(None));
    let lines: Vec<(&str, &str, bool, &str)> = items
        .iter()
        .map(|i| {
            (
                i.category.as_str(),
                i.measure.as_str(),
                i.met,
                i.evidence.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "behavioural",
                "pseudonymised",
                true,
                "pseudonymised: HMAC-SHA256 key v2"
            ),
            (
                "behavioural",
                "encrypted_at_rest",
                false,
                "encrypted at rest: not declared (set PILOTGATE_ENCRYPTED_AT_REST to describe it)"
            ),
            (
                "behavioural",
                "retention_ceiling",
                true,
                "retention 90 days ≤ ceiling 180"
            ),
            (
                "behavioural",
                "dpo_sign_off",
                true,
                "DPO sign-off: approved by dana on 2026-12-01 (design version 3)"
            ),
            (
                "device",
                "pseudonymised",
                true,
                "pseudonymised: HMAC-SHA256 key v2"
            ),
        ]
    );
}

#[test]
fn unmet_measures_say_why() {
    let categories = names(&["behavioural"]);
    let pilot = PilotFacts {
        data_categories: &categories,
        retention_days: 400,
        design_version: 4,
        // An approval of an earlier version is no sign-off of this one.
        sign_off: Some(SignOff {
            by: "dana".to_owned(),
            on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            design_version: 3,
        }),
    };
    let items = checklist(
        &pilot,
        &vocabulary(),
        &deployment(Some("LUKS volume /var/lib")),
    );
    let evidence = |measure: Measure| {
        items
            .iter()
            .find(|i| i.measure == measure)
            .map(|i| (i.met, i.evidence.clone()))
            .unwrap()
    };
    assert_eq!(
        evidence(Measure::EncryptedAtRest),
        (
            true,
            "encrypted at rest: LUKS volume /var/lib (declared by the operator)".to_owned()
        )
    );
    assert_eq!(
        evidence(Measure::RetentionCeiling),
        (false, "retention 400 days > ceiling 180".to_owned())
    );
    assert_eq!(
        evidence(Measure::DpoSignOff),
        (
            false,
            "DPO sign-off: design version 4 is not approved yet".to_owned()
        )
    );
}

#[test]
fn unknown_and_prohibited_categories_are_one_unmet_line_each() {
    let categories = names(&["page views", "special_category"]);
    let pilot = PilotFacts {
        data_categories: &categories,
        retention_days: 30,
        design_version: 1,
        sign_off: None,
    };
    let items = checklist(&pilot, &vocabulary(), &deployment(None));
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.measure == Measure::Permitted && !i.met)
    );
    assert!(items[0].evidence.starts_with("not in the data inventory"));
    assert!(items[1].evidence.contains("Art. 9"));
}

#[test]
fn the_special_category_and_children_stay_prohibited_whatever_an_edit_says() {
    let vocabulary = vocabulary();
    let special = vocabulary[2].clone();
    let children = vocabulary[3].clone();
    assert_eq!(special.validate(), Ok(()));
    assert_eq!(children.validate(), Ok(()));
    let mut lowered = special.clone();
    lowered.sensitivity = Sensitivity::Low;
    lowered.prohibited = false;
    assert_eq!(
        lowered.validate().unwrap_err().to_string(),
        "sensitivity: special-category data (Art. 9) is always of the special class"
    );
    lowered.prohibited = true;
    assert_eq!(lowered.validate().unwrap_err().field, "sensitivity");
    let mut allowed = children.clone();
    allowed.prohibited = false;
    assert_eq!(
        allowed.validate().unwrap_err().to_string(),
        "prohibited: children's data (Art. 8) is always prohibited for pilots"
    );
    allowed.sensitivity = Sensitivity::Low;
    assert_eq!(allowed.validate().unwrap_err().field, "prohibited");
    // Another category may be lowered freely.
    let mut device = vocabulary[1].clone();
    device.prohibited = true;
    assert_eq!(device.validate(), Ok(()));
}

#[test]
fn a_design_may_not_name_the_pinned_categories_whatever_their_rows_say() {
    // Rows edited before the rule existed, or written around it.
    let mut edited = vocabulary();
    for category in &mut edited[2..] {
        category.sensitivity = Sensitivity::Low;
        category.prohibited = false;
    }
    assert!(!edited[2].permitted_for_pilots() && !edited[3].permitted_for_pilots());
    assert!(edited[0].permitted_for_pilots());
    let special = check_design_categories(&names(&["device", "special_category"]), &edited)
        .unwrap_err()
        .to_string();
    assert_eq!(
        special,
        "data_categories: 'special_category' is special-category data (Art. 9): refused for pilots"
    );
    let children = check_design_categories(&names(&["children"]), &edited)
        .unwrap_err()
        .to_string();
    assert!(
        children
            .ends_with("'children' is prohibited for pilots (Children's data): refused for pilots"),
        "{children}"
    );
    // Without their rows, too.
    let without: Vec<DataCategory> = vocabulary().into_iter().take(2).collect();
    assert_eq!(
        check_design_categories(&names(&["children"]), &without)
            .unwrap_err()
            .to_string(),
        "data_categories: 'children' is children's data (Art. 8): refused for pilots"
    );
    assert!(
        check_design_categories(&names(&["special_category"]), &without)
            .unwrap_err()
            .to_string()
            .contains("(Art. 9): refused for pilots")
    );
    // The checklist says the same.
    let categories = names(&["special_category", "children"]);
    let pilot = PilotFacts {
        data_categories: &categories,
        retention_days: 30,
        design_version: 1,
        sign_off: None,
    };
    let items = checklist(&pilot, &edited, &deployment(None));
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.measure == Measure::Permitted && !i.met)
    );
}
