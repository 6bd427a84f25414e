//! Pilots (experiments): their design, its rules, and the lifecycle
//! `draft -> submitted -> approved | denied`, `approved -> running -> stopped`.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::inventory::segments::{Correction, Dimension, check_design_segments};
use crate::purpose::{Purpose, PurposeKey};
use crate::{Actor, Role};

/// An experiment key: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExperimentKey(String);

impl ExperimentKey {
    pub fn parse(value: &str) -> Result<ExperimentKey, DesignError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(ExperimentKey(value.to_owned()))
        } else {
            Err(DesignError::new(
                "key",
                "must be 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExperimentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a metric turns a subject's events into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// 1 when the subject has at least one event, else 0.
    Binary,
    /// The sum of the events' values.
    Sum,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Binary => "binary",
            MetricKind::Sum => "sum",
        }
    }
}

impl FromStr for MetricKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(MetricKind::Binary),
            "sum" => Ok(MetricKind::Sum),
            _ => Err("must be binary or sum".to_owned()),
        }
    }
}

/// A metric: an event name and how to aggregate it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Metric {
    pub event: String,
    pub kind: MetricKind,
}

/// A variant and its share of traffic; the first variant of a design is the control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub key: String,
    pub weight: f64,
}

/// Everything a marketer decides about a pilot, and compliance approves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    pub key: ExperimentKey,
    pub name: String,
    pub hypothesis: String,
    pub owner: String,
    pub purpose: PurposeKey,
    pub variants: Vec<Variant>,
    /// Share of eligible subjects that enter the pilot, in (0, 1].
    pub coverage: f64,
    /// The hashing seed; defaults to the key.
    pub seed: String,
    pub primary_metric: Metric,
    pub guardrails: Vec<Metric>,
    /// Minimum detectable effect, relative (0.05 is a 5% lift).
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    /// The control's expected conversion rate, for the planned sample size of a binary metric.
    pub baseline_rate: Option<f64>,
    pub attribution_window_hours: Option<u32>,
    pub data_categories: Vec<String>,
    pub retention_days: u32,
    /// The segments results may be broken down by, named before the pilot
    /// starts (see `inventory::segments`).
    pub segments: Vec<Dimension>,
    /// How segment results' p-values are adjusted.
    pub segment_correction: Correction,
}

/// A design rule that does not hold: the field and why, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DesignError {
    pub field: String,
    pub reason: String,
}

impl DesignError {
    pub fn new(field: &str, reason: &str) -> Self {
        DesignError {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Keys no new pilot may take: the dashboards use them as page names beside
/// pilots' keys (`/ui/experiments/new`).
pub const RESERVED_KEYS: &[&str] = &["new"];

fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn is_text(value: &str, max: usize) -> bool {
    crate::text::PlainText::line(value, max).is_ok()
}

impl Design {
    /// Checks every rule of a design that needs nothing but the design.
    pub fn validate(&self) -> Result<(), DesignError> {
        let fail = |field: &str, reason: &str| Err(DesignError::new(field, reason));
        if RESERVED_KEYS.contains(&self.key.as_str()) {
            return fail(
                "key",
                "is reserved (the dashboards' page for designing a pilot has that name)",
            );
        }
        if !is_text(&self.name, 200) {
            return fail("name", "must be 1 to 200 characters");
        }
        if !is_text(&self.hypothesis, 2000) {
            return fail("hypothesis", "must be 1 to 2000 characters");
        }
        if !is_text(&self.owner, 200) {
            return fail("owner", "must be 1 to 200 characters");
        }
        if self.variants.len() < 2 {
            return fail(
                "variants",
                "a pilot needs at least two variants (the first is the control)",
            );
        }
        if self.variants.len() > 20 {
            return fail("variants", "a pilot has at most 20 variants");
        }
        let mut keys = HashSet::new();
        for variant in &self.variants {
            if variant.key.is_empty()
                || variant.key.len() > 64
                || !variant
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return fail(
                    "variants",
                    "variant keys must be 1 to 64 of letters, digits, '-' and '_'",
                );
            }
            if !keys.insert(variant.key.as_str()) {
                return fail("variants", "variant keys must be unique");
            }
            if !(variant.weight.is_finite() && variant.weight > 0.0) {
                return fail("variants", "every weight must be a positive number");
            }
        }
        if !(self.coverage.is_finite() && self.coverage > 0.0 && self.coverage <= 1.0) {
            return fail("coverage", "must be greater than 0 and at most 1");
        }
        if !is_text(&self.seed, 200) {
            return fail("seed", "must be 1 to 200 characters");
        }
        for (field, metric) in std::iter::once(("primary_metric", &self.primary_metric))
            .chain(self.guardrails.iter().map(|g| ("guardrails", g)))
        {
            if !is_event_name(&metric.event) {
                return fail(
                    field,
                    "the event name must be 1 to 100 of letters, digits, '_', '.', ':' and '-'",
                );
            }
        }
        if self.guardrails.len() > 20 {
            return fail("guardrails", "a pilot has at most 20 guardrail metrics");
        }
        if !(self.mde.is_finite() && self.mde > 0.0 && self.mde <= 10.0) {
            return fail(
                "mde",
                "must be a relative effect greater than 0 and at most 10 (1000%)",
            );
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0 && self.alpha <= 0.2) {
            return fail("alpha", "must be greater than 0 and at most 0.2");
        }
        if !(self.power.is_finite() && self.power >= 0.5 && self.power < 1.0) {
            return fail("power", "must be at least 0.5 and below 1");
        }
        if let Some(rate) = self.baseline_rate
            && !(rate.is_finite() && rate > 0.0 && rate < 1.0)
        {
            return fail("baseline_rate", "must be strictly between 0 and 1");
        }
        if self
            .attribution_window_hours
            .is_some_and(|h| h == 0 || h > 24 * 366)
        {
            return fail("attribution_window_hours", "must be between 1 and 8784");
        }
        if self.data_categories.is_empty() {
            return fail(
                "data_categories",
                "declare the data categories the pilot uses",
            );
        }
        if self.data_categories.len() > 50 || !self.data_categories.iter().all(|c| is_text(c, 100))
        {
            return fail(
                "data_categories",
                "at most 50 categories of 1 to 100 characters",
            );
        }
        if !(1..=3650).contains(&self.retention_days) {
            return fail("retention_days", "must be between 1 and 3650");
        }
        check_design_segments(&self.segments, &self.data_categories)
    }

    /// Checks the design against its purpose as registered.
    pub fn check_purpose(&self, purpose: &Purpose) -> Result<(), DesignError> {
        if purpose.special_category {
            return Err(DesignError::new(
                "purpose",
                "touches special categories of data (Art. 9): pilots may not use it",
            ));
        }
        if self.retention_days > purpose.retention_days {
            return Err(DesignError::new(
                "retention_days",
                "may not exceed the purpose's retention period",
            ));
        }
        Ok(())
    }
}

/// Where a pilot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Submitted,
    Approved,
    Denied,
    Running,
    Stopped,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Draft,
        State::Submitted,
        State::Approved,
        State::Denied,
        State::Running,
        State::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Submitted => "submitted",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Running => "running",
            State::Stopped => "stopped",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown state '{s}'"))
    }
}

