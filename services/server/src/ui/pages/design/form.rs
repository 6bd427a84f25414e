//! The design form's fields: reading a posted form (repeated fields make
//! the variant and guardrail rows, one button names the operation), the
//! fields of a new or stored design, the service's input they describe, and
//! a service refusal placed beside its field.

use std::collections::BTreeMap;

use pilotgate_dashboards as view;
use pilotgate_store::Experiment;

use crate::service::ServiceError;
use crate::service::experiments::{DesignInput, MetricInput, VariantInput};
use crate::ui::UiError;

/// The most rows of variants or guardrails a form carries.
pub(super) const MAX_ROWS: usize = 20;

/// The form fields a refusal can stand beside; any other goes on top.
const FIELDS: &[&str] = &[
    "key",
    "name",
    "hypothesis",
    "owner",
    "purpose",
    "variants",
    "coverage",
    "seed",
    "primary_metric",
    "guardrails",
    "mde",
    "alpha",
    "power",
    "baseline_rate",
    "attribution_window_hours",
    "data_categories",
    "retention_days",
    "segments",
    "segment_correction",
    "daily_visitors",
];

/// What a POST of the form asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Op {
    Save,
    Plan,
    AddVariant,
    RemoveVariant(usize),
    AddGuardrail,
    RemoveGuardrail(usize),
}

impl Op {
    fn parse(value: &str) -> Op {
        let index = |prefix: &str| {
            value
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
        };
        match value {
            "plan" => Op::Plan,
            "add_variant" => Op::AddVariant,
            "add_guardrail" => Op::AddGuardrail,
            _ => match (index("remove_variant_"), index("remove_guardrail_")) {
                (Some(n), _) => Op::RemoveVariant(n),
                (None, Some(n)) => Op::RemoveGuardrail(n),
                _ => Op::Save,
            },
        }
    }
}

/// A posted form: its fields, CSRF token and button.
pub(super) struct Posted {
    pub(super) fields: view::DesignFields,
    pub(super) csrf: String,
    pub(super) op: Op,
}

/// Reads the form's pairs; repeated names (`variant_key`, …) make the rows.
pub(super) fn read(pairs: Vec<(String, String)>) -> Posted {
    let mut fields = view::DesignFields::default();
    let (mut csrf, mut op) = (String::new(), Op::Save);
    let (mut variant_keys, mut variant_weights) = (Vec::new(), Vec::new());
    let (mut guardrail_events, mut guardrail_kinds) = (Vec::new(), Vec::new());
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "csrf" => &mut csrf,
            "op" => {
                op = Op::parse(&value);
                continue;
            }
            "variant_key" => {
                variant_keys.push(value);
                continue;
            }
            "variant_weight" => {
                variant_weights.push(value);
                continue;
            }
            "guardrail_event" => {
                guardrail_events.push(value);
                continue;
            }
            "guardrail_kind" => {
                guardrail_kinds.push(value);
                continue;
            }
            "key" => &mut fields.key,
            "name" => &mut fields.name,
            "hypothesis" => &mut fields.hypothesis,
            "owner" => &mut fields.owner,
            "purpose" => &mut fields.purpose,
            "coverage" => &mut fields.coverage,
            "seed" => &mut fields.seed,
            "primary_event" => &mut fields.primary_event,
            "primary_kind" => &mut fields.primary_kind,
            "mde" => &mut fields.mde,
            "alpha" => &mut fields.alpha,
            "power" => &mut fields.power,
            "baseline_rate" => &mut fields.baseline_rate,
            "attribution_window_hours" => &mut fields.attribution_window_hours,
            "data_categories" => {
                // Checkboxes post one value each; typed text may list several.
                if !fields.data_categories.is_empty() {
                    fields.data_categories.push_str(", ");
                }
                fields.data_categories.push_str(&value);
                continue;
            }
            "segments" => {
                if !fields.segments.is_empty() {
                    fields.segments.push_str(", ");
                }
                fields.segments.push_str(&value);
                continue;
            }
            "segment_correction" => &mut fields.segment_correction,
            "retention_days" => &mut fields.retention_days,
            "daily_visitors" => &mut fields.daily_visitors,
            _ => continue,
        };
        *slot = value;
    }
    fields.variants = zip_rows(variant_keys, variant_weights, "1");
    fields.guardrails = zip_rows(guardrail_events, guardrail_kinds, "binary");
    Posted { fields, csrf, op }
}

