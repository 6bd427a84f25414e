//! The decision a pilot's results justify: `scale`, `do_not_scale`,
//! `keep_running`, `invalid` or `not_decidable`, with every reason spelled out.
//!
//! Rules, per variant against the control, on the primary metric's relative
//! interval: `invalid` when the split (SRM) is imbalanced; `not_decidable`
//! when attrition (withdrawals, objections, erasures) differs between the
//! variants and the Lee bounds of some variant's effect include 0 (with
//! bounds that exclude 0, the rules below go on, the bounds named);
//! `do_not_scale` when the variant is significantly worse, harms a guardrail
//! (a significant increase of a guardrail event, such as refunds or
//! unsubscribes), or — with the planned sample size reached — its interval
//! rules out the pre-registered MDE; `scale` when the interval lies above 0
//! (with several variants, also the Holm-adjusted p-value below alpha) and no
//! guardrail is harmed; otherwise `keep_running`.

use serde::Serialize;

use crate::report::{EffectReport, Report, SrmReport};
use crate::stats::holm;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Scale,
    DoNotScale,
    KeepRunning,
    Invalid,
    /// Differential attrition leaves the sign of the effect open.
    NotDecidable,
}

/// The verdict, the variant it names (for `scale`), and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Verdict,
    pub variant: Option<String>,
    pub reasons: Vec<String>,
}

/// What the decision weighs.
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    pub primary: &'a Report,
    pub guardrails: &'a [Report],
    /// The pre-registered minimum detectable effect, relative.
    pub mde: f64,
    pub planned_per_variant: Option<u64>,
    /// Subjects lost per variant (withdrawn, objected, erased) tested
    /// against the subjects assigned, when any were lost.
    pub withdrawal_imbalance: Option<SrmReport>,
    /// The Lee bounds of the relative effect per variant, when attrition differs.
    pub lee_bounds: &'a [(String, Option<[f64; 2]>)],
}

