//! Renders every page from realistic view models and checks what a person
//! (and an attacker) would see: formatted numbers, CSRF fields in every POST
//! form, escaped text and charts that survive odd input.

use std::time::{Duration, Instant};

use pilotgate_dashboards::charts::BandPoint;
use pilotgate_dashboards::*;

const CSRF: &str = "csrf-7f3a9c2e41d8";

fn chrome(title: &str, role: &str, current: &str) -> Chrome {
    let links = [
        ("/ui/experiments", "Experiments"),
        ("/ui/consents", "Consents"),
        ("/ui/audit", "Audit log"),
    ];
    Chrome {
        title: title.to_owned(),
        user: Some(SignedInUser {
            name: "Dana Keller".to_owned(),
            role: role.to_owned(),
        }),
        nav: links
            .iter()
            .map(|(href, label)| NavLink {
                href: (*href).to_owned(),
                label: (*label).to_owned(),
                current: *href == current,
            })
            .collect(),
        csrf_token: CSRF.to_owned(),
    }
}

fn estimate(value: f64, lower: f64, upper: f64) -> Estimate {
    Estimate {
        value,
        lower,
        upper,
    }
}

fn results_page(name: &str) -> ResultsPage {
    let variant = |key: &str, users: u64, conversions: u64, relative: Option<Estimate>| {
        let mean = conversions as f64 / users as f64;
        VariantResult {
            variant: key.to_owned(),
            users: Count::Shown(users),
            conversions: Some(Count::Shown(conversions)),
            mean: Some(mean),
            absolute_uplift: relative
                .map(|e| estimate(e.value * 0.05, e.lower * 0.05, e.upper * 0.05)),
            relative_uplift: relative,
            significance: relative.map(|_| Significance::PValue(0.0021)),
        }
    };
    ResultsPage {
        chrome: chrome("Results", "analyst", "/ui/experiments"),
        experiment_key: "checkout-cta".to_owned(),
        experiment_name: name.to_owned(),
        state: ExperimentState::Running,
        metric: "purchase".to_owned(),
        metric_kind: MetricKind::Binary,
        metric_options: vec![
            MetricOption {
                value: "purchase".to_owned(),
                label: "purchase (primary)".to_owned(),
            },
            MetricOption {
                value: "refund".to_owned(),
                label: "refund (guardrail)".to_owned(),
            },
        ],
        method: Method::Frequentist,
        alpha: 0.05,
        mde: 0.02,
        decision: Decision::Scale,
        decision_reasons: vec![
            "The interval for treatment-b lies above the minimum detectable effect.".to_owned(),
            "No guardrail was harmed.".to_owned(),
        ],
        srm: Some(BalanceCheck {
            p_value: 0.412,
            flagged: false,
        }),
        sequential_srm: Some(BalanceCheck {
            p_value: 1.0,
            flagged: false,
        }),
        withdrawal_balance: Some(BalanceCheck {
            p_value: 0.0004,
            flagged: true,
        }),
        attrition: Attrition {
            variants: vec![
                AttritionRow {
                    variant: "control".to_owned(),
                    assigned: Count::Shown(100_400),
                    withdrawn: Count::Shown(300),
                    objected: Count::Shown(60),
                    erased: Count::Shown(40),
                },
                AttritionRow {
                    variant: "treatment-b".to_owned(),
                    assigned: Count::Shown(100_900),
                    withdrawn: Count::Shown(700),
                    objected: Count::Shown(120),
                    erased: Count::Shown(80),
                },
            ],
            days: vec![("2026-01-05".to_owned(), vec![Some(0.004), None])],
            lee_bounds: vec![LeeRow {
                variant: "treatment-b".to_owned(),
                estimate: Some(0.0342),
                bounds: Ok([-0.0012, 0.0701]),
                trimmed: "0.5% of the variant's kept subjects".to_owned(),
            }],
            refusal_check: Some(BalanceCheck {
                p_value: 0.61,
                flagged: false,
            }),
        },
        withdrawn_excluded: Count::Shown(1_234),
        min_cell: 10,
        suppressed: false,
        power: vec![
            PowerProgress {
                variant: "control".to_owned(),
                users: Count::Shown(100_000),
                planned: 120_000,
            },
            PowerProgress {
                variant: "treatment-b".to_owned(),
                users: Count::Shown(100_000),
                planned: 120_000,
            },
            PowerProgress {
                variant: "treatment-c".to_owned(),
                users: Count::Shown(99_874),
                planned: 120_000,
            },
        ],
        variants: vec![
            variant("control", 100_000, 5_000, None),
            variant(
                "treatment-b",
                100_000,
                5_171,
                Some(estimate(0.0342, 0.0123, 0.0561)),
            ),
            variant(
                "treatment-c",
                99_874,
                4_990,
                Some(estimate(-0.0012, -0.0231, 0.0207)),
            ),
        ],
        cumulative_uplift: [("treatment-b", 0.0342), ("treatment-c", -0.0012)]
            .into_iter()
            .map(|(variant, uplift)| UpliftSeries {
                variant: variant.to_owned(),
                points: (1..=28)
                    .map(|day| {
                        let width = 0.25 / f64::from(day).sqrt();
                        BandPoint {
                            label: format!("2025-03-{day:02}"),
                            estimate: uplift,
                            lower: uplift - width,
                            upper: uplift + width,
                        }
                    })
                    .collect(),
            })
            .collect(),
        guardrails: vec![GuardrailSummary {
            metric: "refund".to_owned(),
            variant: "treatment-b".to_owned(),
            relative_uplift: Some(estimate(0.004, -0.01, 0.018)),
            significance: Some(Significance::PValue(0.58)),
            status: GuardrailStatus::Ok,
        }],
        pilot: PilotPanel {
            owner: "Mia Chen".to_owned(),
            hypothesis: "A clearer call to action sells more".to_owned(),
            purpose: "personalize.content.profiling".to_owned(),
            design_version: 3,
            compliance_href: Some("/ui/experiments/checkout-cta/compliance".to_owned()),
            ..PilotPanel::default()
        },
        alpha_options: vec![0.01, 0.05, 0.1],
        cuped: false,
        lookback_days: 28,
        cuped_note: None,
        raw_data_purged_on: None,
        segment_options: vec!["device_type".to_owned()],
        segment: None,
        segment_table: None,
    }
}

