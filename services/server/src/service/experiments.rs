//! Pilots' design and lifecycle actions that the API and the pages share:
//! create, edit, submit, start, stop, and compliance's decisions.

use pilotgate_analysis::power::relative_sample_size_per_arm;
use pilotgate_domain::Actor;
use pilotgate_domain::experiment::{
    Action, Design, DesignError, ExperimentKey, Metric, MetricKind, Variant,
};
use pilotgate_domain::inventory::check_design_categories;
use pilotgate_domain::inventory::segments::{Correction, Dimension};
use pilotgate_domain::purpose::PurposeKey;
use pilotgate_domain::text::PlainText;
use pilotgate_store::{Experiment, Store};
use serde::{Deserialize, Serialize};

use super::ServiceError;

/// The longest comment of a decision, in characters.
pub const MAX_COMMENT: usize = 2000;

/// A metric: an event name and `binary` or `sum`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricInput {
    pub event: String,
    /// `binary` (converted at least once) or `sum` (sum of event values).
    pub kind: String,
}

/// A variant and its traffic weight; the first variant is the control.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    pub key: String,
    pub weight: f64,
}

/// A pilot's design as a marketer writes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesignInput {
    /// Required on create; on update it may be omitted or must equal the key in the path.
    pub key: Option<String>,
    pub name: String,
    pub hypothesis: String,
    /// Who answers for the pilot; defaults to the creating token's name.
    pub owner: Option<String>,
    /// A registered purpose key.
    pub purpose: String,
    pub variants: Vec<VariantInput>,
    /// Share of eligible subjects that enter the pilot, in (0, 1].
    pub coverage: f64,
    /// Hashing seed; defaults to the key.
    pub seed: Option<String>,
    pub primary_metric: MetricInput,
    #[serde(default)]
    pub guardrails: Vec<MetricInput>,
    /// Minimum detectable effect, relative (0.05 = 5% lift).
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    /// The control's expected conversion rate; with a binary primary metric it gives the planned sample size.
    pub baseline_rate: Option<f64>,
    pub attribution_window_hours: Option<u32>,
    /// Keys of the data inventory (`GET /api/v1/data-categories`); a key
    /// not in it, or prohibited for pilots, is refused.
    pub data_categories: Vec<String>,
    pub retention_days: u32,
    /// Segments of the inventory's vocabulary (`GET /api/v1/data-categories`,
    /// `segment_dimensions`) the results may be broken down by; each needs
    /// its data category declared. Named before the pilot starts: a
    /// running pilot's design cannot change.
    #[serde(default)]
    pub segments: Vec<String>,
    /// `holm` (default) or `benjamini_hochberg`: how segment results'
    /// p-values are adjusted.
    pub segment_correction: Option<String>,
}

fn unprocessable(error: DesignError) -> ServiceError {
    ServiceError::Unprocessable(error.to_string())
}

fn parse_metric(field: &str, input: MetricInput) -> Result<Metric, ServiceError> {
    let kind = input
        .kind
        .parse::<MetricKind>()
        .map_err(|reason| unprocessable(DesignError::new(field, &reason)))?;
    Ok(Metric {
        event: input.event,
        kind,
    })
}

/// The users per variant that `design` needs for its minimum detectable
/// effect, when it can be computed (a binary primary metric with a
/// baseline): for the relative-lift interval the decision reads.
pub fn planned_per_variant(design: &Design) -> Result<Option<i64>, ServiceError> {
    match (design.primary_metric.kind, design.baseline_rate) {
        (MetricKind::Binary, Some(baseline)) => {
            let n = relative_sample_size_per_arm(baseline, design.mde, design.alpha, design.power)
                .map_err(|e| unprocessable(DesignError::new("mde", &e.to_string())))?;
            Ok(Some(n.ceil() as i64))
        }
        _ => Ok(None),
    }
}

impl DesignInput {
    /// The design this input describes, with its defaults, checked against
    /// its purpose, and the planned sample size per variant when it can be
    /// computed. `author` is the default owner.
    pub async fn into_design(
        self,
        key: &str,
        author: &Actor,
        store: &Store,
    ) -> Result<(Design, Option<i64>), ServiceError> {
        let key = ExperimentKey::parse(key).map_err(unprocessable)?;
        let purpose_key = PurposeKey::parse(&self.purpose)
            .map_err(|e| unprocessable(DesignError::new("purpose", &e.to_string())))?;
        let design = Design {
            seed: self.seed.unwrap_or_else(|| key.to_string()),
            key,
            name: self.name,
            hypothesis: self.hypothesis,
            owner: self.owner.unwrap_or_else(|| author.name.clone()),
            purpose: purpose_key,
            variants: self
                .variants
                .into_iter()
                .map(|v| Variant {
                    key: v.key,
                    weight: v.weight,
                })
                .collect(),
            coverage: self.coverage,
            primary_metric: parse_metric("primary_metric", self.primary_metric)?,
            guardrails: self
                .guardrails
                .into_iter()
                .map(|g| parse_metric("guardrails", g))
                .collect::<Result<_, _>>()?,
            mde: self.mde,
            alpha: self.alpha,
            power: self.power,
            baseline_rate: self.baseline_rate,
            attribution_window_hours: self.attribution_window_hours,
            data_categories: self.data_categories,
            retention_days: self.retention_days,
            segments: self
                .segments
                .iter()
                .map(|name| {
                    // The name is not echoed: it is whatever the client sent.
                    name.parse::<Dimension>().map_err(|reason| {
                        unprocessable(DesignError::new("segments", &format!("a name {reason}")))
                    })
                })
                .collect::<Result<_, _>>()?,
            segment_correction: match self.segment_correction.as_deref() {
                None => Correction::default(),
                Some(text) => text.parse().map_err(|reason: String| {
                    unprocessable(DesignError::new("segment_correction", &reason))
                })?,
            },
        };
        design.validate().map_err(unprocessable)?;
        let record = store
            .purpose_record(design.purpose.as_str())
            .await?
            .ok_or_else(|| {
                unprocessable(DesignError::new("purpose", "is not a registered purpose"))
            })?;
        if record.retired_at.is_some() {
            return Err(unprocessable(DesignError::new(
                "purpose",
                "is retired: it takes no new pilot",
            )));
        }
        design
            .check_purpose(&record.purpose)
            .map_err(unprocessable)?;
        let vocabulary = store.list_data_categories().await?;
        check_design_categories(&design.data_categories, &vocabulary).map_err(unprocessable)?;
        let planned = planned_per_variant(&design)?;
        Ok((design, planned))
    }
}

