//! The checks of the demo: what the server must answer each visit, given
//! the simulated population, and the results and eligibility report read at
//! the end against the simulation. Every difference is a mismatch in the
//! report.

use pilotgate_domain::eligibility::Reason;
use serde_json::Value;

use super::super::population::WITHDRAW_MINUTE;
use super::super::summary::Estimate;
use super::{ERASE_MINUTE, MISMATCHES_SHOWN, Pilot, TREATMENT, VISIT_MINUTE, Visit};

impl Pilot<'_> {
    pub(super) fn mismatch(&mut self, what: String) {
        self.report.mismatches += 1;
        if self.report.mismatch_examples.len() < MISMATCHES_SHOWN {
            self.report.mismatch_examples.push(what);
        }
    }

    /// Why the server must refuse `person` at `minute` of `day`, or `None`
    /// when it must accept: the inventory, then a withdrawal or objection
    /// during the pilot, then the erasure.
    pub(super) fn expected_refusal(
        &self,
        person: usize,
        day: u32,
        minute: u32,
    ) -> Option<&'static str> {
        let who = &self.people[person];
        if let Some(reason) = who.standing.refusal() {
            return Some(reason);
        }
        if self.erased == Some(person) && (day, minute) >= (self.options.days - 1, ERASE_MINUTE) {
            return Some("erased");
        }
        match who.leaving_day(self.options.days) {
            Some(leaving) if (day, minute) >= (leaving, WITHDRAW_MINUTE) => {
                Some(who.standing.leaving_status())
            }
            _ => None,
        }
    }

    pub(super) fn check_visit(&mut self, person: usize, visit: Visit, day: u32, answer: &Value) {
        let expected = self.expected_refusal(person, day, VISIT_MINUTE);
        let variant = answer["variant"].as_str().map(str::to_owned);
        let reason = answer["reason"].as_str().unwrap_or("");
        let ask_again = answer["ask_again"].as_bool();
        if let Some(expected) = expected {
            *self
                .report
                .expected_refusals
                .entry(expected.to_owned())
                .or_default() += 1;
        }
        match (expected, variant) {
            (Some(expected), None) => {
                // The shop learns only that the person is not eligible, and
                // whether it may ask for consent again (the reason is counted
                // for the compliance report, checked in `check_refusal_counts`).
                let may_ask = Reason::ALL
                    .iter()
                    .find(|r| r.as_str() == expected)
                    .is_some_and(|r| r.may_ask_again());
                if reason != "not_eligible" || ask_again != Some(may_ask) {
                    self.mismatch(format!(
                        "day {}: refused for {reason} (ask again: {ask_again:?}), expected {expected}",
                        day + 1
                    ));
                }
            }
            (Some(expected), Some(variant)) => {
                self.report.ineligible_assigned += 1;
                self.mismatch(format!(
                    "day {}: assigned to {variant} although {expected}",
                    day + 1
                ));
            }
            (None, Some(variant)) => match visit {
                Visit::First => {
                    *self.report.assigned.entry(variant.clone()).or_default() += 1;
                    self.variants[person] = Some(variant);
                }
                Visit::Return => {
                    if self.variants[person].as_deref() != Some(variant.as_str()) {
                        self.mismatch(format!(
                            "day {}: a returning subject changed variant",
                            day + 1
                        ));
                    }
                }
            },
            (None, None) => {
                self.mismatch(format!(
                    "day {}: an eligible subject was refused ({reason})",
                    day + 1
                ));
            }
        }
    }

    /// The results as the analyst reads them, the eligibility report as the
    /// compliance officer reads it, and their check against the simulation.
    pub(super) async fn read_results(&mut self) -> Result<(), String> {
        let path = format!("/api/v1/experiments/{}", self.key);
        let results = self
            .api
            .get(
                &format!("{path}/results?metric=purchase"),
                &self.tokens.analyst,
            )
            .await?;
        let comparison = results["comparisons"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["variant"] == TREATMENT))
            .ok_or("the results have no comparison of the treatment")?;
        let relative = &comparison["relative"];
        let number = |v: &Value| v.as_f64().ok_or("the results miss a number");
        self.report.estimate = Some(Estimate {
            lift: number(&relative["estimate"])?,
            low: number(&relative["ci"][0])?,
            high: number(&relative["ci"][1])?,
            p_value: relative["p_value"].as_f64(),
        });
        self.report.decision = results["decision"]["outcome"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        self.report.decision_reasons = results["decision"]["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        let mut users = 0;
        for variant in results["variants"].as_array().into_iter().flatten() {
            match variant["users"].as_u64() {
                Some(n) => users += n,
                None => self.withheld(format!("users of {}", variant["variant"])),
            }
        }
        self.report.analysed_users = users;

        let eligibility = self
            .api
            .get(&format!("{path}/eligibility"), &self.tokens.compliance)
            .await?;
        for cohort in eligibility["cohorts"].as_array().into_iter().flatten() {
            let basis = cohort["basis"].as_str().unwrap_or("?").to_owned();
            match cohort["subjects"].as_u64() {
                Some(n) => *self.report.assigned_by_basis.entry(basis).or_default() += n,
                None => self.withheld(format!("a {basis} cohort")),
            }
        }
        for refusal in eligibility["refusals"].as_array().into_iter().flatten() {
            if refusal["stage"] == "assign" {
                let reason = refusal["reason"].as_str().unwrap_or("?").to_owned();
                match refusal["count"].as_u64() {
                    Some(n) => {
                        self.report.refusals.insert(reason, n);
                    }
                    None => {
                        self.report.expected_refusals.remove(&reason);
                        self.withheld(format!("refusals for {reason}"));
                    }
                }
            }
        }
        for (variant, counts) in eligibility["assignments"].as_object().into_iter().flatten() {
            match counts["withdrawn"].as_u64() {
                Some(n) => {
                    self.report.withdrawn_by_variant.insert(variant.clone(), n);
                }
                None => self.withheld(format!("withdrawals of {variant}")),
            }
        }
        self.check_totals(&eligibility);
        Ok(())
    }

    /// Notes a figure the server withheld under small-cell suppression.
    fn withheld(&mut self, what: String) {
        self.report.suppressed.push(what);
    }

    pub(super) fn check_totals(&mut self, eligibility: &Value) {
        let report = &self.report;
        // Totals that add a withheld figure cannot be compared.
        let complete = report.suppressed.is_empty();
        let mut problems = Vec::new();
        if report.refusals != report.expected_refusals {
            problems.push(format!(
                "refusals per reason {:?}, expected {:?}",
                report.refusals, report.expected_refusals
            ));
        }
        for (variant, assigned) in &report.assigned {
            let Some(stored) = eligibility["assignments"][variant]["assigned"].as_u64() else {
                continue;
            };
            let erased = report.erased_from.get(variant).copied().unwrap_or(0);
            if stored + erased != *assigned {
                problems.push(format!(
                    "{variant}: {stored} assignments stored, expected {}",
                    assigned - erased
                ));
            }
        }
        let withdrawn: u64 = report.withdrawn_by_variant.values().sum();
        if complete && withdrawn != report.withdrawals {
            problems.push(format!(
                "{withdrawn} assignments marked withdrawn, expected {}",
                report.withdrawals
            ));
        }
        let assigned: u64 = report.assigned.values().sum();
        if complete && report.analysed_users + report.withdrawals + report.erased != assigned {
            problems.push(format!(
                "{} users analysed, expected {}",
                report.analysed_users,
                assigned - report.withdrawals - report.erased
            ));
        }
        if report.events_accepted != report.events_expected_accepted {
            problems.push(format!(
                "{} events stored, expected {}",
                report.events_accepted, report.events_expected_accepted
            ));
        }
        for problem in problems {
            self.mismatch(problem);
        }
    }
}