/// Pairs of two repeated fields, the second defaulting to `missing`, at most
/// [`MAX_ROWS`].
fn zip_rows(first: Vec<String>, second: Vec<String>, missing: &str) -> Vec<(String, String)> {
    let mut second = second.into_iter();
    first
        .into_iter()
        .take(MAX_ROWS)
        .map(|a| (a, second.next().unwrap_or_else(|| missing.to_owned())))
        .collect()
}

/// The fields of a new design: a control and one treatment, full coverage,
/// a binary metric, 5% MDE at α 0.05 and power 0.8, 90 days of retention.
pub(super) fn blank() -> view::DesignFields {
    view::DesignFields {
        variants: vec![
            ("control".to_owned(), "1".to_owned()),
            ("treatment".to_owned(), "1".to_owned()),
        ],
        coverage: "1".to_owned(),
        primary_kind: "binary".to_owned(),
        mde: "0.05".to_owned(),
        alpha: "0.05".to_owned(),
        power: "0.8".to_owned(),
        retention_days: "90".to_owned(),
        ..view::DesignFields::default()
    }
}

/// The fields of a stored design.
pub(super) fn fields_of(experiment: &Experiment) -> view::DesignFields {
    let d = &experiment.design;
    let number = |x: f64| x.to_string();
    view::DesignFields {
        key: d.key.to_string(),
        name: d.name.clone(),
        hypothesis: d.hypothesis.clone(),
        owner: d.owner.clone(),
        purpose: d.purpose.to_string(),
        variants: d
            .variants
            .iter()
            .map(|v| (v.key.clone(), number(v.weight)))
            .collect(),
        coverage: number(d.coverage),
        seed: if d.seed == d.key.as_str() {
            String::new()
        } else {
            d.seed.clone()
        },
        primary_event: d.primary_metric.event.clone(),
        primary_kind: d.primary_metric.kind.as_str().to_owned(),
        guardrails: d
            .guardrails
            .iter()
            .map(|g| (g.event.clone(), g.kind.as_str().to_owned()))
            .collect(),
        mde: number(d.mde),
        alpha: number(d.alpha),
        power: number(d.power),
        baseline_rate: d.baseline_rate.map(number).unwrap_or_default(),
        attribution_window_hours: d
            .attribution_window_hours
            .map(|h| h.to_string())
            .unwrap_or_default(),
        data_categories: d.data_categories.join(", "),
        retention_days: d.retention_days.to_string(),
        segments: d
            .segments
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        segment_correction: d.segment_correction.as_str().to_owned(),
        daily_visitors: String::new(),
    }
}