/// Creates pilot `input` in `draft`, by `actor`.
pub async fn create(
    store: &Store,
    actor: &Actor,
    input: DesignInput,
) -> Result<Experiment, ServiceError> {
    let key = input
        .key
        .clone()
        .ok_or_else(|| ServiceError::invalid("key", "is required"))?;
    let (design, planned) = input.into_design(&key, actor, store).await?;
    Ok(store.create_experiment(&design, planned, actor).await?)
}

/// Replaces the design of pilot `key`; it returns to `draft` and any approval
/// is void. A running or stopped pilot cannot be edited (the store's 409).
pub async fn update(
    store: &Store,
    actor: &Actor,
    key: &str,
    input: DesignInput,
) -> Result<Experiment, ServiceError> {
    if input.key.as_deref().is_some_and(|k| k != key) {
        return Err(ServiceError::invalid("key", "a pilot's key cannot change"));
    }
    find(store, key).await?;
    let (design, planned) = input.into_design(key, actor, store).await?;
    Ok(store.update_experiment(&design, planned, actor).await?)
}

/// The pilot `key`, or the store's 404.
pub async fn find(store: &Store, key: &str) -> Result<Experiment, ServiceError> {
    store
        .experiment(key)
        .await?
        .ok_or_else(|| ServiceError::Store(no_such_pilot(key)))
}

/// The 404 of a pilot key that names no pilot. The key is repeated only
/// when it is a well-formed key: an error never echoes arbitrary input.
pub fn no_such_pilot(key: &str) -> pilotgate_store::StoreError {
    pilotgate_store::StoreError::NotFound(match ExperimentKey::parse(key) {
        Ok(key) => format!("no pilot has the key '{}'", key.as_str()),
        Err(_) => {
            "no pilot has that key (keys are lowercase letters, digits, '-' and '_')".to_owned()
        }
    })
}

/// `submit`, `start` or `stop` of pilot `key` by `actor` (audited by the
/// store); when `seen` names the design version the caller showed, a design
/// changed since is a conflict, decided in the same transaction. A submit or
/// start of a design that no longer fits the rules in force is a conflict.
pub async fn transition(
    store: &Store,
    actor: &Actor,
    key: &str,
    action: Action,
    seen: Option<i64>,
) -> Result<Experiment, ServiceError> {
    if matches!(action, Action::Submit | Action::Start) {
        refuse_unless_design_fits(store, key).await?;
    }
    Ok(store
        .transition_experiment_at(key, action, seen, actor)
        .await?)
}

/// A pilot is submitted, approved and started only while its design fits
/// the rules in force now, not those it was designed under (409 otherwise):
/// its purpose is not retired (retiring sent it back to draft, and it stays
/// there), the design fits the purpose as it is now (a shorter retention, a
/// special category), and it names only categories the inventory permits
/// now (one made prohibited since is refused).
async fn refuse_unless_design_fits(store: &Store, key: &str) -> Result<(), ServiceError> {
    let pilot = find(store, key).await?;
    let conflict =
        |message: String| ServiceError::Store(pilotgate_store::StoreError::Conflict(message));
    let design = &pilot.design;
    let Some(record) = store.purpose_record(design.purpose.as_str()).await? else {
        return Err(conflict(
            "the design no longer fits: purpose: is not a registered purpose; edit it".to_owned(),
        ));
    };
    if record.retired_at.is_some() {
        return Err(conflict(format!(
            "the purpose '{}' of this pilot is retired: choose another purpose",
            design.purpose
        )));
    }
    let vocabulary = store.list_data_categories().await?;
    design
        .check_purpose(&record.purpose)
        .and_then(|()| check_design_categories(&design.data_categories, &vocabulary))
        .map_err(|e| conflict(format!("the design no longer fits: {e}; edit it")))
}

/// Approves or denies version `design_version` of pilot `key` with the
/// reviewer's `comment` (plain text of several lines). The store checks, in
/// one transaction, that the pilot is submitted, still at that version, and
/// that `actor` is none of the people who created, edited or submitted it.
pub async fn decide(
    store: &Store,
    actor: &Actor,
    key: &str,
    action: Action,
    design_version: i64,
    comment: &str,
) -> Result<Experiment, ServiceError> {
    let comment = PlainText::lines(comment, MAX_COMMENT)
        .map_err(|e| ServiceError::invalid("comment", format!("give the reasoning: {e}")))?;
    if action == Action::Approve {
        refuse_unless_design_fits(store, key).await?;
    }
    Ok(store
        .decide_experiment(key, action, design_version, comment.as_str(), actor)
        .await?)
}