fn compliance_page(can_decide: bool) -> CompliancePage {
    CompliancePage {
        design_version: 3,
        chrome: chrome("Compliance", "compliance", "/ui/experiments"),
        experiment_key: "checkout-cta".to_owned(),
        experiment_name: "Checkout call to action".to_owned(),
        state: ExperimentState::Submitted,
        design: DesignSummary {
            purpose_version: 2,
            allowed_bases: vec!["consent".to_owned()],
            li_assessment: None,
            allows_legitimate_interest: false,
            purpose: "personalize.content.profiling".to_owned(),
            hypothesis: "A clearer button raises purchases.".to_owned(),
            primary_metric: "purchase".to_owned(),
            guardrails: vec!["refund".to_owned()],
            data_categories: vec!["browsing_history".to_owned(), "purchases".to_owned()],
            retention_days: 90,
            variants: vec![
                VariantWeight {
                    key: "control".to_owned(),
                    weight: 1.0,
                },
                VariantWeight {
                    key: "treatment-b".to_owned(),
                    weight: 1.0,
                },
            ],
            coverage: 0.8,
            mde: 0.02,
            alpha: 0.05,
            power: 0.8,
            planned_users: Some(240_000),
        },
        approvals: vec![ApprovalRecord {
            by: "Sam Ortiz".to_owned(),
            at: "2025-03-01 09:30 UTC".to_owned(),
            decision: ApprovalDecision::Denied,
            comment: "Retention too long; please shorten to 90 days.".to_owned(),
        }],
        eligibility: vec![
            EligibilityRow {
                variant: "control".to_owned(),
                basis: "consent".to_owned(),
                notice_version: Some(3),
                subjects: Count::Shown(49_512),
            },
            EligibilityRow {
                variant: "treatment-b".to_owned(),
                basis: "consent".to_owned(),
                notice_version: Some(3),
                subjects: Count::Shown(50_488),
            },
        ],
        refusals: CountMatrix::from_cells([
            ("2025-03-01", "withdrawn", 12),
            ("2025-03-01", "stale_notice", 3_400),
            ("2025-03-02", "expired", 7),
        ]),
        withdrawals: vec![
            VariantCount {
                variant: "control".to_owned(),
                count: Count::Shown(610),
            },
            VariantCount {
                variant: "treatment-b".to_owned(),
                count: Count::Shown(624),
            },
        ],
        erasures: Count::Shown(17),
        assigned_total: Count::Shown(100_000),
        next_purge: "2025-06-01 (90 days after the stop)".to_owned(),
        purged_so_far: "nothing yet".to_owned(),
        break_glass: Vec::new(),
        exports: Vec::new(),
        audit_trail: vec![AuditTrailEntry {
            at: "2025-03-01 09:30 UTC".to_owned(),
            actor: "Sam Ortiz".to_owned(),
            action: "experiment.deny".to_owned(),
            summary: "Denied: retention too long.".to_owned(),
        }],
        can_decide,
        checklist: vec![
            ChecklistRow {
                category: "behavioural".to_owned(),
                measure: "retention_ceiling".to_owned(),
                met: true,
                evidence: "retention 90 days ≤ ceiling 180".to_owned(),
            },
            ChecklistRow {
                category: "behavioural".to_owned(),
                measure: "encrypted_at_rest".to_owned(),
                met: false,
                evidence: "encrypted at rest: not declared".to_owned(),
            },
        ],
    }
}