fn percent(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

/// The guardrail rule: a guardrail event that rises significantly (its
/// relative change's interval lies above 0: more refunds, more complaints)
/// is harmed. The decision and every page that shows a guardrail use this.
pub fn guardrail_harmed(relative: &EffectReport) -> bool {
    relative.ci[0] > 0.0
}

/// Decides. Every branch leaves a reason a marketer and a DPO can read.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let mut reasons = Vec::new();
    let primary = input.primary;
    if let Some(srm) = primary.srm.filter(|s| s.mismatch) {
        reasons.push(format!("sample ratio mismatch (chi-square p = {:.2e}): the split does not follow the weights, so the comparison cannot be trusted", srm.p_value));
    }
    if !reasons.is_empty() {
        return Decision {
            outcome: Verdict::Invalid,
            variant: None,
            reasons,
        };
    }
    if let Some(imbalance) = input.withdrawal_imbalance.filter(|s| s.mismatch) {
        let attrition = format!(
            "attrition differs between variants (p = {:.2e})",
            imbalance.p_value
        );
        let open: Vec<String> = primary
            .comparisons
            .iter()
            .filter_map(|c| {
                let bounds = input
                    .lee_bounds
                    .iter()
                    .find(|(variant, _)| *variant == c.variant)
                    .and_then(|(_, b)| *b);
                match bounds {
                    Some([low, high]) if low > 0.0 || high < 0.0 => None,
                    Some([low, high]) => Some(format!(
                        "{}: the Lee bounds [{}, {}] include 0",
                        c.variant,
                        percent(low),
                        percent(high)
                    )),
                    None => Some(format!("{}: the effect cannot be bounded", c.variant)),
                }
            })
            .collect();
        if !open.is_empty() {
            reasons.push(format!(
                "not decidable: differential attrition: {attrition}, so the subjects kept are not comparable; {}",
                open.join("; ")
            ));
            return Decision {
                outcome: Verdict::NotDecidable,
                variant: None,
                reasons,
            };
        }
        reasons.push(format!(
            "{attrition}, but the Lee bounds of every variant keep the sign of its effect"
        ));
    }
    let holm_adjusted: Option<Vec<f64>> = {
        let p: Option<Vec<f64>> = primary
            .comparisons
            .iter()
            .map(|c| c.relative.as_ref().and_then(|r| r.p_value))
            .collect();
        p.filter(|p| p.len() > 1).and_then(|p| holm(&p).ok())
    };
    let users_of = |variant: &str| {
        primary
            .variants
            .iter()
            .find(|v| v.variant == variant)
            .map_or(0, |v| v.users.unwrap_or(0))
    };
    let control_users = users_of(&primary.control);
    let mut verdicts = Vec::new();
    for (index, comparison) in primary.comparisons.iter().enumerate() {
        let name = &comparison.variant;
        let Some(relative) = &comparison.relative else {
            reasons.push(format!(
                "{name}: the relative lift cannot be computed yet ({})",
                comparison.notes.join("; ")
            ));
            verdicts.push((Verdict::KeepRunning, name, f64::NEG_INFINITY));
            continue;
        };
        let [low, high] = relative.ci;
        let harmed: Vec<String> = input
            .guardrails
            .iter()
            .filter_map(|g| {
                let c = g.comparisons.iter().find(|c| &c.variant == name)?;
                let r = c.relative.as_ref()?;
                guardrail_harmed(r).then(|| {
                    format!(
                        "{} rose by {} [{}, {}]",
                        g.metric,
                        percent(r.estimate),
                        percent(r.ci[0]),
                        percent(r.ci[1])
                    )
                })
            })
            .collect();
        let enough = input
            .planned_per_variant
            .is_none_or(|planned| control_users.min(users_of(name)) >= planned);
        let significant = holm_adjusted
            .as_ref()
            .is_none_or(|adjusted| adjusted[index] < primary.alpha);
        let interval = format!(
            "{} [{}, {}]",
            percent(relative.estimate),
            percent(low),
            percent(high)
        );
        let verdict = if high < 0.0 {
            reasons.push(format!(
                "{name}: {} is significantly worse: {interval}",
                primary.metric
            ));
            Verdict::DoNotScale
        } else if !harmed.is_empty() {
            reasons.push(format!(
                "{name}: a guardrail is harmed: {}",
                harmed.join("; ")
            ));
            Verdict::DoNotScale
        } else if low > 0.0 && significant {
            let versus_mde = if low >= input.mde {
                "at least"
            } else {
                "possibly below"
            };
            reasons.push(format!("{name}: {} lifts by {interval}, above 0 and {versus_mde} the MDE of {}; no guardrail harmed", primary.metric, percent(input.mde)));
            Verdict::Scale
        } else if enough && high < input.mde {
            reasons.push(format!("{name}: with the planned sample reached, {interval} rules out the MDE of {}: the effect is too small to matter", percent(input.mde)));
            Verdict::DoNotScale
        } else {
            let progress = match input.planned_per_variant {
                Some(planned) => format!(
                    "{} of {planned} planned users per variant",
                    control_users.min(users_of(name))
                ),
                None => "no planned sample size".to_owned(),
            };
            let why = if low > 0.0 {
                "not significant after the Holm correction"
            } else {
                "still includes 0"
            };
            reasons.push(format!("{name}: {interval} {why}; {progress}"));
            Verdict::KeepRunning
        };
        verdicts.push((verdict, name, relative.estimate));
    }
    let best_scale = verdicts
        .iter()
        .filter(|(v, _, _)| *v == Verdict::Scale)
        .max_by(|a, b| a.2.total_cmp(&b.2));
    let (outcome, variant) = match best_scale {
        Some((_, name, _)) => (Verdict::Scale, Some((*name).clone())),
        None if !verdicts.is_empty()
            && verdicts.iter().all(|(v, _, _)| *v == Verdict::DoNotScale) =>
        {
            (Verdict::DoNotScale, None)
        }
        None => (Verdict::KeepRunning, None),
    };
    Decision {
        outcome,
        variant,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ComparisonReport, EffectReport, Excluded, VariantReport};

    fn report(
        metric: &str,
        comparisons: Vec<(&str, f64, [f64; 2], f64)>,
        srm_mismatch: bool,
        users: u64,
    ) -> Report {
        let mut variants = vec![VariantReport {
            variant: "control".into(),
            users: Some(users),
            sum: Some(0.0),
            sum_squares: Some(0.0),
            mean: None,
            variance: None,
            theta: None,
            suppressed: false,
        }];
        variants.extend(comparisons.iter().map(|(v, ..)| VariantReport {
            variant: (*v).into(),
            users: Some(users),
            sum: Some(0.0),
            sum_squares: Some(0.0),
            mean: None,
            variance: None,
            theta: None,
            suppressed: false,
        }));
        Report {
            metric: metric.into(),
            kind: crate::pipeline::Outcome::Binary,
            method: crate::report::MethodName::Frequentist,
            control: "control".into(),
            alpha: 0.05,
            variants,
            srm: Some(SrmReport {
                chi2: 0.0,
                p_value: if srm_mismatch { 1e-6 } else { 0.5 },
                mismatch: srm_mismatch,
            }),
            comparisons: comparisons
                .into_iter()
                .map(|(variant, estimate, ci, p)| ComparisonReport {
                    variant: variant.into(),
                    relative: Some(EffectReport {
                        estimate,
                        ci,
                        p_value: Some(p),
                        chance_to_win: None,
                        risk: None,
                    }),
                    absolute: None,
                    notes: vec![],
                    suppressed: false,
                })
                .collect(),
            excluded: Excluded {
                unknown_subject_events: 0,
                multiple_variant_subjects: 0,
            },
            suppressed: false,
        }
    }

    fn decide_on(primary: &Report, guardrails: &[Report], planned: Option<u64>) -> Decision {
        decide(&DecisionInput {
            primary,
            guardrails,
            mde: 0.05,
            planned_per_variant: planned,
            withdrawal_imbalance: None,
            lee_bounds: &[],
        })
    }

    #[test]
    fn every_verdict_with_its_reason() {
        let positive = report(
            "signup",
            vec![("v1", 0.08, [0.02, 0.14], 0.004)],
            false,
            20_000,
        );
        let decision = decide_on(&positive, &[], Some(10_000));
        assert_eq!(
            (decision.outcome, decision.variant.as_deref()),
            (Verdict::Scale, Some("v1"))
        );
        assert!(
            decision.reasons[0].contains("possibly below the MDE"),
            "{:?}",
            decision.reasons
        );

        let worse = report(
            "signup",
            vec![("v1", -0.08, [-0.14, -0.02], 0.004)],
            false,
            20_000,
        );
        assert_eq!(decide_on(&worse, &[], None).outcome, Verdict::DoNotScale);

        let harmful_guardrail = report(
            "unsubscribe",
            vec![("v1", 0.3, [0.1, 0.5], 0.001)],
            false,
            20_000,
        );
        let harmed = decide_on(&positive, std::slice::from_ref(&harmful_guardrail), None);
        assert_eq!(harmed.outcome, Verdict::DoNotScale);
        assert!(
            harmed.reasons[0].contains("unsubscribe rose"),
            "{:?}",
            harmed.reasons
        );

        let flat = report(
            "signup",
            vec![("v1", 0.005, [-0.02, 0.03], 0.6)],
            false,
            20_000,
        );
        assert_eq!(
            decide_on(&flat, &[], Some(10_000)).outcome,
            Verdict::DoNotScale,
            "the planned sample rules out the MDE"
        );
        let early = decide_on(&flat, &[], Some(50_000));
        assert_eq!(early.outcome, Verdict::KeepRunning);
        assert!(
            early.reasons[0].contains("20000 of 50000 planned users"),
            "{:?}",
            early.reasons
        );

        let mismatch = report(
            "signup",
            vec![("v1", 0.08, [0.02, 0.14], 0.004)],
            true,
            20_000,
        );
        let invalid = decide_on(&mismatch, &[], None);
        assert_eq!(invalid.outcome, Verdict::Invalid);
        assert!(invalid.reasons[0].contains("sample ratio mismatch"));
    }

    #[test]
    fn differential_attrition_is_not_decidable_unless_the_lee_bounds_keep_the_sign() {
        let positive = report(
            "signup",
            vec![("v1", 0.08, [0.02, 0.14], 0.004)],
            false,
            20_000,
        );
        let imbalanced = Some(SrmReport {
            chi2: 30.0,
            p_value: 1e-7,
            mismatch: true,
        });
        let with_bounds = |bounds: Option<[f64; 2]>| {
            decide(&DecisionInput {
                primary: &positive,
                guardrails: &[],
                mde: 0.05,
                planned_per_variant: None,
                withdrawal_imbalance: imbalanced,
                lee_bounds: &[("v1".to_owned(), bounds)],
            })
        };
        let open = with_bounds(Some([-0.03, 0.19]));
        assert_eq!(open.outcome, Verdict::NotDecidable);
        assert!(
            open.reasons[0].starts_with("not decidable: differential attrition")
                && open.reasons[0].contains("[-3.00%, +19.00%] include 0"),
            "{:?}",
            open.reasons
        );
        assert_eq!(with_bounds(None).outcome, Verdict::NotDecidable);
        let kept = with_bounds(Some([0.01, 0.15]));
        assert_eq!(
            (kept.outcome, kept.variant.as_deref()),
            (Verdict::Scale, Some("v1"))
        );
        assert!(
            kept.reasons[0].contains("keep the sign"),
            "{:?}",
            kept.reasons
        );
        let balanced = decide(&DecisionInput {
            primary: &positive,
            guardrails: &[],
            mde: 0.05,
            planned_per_variant: None,
            withdrawal_imbalance: Some(SrmReport {
                chi2: 0.1,
                p_value: 0.7,
                mismatch: false,
            }),
            lee_bounds: &[("v1".to_owned(), Some([-0.03, 0.19]))],
        });
        assert_eq!(
            balanced.outcome,
            Verdict::Scale,
            "balanced attrition decides as usual"
        );
    }

    #[test]
    fn with_several_variants_the_holm_correction_decides_significance() {
        // v1 alone would pass at 0.04, but Holm over two variants needs 0.025.
        let two = report(
            "signup",
            vec![
                ("v1", 0.05, [0.001, 0.1], 0.04),
                ("v2", 0.0, [-0.05, 0.05], 0.9),
            ],
            false,
            1_000,
        );
        let decision = decide_on(&two, &[], Some(100_000));
        assert_eq!(decision.outcome, Verdict::KeepRunning);
        assert!(
            decision.reasons[0].contains("Holm"),
            "{:?}",
            decision.reasons
        );
        let strong = report(
            "signup",
            vec![
                ("v1", 0.05, [0.01, 0.1], 0.001),
                ("v2", 0.09, [0.04, 0.14], 0.0001),
            ],
            false,
            1_000,
        );
        let decision = decide_on(&strong, &[], None);
        assert_eq!(
            (decision.outcome, decision.variant.as_deref()),
            (Verdict::Scale, Some("v2")),
            "the larger lift is named"
        );
    }
}