/// Something that moves a pilot from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new design replaces the old one; any approval is void.
    Edit,
    Submit,
    Approve,
    Deny,
    Start,
    Stop,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Edit,
        Action::Submit,
        Action::Approve,
        Action::Deny,
        Action::Start,
        Action::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Submit => "submit",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }

    /// The states this action may start from.
    fn allowed_states(self) -> &'static [State] {
        match self {
            Action::Edit => &[
                State::Draft,
                State::Submitted,
                State::Approved,
                State::Denied,
            ],
            Action::Submit => &[State::Draft],
            Action::Approve | Action::Deny => &[State::Submitted],
            Action::Start => &[State::Approved],
            Action::Stop => &[State::Running],
        }
    }
}

/// An action the current state does not allow (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} the pilot: it is {current}; {action} needs it to be {needed}")]
pub struct TransitionError {
    pub action: &'static str,
    pub current: State,
    pub needed: String,
}

/// The state after `action` in `state`, or why the action is not allowed.
pub fn transition(state: State, action: Action) -> Result<State, TransitionError> {
    let allowed = action.allowed_states();
    if !allowed.contains(&state) {
        let needed = allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(TransitionError {
            action: action.as_str(),
            current: state,
            needed,
        });
    }
    Ok(match action {
        Action::Edit => State::Draft,
        Action::Submit => State::Submitted,
        Action::Approve => State::Approved,
        Action::Deny => State::Denied,
        Action::Start => State::Running,
        Action::Stop => State::Stopped,
    })
}

/// Why a reviewer may not decide on a pilot (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("only the compliance role approves or denies pilots")]
    NotCompliance,
    #[error(
        "separation of duties: '{0}' created, edited or submitted this pilot's design and may not approve or deny it"
    )]
    OwnPilot(String),
}

/// Separation of duties, per person: a compliance reviewer who is none of
/// the `contributors` (everyone who created, edited or submitted any version
/// of the design, by name, whatever role they did it with). A name is a
/// person: one name may hold tokens of several roles, and it is the name
/// that is compared.
pub fn check_reviewer(reviewer: &Actor, contributors: &[String]) -> Result<(), ReviewError> {
    if reviewer.role != Some(Role::Compliance) {
        return Err(ReviewError::NotCompliance);
    }
    if contributors.contains(&reviewer.name) {
        return Err(ReviewError::OwnPilot(reviewer.name.clone()));
    }
    Ok(())
}

/// A decision names the design version it was made on; when the design has
/// changed since (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the design changed since version {reviewed}: it is version {current} now; review it again before deciding"
)]
pub struct DesignChanged {
    pub reviewed: i64,
    pub current: i64,
}

/// The decision on `reviewed` stands only while the design is still that version.
pub fn check_reviewed_version(reviewed: i64, current: i64) -> Result<(), DesignChanged> {
    if reviewed == current {
        Ok(())
    } else {
        Err(DesignChanged { reviewed, current })
    }
}

#[cfg(test)]
mod tests;