fn experiments_page() -> ExperimentsPage {
    ExperimentsPage {
        chrome: chrome("Experiments", "marketer", "/ui/experiments"),
        previous_page: None,
        next_page: Some(2),
        can_open_results: true,
        can_open_compliance: false,
        can_create: true,
        rows: vec![
            ExperimentRow {
                key: "checkout-cta".to_owned(),
                name: "Checkout call to action".to_owned(),
                state: ExperimentState::Running,
                purpose: "personalize.content.profiling".to_owned(),
                owner: "Mia Chen".to_owned(),
                approval: Some(Approval {
                    by: "Sam Ortiz".to_owned(),
                    at: "2025-03-02 11:00 UTC".to_owned(),
                }),
                users_so_far: Count::Shown(12_345),
                users_planned: Some(20_000),
            },
            ExperimentRow {
                key: "home-hero".to_owned(),
                name: "Home hero banner".to_owned(),
                state: ExperimentState::Draft,
                purpose: "personalize.content.profiling".to_owned(),
                owner: "Mia Chen".to_owned(),
                approval: None,
                users_so_far: Count::Shown(0),
                users_planned: None,
            },
        ],
    }
}

fn consents_page() -> ConsentsPage {
    ConsentsPage {
        chrome: chrome("Consents", "compliance", "/ui/consents"),
        purposes: vec![PurposeConsents {
            purpose: "personalize.content.profiling".to_owned(),
            allowed_bases: vec!["consent".to_owned()],
            min_notice_version: 3,
            counts: CountMatrix::from_cells([
                ("consent", "granted", 120_345),
                ("consent", "withdrawn", 2_101),
                ("consent", "expired", 880),
            ]),
            stale_notice: Count::Shown(4_321),
            expired: Count::Shown(880),
            reconsent: vec![ReconsentRow {
                purpose: "personalize.content.profiling".to_owned(),
                day: "2025-03-02".to_owned(),
                expired: Count::Shown(880),
                stale_notice: Count::Shown(4_321),
                asked: Count::Shown(12),
                links_issued: Count::Shown(10),
                came_back: Count::Suppressed,
            }],
        }],
        reconsent_days: 14,
        reconsent_csv: "/ui/consents/reconsent.csv".to_owned(),
    }
}

fn audit_page(chain: ChainStatus) -> AuditPage {
    AuditPage {
        chrome: chrome("Audit log", "compliance", "/ui/audit"),
        chain,
        entries: vec![AuditRow {
            id: 150,
            at: "2025-03-02 11:00 UTC".to_owned(),
            actor: "Sam Ortiz".to_owned(),
            action: "experiment.approve".to_owned(),
            target: "experiment:checkout-cta".to_owned(),
            hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
            summary: "approved pilot checkout-cta (design version 3): 'ok'".to_owned(),
            details: "{\n  \"comment\": \"ok\"\n}".to_owned(),
        }],
        older_before: Some(101),
        newer_after: Some(150),
        filter: AuditFilterFields::default(),
    }
}

/// Every `<form method="post">` in `html` carries the hidden CSRF field, and
/// the token appears nowhere else. Returns how many POST forms there were.
fn assert_post_forms_carry_csrf(html: &str) -> usize {
    let field = format!("<input type=\"hidden\" name=\"csrf\" value=\"{CSRF}\">");
    let mut post_forms = 0;
    for form in html.split("<form").skip(1) {
        let body = form.split("</form>").next().unwrap_or_default();
        if body.contains("method=\"post\"") {
            post_forms += 1;
            assert!(
                body.contains(&field),
                "a POST form lacks the CSRF field: {body}"
            );
        }
    }
    assert_eq!(
        html.matches(CSRF).count(),
        post_forms,
        "the token leaks outside forms"
    );
    post_forms
}

/// The parts every page shares: a viewport, the user and a sign-out form.
fn assert_common_frame(html: &str) {
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("Dana Keller"));
    assert!(html.contains("action=\"/ui/sign-out\""));
    assert!(html.contains("aria-current=\"page\""));
}