/// The design input the fields describe, or each field that is not a
/// number where one is needed.
pub(super) fn input_of(
    fields: &view::DesignFields,
    key: Option<&str>,
) -> Result<DesignInput, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut number = |field: &str, text: &str| -> f64 {
        match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => {
                errors.insert(field.to_owned(), "must be a number".to_owned());
                f64::NAN
            }
        }
    };
    let coverage = number("coverage", &fields.coverage);
    let mde = number("mde", &fields.mde);
    let alpha = number("alpha", &fields.alpha);
    let power = number("power", &fields.power);
    let baseline_rate = (!fields.baseline_rate.trim().is_empty())
        .then(|| number("baseline_rate", &fields.baseline_rate));
    let weights: Vec<f64> = fields
        .variants
        .iter()
        .map(|(_, weight)| number("variants", weight))
        .collect();
    let mut whole = |field: &str, text: &str| -> Option<u32> {
        match text.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.insert(
                    field.to_owned(),
                    "must be a whole number, 0 or more".to_owned(),
                );
                None
            }
        }
    };
    let retention_days = whole("retention_days", &fields.retention_days);
    let attribution_window_hours = if fields.attribution_window_hours.trim().is_empty() {
        None
    } else {
        whole("attribution_window_hours", &fields.attribution_window_hours)
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = |s: &str| s.trim().to_owned();
    Ok(DesignInput {
        key: key.map(str::to_owned).or_else(|| Some(text(&fields.key))),
        name: text(&fields.name),
        hypothesis: fields.hypothesis.trim().to_owned(),
        owner: Some(text(&fields.owner)).filter(|o| !o.is_empty()),
        purpose: text(&fields.purpose),
        variants: fields
            .variants
            .iter()
            .zip(weights)
            .map(|((key, _), weight)| VariantInput {
                key: text(key),
                weight,
            })
            .collect(),
        coverage,
        seed: Some(text(&fields.seed)).filter(|s| !s.is_empty()),
        primary_metric: MetricInput {
            event: text(&fields.primary_event),
            kind: text(&fields.primary_kind),
        },
        guardrails: fields
            .guardrails
            .iter()
            .filter(|(event, _)| !event.trim().is_empty())
            .map(|(event, kind)| MetricInput {
                event: text(event),
                kind: text(kind),
            })
            .collect(),
        mde,
        alpha,
        power,
        baseline_rate,
        attribution_window_hours,
        data_categories: comma_list(&fields.data_categories),
        retention_days: retention_days.unwrap_or_default(),
        segments: comma_list(&fields.segments),
        segment_correction: Some(text(&fields.segment_correction)).filter(|c| !c.is_empty()),
    })
}

/// The non-empty items of a comma-separated field.
fn comma_list(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A service refusal as form errors: `field: reason` beside its field (a
/// nested field such as `variants[1].key` stands beside `variants`), any
/// other refusal on top of the form.
pub(super) fn refusal(
    error: ServiceError,
) -> Result<(BTreeMap<String, String>, Option<String>), UiError> {
    match error {
        ServiceError::Unprocessable(message) => {
            let placed = message.split_once(": ").and_then(|(field, reason)| {
                let field = field.split(['[', '.']).next().unwrap_or(field).to_owned();
                FIELDS
                    .contains(&field.as_str())
                    .then(|| (field, reason.to_owned()))
            });
            Ok(match placed {
                Some((field, reason)) => (BTreeMap::from([(field, reason)]), None),
                None => (BTreeMap::new(), Some(message)),
            })
        }
        ServiceError::Store(pilotgate_store::StoreError::Conflict(message)) => {
            Ok((BTreeMap::new(), Some(message)))
        }
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_make_rows_and_buttons_name_their_row() {
        let pairs = [
            ("csrf", "t"),
            ("variant_key", "control"),
            ("variant_weight", "1"),
            ("variant_key", "b"),
            ("variant_weight", "2"),
            ("guardrail_event", "refund"),
            ("guardrail_kind", "sum"),
            ("op", "remove_variant_1"),
            ("mde", "0.1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec();
        let posted = read(pairs);
        assert_eq!(posted.csrf, "t");
        assert_eq!(posted.op, Op::RemoveVariant(1));
        assert_eq!(
            posted.fields.variants,
            vec![
                ("control".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(
            posted.fields.guardrails,
            vec![("refund".to_owned(), "sum".to_owned())]
        );
        assert_eq!(posted.fields.mde, "0.1");
        assert_eq!(Op::parse("anything else"), Op::Save);
    }

    #[test]
    fn numbers_that_are_not_numbers_are_refused_beside_their_fields() {
        let mut fields = blank();
        fields.mde = "five percent".to_owned();
        fields.retention_days = "-3".to_owned();
        let errors = input_of(&fields, None).unwrap_err();
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            vec!["mde", "retention_days"]
        );
    }

    #[test]
    fn a_nested_field_stands_beside_its_parent_and_others_go_on_top() {
        let placed = refusal(ServiceError::invalid("variants[1].key", "must be unique")).unwrap();
        assert_eq!(
            placed.0.get("variants").map(String::as_str),
            Some("must be unique")
        );
        let top = refusal(ServiceError::invalid("design", "odd")).unwrap();
        assert!(top.0.is_empty());
        assert_eq!(top.1.as_deref(), Some("design: odd"));
    }
}
