//! What a demo run found, and how it is printed: where to look, how to sign
//! in, the estimate beside the true lift, the decision, who was eligible.

use std::collections::BTreeMap;
use std::fmt;

use super::DemoTokens;

/// The relative lift of the treatment as the results endpoint estimated it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub lift: f64,
    /// The 95% confidence interval.
    pub low: f64,
    pub high: f64,
    pub p_value: Option<f64>,
}

/// The outcome of a demo run. Counts only: never a raw id.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub experiment: String,
    /// The second pilot, left in draft for a walk through the browser.
    pub draft: Option<String>,
    pub database: String,
    pub dashboard: String,
    pub tokens: Option<DemoTokens>,
    pub subjects: usize,
    pub days: u32,
    pub true_lift: f64,
    pub inventory_records: usize,
    pub estimate: Option<Estimate>,
    pub decision: String,
    pub decision_reasons: Vec<String>,
    /// First-visit assignments per variant, as the server answered them.
    pub assigned: BTreeMap<String, u64>,
    /// Assignments per legal basis, from the eligibility report.
    pub assigned_by_basis: BTreeMap<String, u64>,
    /// Assignment refusals per reason, from the eligibility report.
    pub refusals: BTreeMap<String, u64>,
    /// Assignment refusals per reason the population implies.
    pub expected_refusals: BTreeMap<String, u64>,
    pub withdrawals: u64,
    pub withdrawn_by_variant: BTreeMap<String, u64>,
    pub erased: u64,
    pub erased_from: BTreeMap<String, u64>,
    pub erased_events: u64,
    pub analysed_users: u64,
    pub events_sent: u64,
    pub events_accepted: u64,
    pub events_expected_accepted: u64,
    pub events_refused: BTreeMap<String, u64>,
    /// Subjects the server assigned although the population says they had no legal basis.
    pub ineligible_assigned: u64,
    /// Figures the server withheld under small-cell suppression (fewer than
    /// `k` people, or telling such a figure), so not compared.
    pub suppressed: Vec<String>,
    /// Every answer of the server that differs from what the population implies.
    pub mismatches: u64,
    pub mismatch_examples: Vec<String>,
}

impl DemoReport {
    /// Whether the 95% confidence interval holds the true lift.
    pub fn covers_true_lift(&self) -> bool {
        self.estimate
            .is_some_and(|e| e.low <= self.true_lift && self.true_lift <= e.high)
    }
}

fn percent(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "pilot {} — {} subjects, {} simulated days, database {}",
            self.experiment, self.subjects, self.days, self.database
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Dashboard   {}   (sign in with one of these tokens)",
            self.dashboard
        )?;
        if let Some(tokens) = &self.tokens {
            writeln!(
                f,
                "  compliance  {}   (dana: approved the pilot)",
                tokens.compliance
            )?;
            writeln!(
                f,
                "  marketer    {}   (mia: designed and started it)",
                tokens.marketer
            )?;
            writeln!(f, "  analyst     {}", tokens.analyst)?;
            writeln!(f, "  admin       {}", tokens.admin)?;
            writeln!(
                f,
                "  ingest      {}   (API only: assign, events, consents)",
                tokens.ingest
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "Result: purchase rate, one_page_checkout against control (frequentist, 95% CI)"
        )?;
        writeln!(f, "  true lift        {}", percent(self.true_lift))?;
        match self.estimate {
            Some(e) => {
                writeln!(
                    f,
                    "  estimated lift   {}   95% CI [{}, {}]{}",
                    percent(e.lift),
                    percent(e.low),
                    percent(e.high),
                    e.p_value
                        .map_or(String::new(), |p| format!("   p = {p:.4}"))
                )?;
                writeln!(
                    f,
                    "  the CI covers the true lift: {}",
                    if self.covers_true_lift() { "yes" } else { "no" }
                )?;
            }
            None => writeln!(f, "  no estimate")?,
        }
        writeln!(f, "  decision         {}", self.decision)?;
        for reason in &self.decision_reasons {
            writeln!(f, "    - {reason}")?;
        }
        writeln!(f)?;
        let assigned: u64 = self.assigned.values().sum();
        writeln!(f, "Eligibility (the data-protection officer's view)")?;
        writeln!(
            f,
            "  consent inventory   {} records for {} subjects (the rest never asked)",
            self.inventory_records, self.subjects
        )?;
        writeln!(
            f,
            "  assigned            {assigned}: {}",
            counts(&self.assigned)
        )?;
        writeln!(
            f,
            "    by legal basis    {}",
            counts(&self.assigned_by_basis)
        )?;
        writeln!(f, "  refused at assign   {}", counts(&self.refusals))?;
        writeln!(
            f,
            "  withdrew mid-pilot  {}: {} (left out of the analysis)",
            self.withdrawals,
            counts(&self.withdrawn_by_variant)
        )?;
        writeln!(
            f,
            "  erased              {} subject ({} of its events deleted)",
            self.erased, self.erased_events
        )?;
        writeln!(f, "  analysed            {} users", self.analysed_users)?;
        if !self.suppressed.is_empty() {
            writeln!(
                f,
                "  suppressed (< k)    {} (not compared)",
                self.suppressed.join(", ")
            )?;
        }
        writeln!(
            f,
            "  events              {} sent, {} stored, refused: {}",
            self.events_sent,
            self.events_accepted,
            counts(&self.events_refused)
        )?;
        writeln!(
            f,
            "  ineligible subjects assigned: {}   answers differing from the simulation: {}",
            self.ineligible_assigned, self.mismatches
        )?;
        for example in &self.mismatch_examples {
            writeln!(f, "    ! {example}")?;
        }
        if let Some(draft) = &self.draft {
            writeln!(f)?;
            writeln!(f, "Next: walk a pilot through the browser")?;
            writeln!(
                f,
                "  mia left '{draft}' in draft. Sign in as the marketer, open it at {}/experiments/{draft},",
                self.dashboard
            )?;
            writeln!(
                f,
                "  plan it, submit it; sign in as compliance (dana) to approve it; sign in as mia again to start it."
            )?;
        }
        Ok(())
    }
}