#[test]
fn results_page_shows_formatted_numbers_and_charts() {
    let html = results_page("Checkout call to action").render().unwrap();
    assert_common_frame(&html);
    assert!(html.contains("100,000"));
    assert!(html.contains("99,874"));
    assert!(html.contains("+3.42%"));
    assert!(html.contains("[1.23%, 5.61%]"));
    assert!(
        html.contains("\u{2212}0.120%"),
        "a negative uplift uses a true minus"
    );
    assert!(
        html.contains("0.00210"),
        "p-values show three significant digits"
    );
    assert!(html.contains("Decision: Scale"));
    assert!(html.contains("Sample ratio OK (p = 0.412)"));
    assert!(html.contains("Attrition imbalance (p &#60; 0.001)"));
    assert!(html.contains("Sample ratio OK (anytime-valid)"));
    assert!(html.contains("Refusals independent of the variant (p = 0.610)"));
    assert!(
        html.contains(
            "<td class=\"num\">+3.42%</td><td class=\"num\">[\u{2212}0.120%, +7.01%]</td>"
        ),
        "the estimate beside its Lee bounds"
    );
    assert!(html.contains("<th scope=\"row\">2026-01-05</th><td class=\"num\">0.400%</td>"));
    assert!(html.contains("1,234 withdrawn subjects were excluded"));
    assert!(html.contains("100,000 of 120,000 (83.3%)"));
    assert!(html.contains("95% confidence interval"));
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "a forest plot and a cumulative chart per treatment"
    );
    assert!(
        html.contains("Cumulative relative uplift of purchase for treatment-c by assignment day")
    );
    assert!(
        html.contains("stroke-dasharray"),
        "the MDE is marked with dashed lines"
    );
    assert!(html.contains("<select id=\"method\" name=\"method\">"));
    assert!(html.contains("<option value=\"frequentist\" selected>"));
    assert!(html.contains("<option value=\"purchase\" selected>"));
    assert!(html.contains("method=\"get\" action=\"/ui/experiments/checkout-cta\""));
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
}

#[test]
fn bayesian_results_show_the_chance_to_win() {
    let mut page = results_page("Checkout call to action");
    page.method = Method::Bayesian;
    for row in page
        .variants
        .iter_mut()
        .filter(|row| row.significance.is_some())
    {
        row.significance = Some(Significance::ChanceToWin(0.973));
    }
    let html = page.render().unwrap();
    assert!(html.contains("Chance to win"));
    assert!(html.contains("97.3%"));
    assert!(html.contains("credible interval"));
    assert!(html.contains("<option value=\"bayesian\" selected>"));
}

#[test]
fn html_in_names_is_escaped_everywhere() {
    let mut page = results_page("<script>alert(1)</script>");
    page.metric = "<b>purchase</b>".to_owned();
    page.variants[1].variant = "<img src=x onerror=alert(1)>".to_owned();
    let html = page.render().unwrap();
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>purchase"));
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "SVG text is escaped too"
    );

    let mut list = experiments_page();
    list.rows[0].name = "<script>x</script>".to_owned();
    assert!(!list.render().unwrap().contains("<script>"));
}

#[test]
fn results_render_quickly() {
    let page = results_page("Checkout call to action");
    let started = Instant::now();
    let html = page.render().unwrap();
    let took = started.elapsed();
    assert!(html.len() > 1_000);
    assert!(took < Duration::from_secs(1), "rendering took {took:?}");
}

#[test]
fn degenerate_results_still_render() {
    let mut page = results_page("Empty pilot");
    page.variants.truncate(1);
    page.cumulative_uplift.clear();
    page.guardrails.clear();
    page.srm = Some(BalanceCheck {
        p_value: f64::NAN,
        flagged: false,
    });
    page.mde = f64::NAN;
    let html = page.render().unwrap();
    assert!(html.contains("No treatment variants to compare yet"));
    assert!(html.contains("No data over time yet"));
    assert!(html.contains("no guardrail metrics"));
    assert!(html.contains("Sample ratio OK (p = n/a)"));

    page.cumulative_uplift = vec![UpliftSeries {
        variant: "treatment-b".to_owned(),
        points: vec![BandPoint {
            label: "2025-03-01".to_owned(),
            estimate: 0.01,
            lower: f64::NAN,
            upper: f64::INFINITY,
        }],
    }];
    page.variants = results_page("x").variants;
    page.variants[1].relative_uplift = Some(estimate(f64::NAN, f64::NAN, f64::NAN));
    let html = page.render().unwrap();
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(!html.contains("NaN"));
}

#[test]
fn experiments_list_shows_states_progress_and_links() {
    let html = experiments_page().render().unwrap();
    assert_common_frame(&html);
    assert!(html.contains("<caption>2 experiments</caption>"));
    assert!(html.contains("12,345 of 20,000 (61.7%)"));
    assert!(html.contains("<progress max=\"100\" value=\"61.7\""));
    assert!(html.contains("badge tone-active\">running<"));
    assert!(html.contains("badge tone-neutral\">draft<"));
    assert!(html.contains("not approved"));
    assert!(html.contains("Sam Ortiz"));
    assert!(html.contains("href=\"/ui/experiments/checkout-cta\""));
    assert!(
        html.contains("href=\"/ui/experiments/new\""),
        "a marketer may design"
    );
    assert!(
        !html.contains("/compliance\""),
        "no compliance link for a role that cannot open it"
    );
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
    let mut compliance = experiments_page();
    compliance.can_open_compliance = true;
    compliance.can_create = false;
    let html = compliance.render().unwrap();
    assert!(html.contains("href=\"/ui/experiments/checkout-cta/compliance\""));
    assert!(!html.contains("/ui/experiments/new"));
}

fn design_page() -> DesignPage {
    DesignPage {
        chrome: chrome("Design a pilot", "marketer", "/ui/experiments"),
        action: "/ui/experiments/new".to_owned(),
        editing: None,
        state_note: None,
        fields: DesignFields {
            name: "<script>alert(1)</script>".to_owned(),
            variants: vec![
                ("control".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
            ],
            guardrails: vec![("refund".to_owned(), "sum".to_owned())],
            purpose: "personalize.content".to_owned(),
            primary_kind: "binary".to_owned(),
            mde: "ten".to_owned(),
            ..DesignFields::default()
        },
        purposes: vec![PurposeOption {
            key: "personalize.content".to_owned(),
            allowed_bases: "consent".to_owned(),
            min_notice_version: 2,
        }],
        categories: vec![CategoryOption {
            key: "orders".to_owned(),
            name: "Orders".to_owned(),
            sensitivity: "moderate".to_owned(),
        }],
        segment_options: vec![SegmentOption {
            key: "device_type".to_owned(),
            description: "The kind of device.".to_owned(),
            values: "desktop, mobile".to_owned(),
            category: Some("device".to_owned()),
        }],
        errors: [("mde".to_owned(), "must be a number".to_owned())].into(),
        general_error: None,
        plan: Some(PlanSummary {
            known: Count::Shown(1_000),
            eligible: Count::Shown(620),
            ineligible: vec![
                ("denied".to_owned(), Count::Shown(300)),
                ("expired".to_owned(), Count::Shown(80)),
            ],
            traffic: "1,000 expected visitors a day × 62.0% eligible × the coverage".to_owned(),
            daily_enrolled: 620.0,
            needed_per_variant: Some(14_751),
            days_needed: Some(47.58),
            detectable: vec![
                (7, 2170.0, Some(0.26)),
                (14, 4340.0, Some(0.18)),
                (28, 8680.0, None),
            ],
        }),
        cancel_href: "/ui/experiments".to_owned(),
    }
}

#[test]
fn the_design_form_keeps_values_marks_refusals_and_shows_the_plan() {
    let html = design_page().render().unwrap();
    assert_common_frame(&html);
    assert_eq!(assert_post_forms_carry_csrf(&html), 2);
    assert!(html.contains("id=\"mde-error\">must be a number</p>"));
    assert!(html.contains("id=\"mde\" name=\"mde\" inputmode=\"decimal\" value=\"ten\" aria-describedby=\"mde-error\" aria-invalid=\"true\""));
    assert!(!html.contains("<script>alert(1)"), "typed text is escaped");
    assert_eq!(html.matches("name=\"variant_key\"").count(), 2);
    assert!(html.contains("value=\"remove_variant_1\""));
    assert!(html.contains("<option value=\"sum\" selected>sum</option>"));
    assert!(html.contains("<option value=\"personalize.content\" selected>"));
    assert!(html.contains("name=\"data_categories\" value=\"orders\">"));
    assert!(html.contains("<strong>48 days</strong>"));
    assert!(html.contains("62.0% (620 of 1,000)"));
    assert!(html.contains("<th scope=\"row\">denied</th><td class=\"num\">300</td>"));
}

#[test]
fn the_pilot_page_shows_the_decision_buttons_and_an_empty_state() {
    let mut page = results_page("Checkout");
    page.pilot.actions = vec![PilotAction {
        label: "Start".to_owned(),
        href: "/ui/experiments/checkout-cta/start".to_owned(),
    }];
    page.pilot.decision = Some(DecisionNote {
        approved: false,
        by: "Dana".to_owned(),
        at: "2025-03-02 11:00 UTC".to_owned(),
        comment: "Too long a retention <b>".to_owned(),
        design_version: 2,
    });
    let html = page.render().unwrap();
    assert!(html.contains("Denied by Dana on 2025-03-02 11:00 UTC (design version 2)"));
    assert!(
        html.contains("Too long a retention &#60;b&#62;")
            || html.contains("Too long a retention &lt;b&gt;")
    );
    assert!(html.contains("href=\"/ui/experiments/checkout-cta/start\""));
    assert!(html.contains("results.csv?metric="));
    page.pilot.empty = Some("Nobody is assigned before the pilot runs.".to_owned());
    let html = page.render().unwrap();
    assert!(
        html.contains("No results yet")
            && html.contains("Nobody is assigned before the pilot runs.")
    );
    assert!(!html.contains("Results per variant"));
}

#[test]
fn the_memo_is_one_printable_page_with_the_chain_head() {
    let memo = MemoPage {
        chrome: Chrome::anonymous("Memo", ""),
        results: results_page("Checkout"),
        compliance: compliance_page(false),
        printed_at: "2025-03-03 09:00 UTC".to_owned(),
        audit_entries: 12_345,
        audit_hash: "ab".repeat(32),
        segment_tables: Vec::new(),
    };
    let html = memo.render().unwrap();
    assert!(html.contains("@media print"));
    assert!(html.contains(&format!(
        "<code id=\"audit-hash\">{}</code>",
        "ab".repeat(32)
    )));
    assert!(html.contains("<dd id=\"audit-entries\">12,345</dd>"));
    assert!(html.contains("+3.42%"), "the uplift of the results page");
    assert!(html.contains("Data-protection officer"));
    assert_eq!(assert_post_forms_carry_csrf(&html), 0);
}

#[test]
fn a_confirmation_page_posts_the_version_it_showed() {
    let page = ConfirmPage {
        chrome: chrome("Stop the pilot?", "marketer", "/ui/experiments"),
        experiment_name: "Checkout".to_owned(),
        explanation: "No one else will be assigned.".to_owned(),
        design_version: 4,
        action: "/ui/experiments/checkout-cta/stop".to_owned(),
        button: "Stop the pilot".to_owned(),
        irreversible: true,
        back_href: "/ui/experiments/checkout-cta".to_owned(),
    };
    let html = page.render().unwrap();
    assert_eq!(assert_post_forms_carry_csrf(&html), 2);
    assert!(html.contains("name=\"design_version\" value=\"4\""));
    assert!(html.contains("class=\"danger\">Stop the pilot</button>"));
}

#[test]
fn compliance_page_shows_the_record_and_decides_only_when_allowed() {
    let html = compliance_page(true).render().unwrap();
    assert_common_frame(&html);
    assert!(html.contains("personalize.content.profiling"));
    assert!(html.contains("control (50.0%), treatment-b (50.0%)"));
    assert!(html.contains("80.0% of eligible traffic"));
    assert!(html.contains("240,000"));
    assert!(html.contains("0.05 / 80.0%"));
    assert!(html.contains("49,512"));
    assert!(html.contains("100,000 in total"));
    assert!(html.contains("3,400"));
    assert!(html.contains("Refused assignments per reason"));
    assert!(html.contains("Refused assignments per day, stacked by reason"));
    assert!(html.contains("624"));
    assert!(html.contains("Erased subjects: <strong>17</strong>"));
    assert!(html.contains("experiment.deny"));
    assert!(html.contains("href=\"/ui/experiments/checkout-cta/compliance.csv\""));
    assert!(html.contains("Download eligibility report (CSV)"));
    assert!(html.contains("action=\"/ui/experiments/checkout-cta/approve\""));
    assert!(html.contains("action=\"/ui/experiments/checkout-cta/deny\""));
    assert!(html.contains("<label for=\"approve-comment\">"));
    assert_eq!(assert_post_forms_carry_csrf(&html), 3);
    assert!(html.contains("Risk checklist"));
    assert!(html.contains("retention 90 days ≤ ceiling 180"));
    assert!(html.contains("1 required measure(s) not met"));
    assert!(
        html.contains(
            "Not met: behavioural: encrypted at rest: not declared. You may still approve"
        ),
        "the approval form shows the unmet measure"
    );

    let html = compliance_page(false).render().unwrap();
    assert!(!html.contains("/approve\""));
    assert!(!html.contains("/deny\""));
    assert!(!html.contains("<textarea"));
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
}

#[test]
fn eligibility_csv_matches_the_compliance_table() {
    let page = compliance_page(false);
    let csv = eligibility_csv(&page.eligibility);
    assert_eq!(
        csv,
        "variant,basis,notice_version,subjects\r\ncontrol,consent,3,49512\r\ntreatment-b,consent,3,50488\r\n"
    );
}

#[test]
fn consent_overview_counts_bases_statuses_and_reconsent() {
    let html = consents_page().render().unwrap();
    assert_common_frame(&html);
    assert!(html.contains("120,345"));
    assert!(html.contains("123,326"), "the grand total adds up");
    assert!(html.contains("4,321 below notice v3"));
    assert!(html.contains("880 expired"));
    assert!(html.contains(
        "<caption>Subjects per basis and status for personalize.content.profiling</caption>"
    ));
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
}

#[test]
fn audit_log_shows_the_chain_status_and_pages() {
    let html = audit_page(ChainStatus::Valid { entries: 12_034 })
        .render()
        .unwrap();
    assert_common_frame(&html);
    assert!(html.contains("valid with 12,034 entries"));
    assert!(html.contains("<code>9f86d081884c</code>"));
    assert!(
        !html.contains("9f86d081884c7"),
        "only the short hash is shown"
    );
    assert!(html.contains("href=\"/ui/audit?before=101\""));
    assert!(html.contains("href=\"/ui/audit?after=150\""));
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);

    assert!(
        html.contains("approved pilot checkout-cta (design version 3): &#39;ok&#39;")
            || html.contains("approved pilot checkout-cta (design version 3): &#x27;ok&#x27;"),
        "{html}"
    );
    assert!(html.contains("<details><summary>Details</summary>"));

    let mut filtered = audit_page(ChainStatus::Valid { entries: 3 });
    filtered.filter = AuditFilterFields {
        actor: "Sam Ortiz".to_owned(),
        action: String::new(),
        target: "experiment:a&b".to_owned(),
    };
    let html = filtered.render().unwrap();
    assert!(
        html.contains(
            "href=\"/ui/audit?before=101&#38;actor=Sam%20Ortiz&#38;target=experiment%3Aa%26b\""
        ),
        "the paging links keep the filters: {html}"
    );
    assert!(
        html.contains("value=\"experiment:a&#38;b\""),
        "the form shows them"
    );

    let html = audit_page(ChainStatus::Broken { first_bad_id: 42 })
        .render()
        .unwrap();
    assert!(html.contains("broken at entry 42"));
    assert!(html.contains("tone-negative"));
}

#[test]
fn sign_in_page_has_a_labelled_password_field_and_escapes_errors() {
    let page = SignInPage {
        chrome: Chrome::anonymous("Sign in", CSRF),
        error: Some("That token is <not> valid.".to_owned()),
    };
    let html = page.render().unwrap();
    assert!(html.contains("<label for=\"token\">"));
    assert!(html.contains("type=\"password\" id=\"token\" name=\"token\""));
    assert!(html.contains("method=\"post\" action=\"/ui/sign-in\""));
    assert!(html.contains("That token is &#60;not&#62; valid."));
    assert!(
        !html.contains("/ui/sign-out"),
        "no sign-out before signing in"
    );
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
}

#[test]
fn error_pages_name_the_status() {
    let html = ErrorPage::forbidden(chrome("Forbidden", "analyst", ""))
        .render()
        .unwrap();
    assert!(html.contains("403 · Forbidden"));
    assert!(html.contains("Your role may not see this page."));
    assert_eq!(assert_post_forms_carry_csrf(&html), 1);
    let html = ErrorPage::not_found(chrome("Not found", "analyst", ""))
        .render()
        .unwrap();
    assert!(html.contains("404 · Not found"));
}

fn subjects_page(person: bool) -> SubjectsPage {
    let current = "a1".repeat(32);
    SubjectsPage {
        chrome: chrome("Subjects", "compliance", "/ui/subjects"),
        person: person.then(|| PersonView {
            subject: current.clone(),
            key_version: 2,
            looked_up_at: "2025-03-02 11:00 UTC".to_owned(),
            pseudonyms: vec![
                PseudonymRow {
                    subject: current.clone(),
                    key_version: 2,
                },
                PseudonymRow {
                    subject: "b2".repeat(32),
                    key_version: 1,
                },
            ],
            erased: false,
            current: vec![PurposeStateRow {
                purpose: "personalize.content".to_owned(),
                in_force: "consent: withdrawn".to_owned(),
                eligible: false,
                reason: "withdrawn".to_owned(),
            }],
            ledger: vec![PurposeHistory {
                purpose: "personalize.content".to_owned(),
                records: vec![LedgerRow {
                    id: 7,
                    key_version: 1,
                    basis: "consent".to_owned(),
                    status: "granted".to_owned(),
                    notice: "pn v3".to_owned(),
                    source: "app (tap)".to_owned(),
                    collected_at: "2025-03-01 10:00 UTC".to_owned(),
                    effective_from: "2025-03-01 10:00 UTC".to_owned(),
                    expires_at: String::new(),
                    recorded_by: "ingest".to_owned(),
                }],
            }],
            assignments: vec![AssignmentRow {
                experiment: "hero".to_owned(),
                variant: "v1".to_owned(),
                key_version: 1,
                basis: "consent".to_owned(),
                consent_record: "7".to_owned(),
                notice_version: "v3".to_owned(),
                decided_at: "2025-03-01 11:00 UTC".to_owned(),
                withdrawn_at: "2025-03-02 09:00 UTC".to_owned(),
                segments: "device_type=mobile".to_owned(),
            }],
            events: vec![EventCountRow {
                experiment: "hero".to_owned(),
                key_version: 1,
                events: 1_340,
            }],
            erasures: Vec::new(),
        }),
    }
}

#[test]
fn subject_desk_takes_the_id_in_a_post_body_and_shows_the_proof() {
    let html = subjects_page(false).render().unwrap();
    assert!(html.contains("action=\"/ui/sign-out\""));
    assert!(html.contains("name=\"user_id\""));
    assert!(html.contains("autocomplete=\"off\""));
    let input = html.split("name=\"user_id\"").nth(1).unwrap();
    let input = input.split('>').next().unwrap();
    assert!(!input.contains("value="), "the id field is never filled in");
    assert_eq!(assert_post_forms_carry_csrf(&html), 2);

    let html = subjects_page(true).render().unwrap();
    assert!(
        html.contains(&"b2".repeat(32)),
        "every key version's pseudonym"
    );
    assert!(html.contains("1,340"));
    assert!(html.contains("pn v3"));
    assert!(html.contains("Download what is held (JSON)"));
    assert!(html.contains("Erase this person"));
    assert!(html.contains("<code>withdrawn</code>"));
    // Lookup, download and erase, plus sign-out.
    assert_eq!(assert_post_forms_carry_csrf(&html), 4);
}

fn segment_table() -> SegmentTable {
    let row =
        |value: Option<&str>, variant: &str, p: Option<f64>, adjusted: Option<f64>| SegmentRow {
            value: value.map(str::to_owned),
            variant: variant.to_owned(),
            users: Some(1_200),
            mean: Some(0.1),
            relative_uplift: p.map(|_| Estimate {
                value: 0.05,
                lower: -0.01,
                upper: 0.11,
            }),
            p_value: p,
            adjusted_p_value: adjusted,
            note: None,
        };
    SegmentTable {
        segment: "device_type".to_owned(),
        correction: "benjamini_hochberg".to_owned(),
        adjusted: true,
        family_size: 2,
        binary: true,
        rows: vec![
            row(Some("mobile"), "control", None, None),
            row(Some("mobile"), "b", Some(0.0123), Some(0.0246)),
            SegmentRow {
                note: Some("a variant has nobody".to_owned()),
                ..row(None, "", None, None)
            },
        ],
    }
}

#[test]
fn the_results_page_shows_the_chosen_segment_with_adjusted_p_values_and_keeps_it_in_downloads() {
    let mut page = results_page("Checkout");
    page.segment = Some("device_type".to_owned());
    page.segment_table = Some(segment_table());
    let html = page.render().unwrap();
    assert!(
        html.contains("<option value=\"device_type\" selected>"),
        "the selector keeps the choice"
    );
    assert!(html.contains("Per segment · device_type"));
    assert!(html.contains("Benjamini–Hochberg across 2 comparisons"));
    assert!(
        html.contains("(not sent)"),
        "the people without the attribute have a row"
    );
    assert!(html.contains("a variant has nobody"));
    assert!(
        html.contains("segment=device_type"),
        "downloads carry the segment"
    );
    assert!(html.contains(&pilotgate_dashboards::format::p_value(0.0246)));
}

#[test]
fn the_memo_shows_every_pre_registered_segment() {
    let memo = MemoPage {
        chrome: Chrome::anonymous("Memo", ""),
        results: results_page("Checkout"),
        compliance: compliance_page(false),
        printed_at: "2025-03-03 09:00 UTC".to_owned(),
        audit_entries: 1,
        audit_hash: "ab".repeat(32),
        segment_tables: vec![segment_table()],
    };
    let html = memo.render().unwrap();
    assert!(html.contains("Pre-registered segments"));
    assert!(html.contains("Adjusted p-value"));
    assert!(html.contains(&pilotgate_dashboards::format::p_value(0.0246)));
}
