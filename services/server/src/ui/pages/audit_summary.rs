//! One sentence per audit entry for the audit page, from its action, target
//! and details: "approved pilot checkout-v2 (design version 3): 'ok'",
//! "recorded 1,000 consent records", "erased subject 3f2a… (12 assignments,
//! 340 events)". An action this file does not know reads "<action> on
//! <target>"; the raw details stay on the page beside the sentence.

use pilotgate_dashboards::format::thousands;
use serde_json::Value;

/// `n` with the noun in the singular or plural: "1 event", "1,000 events".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The name after `kind:` in a target such as `experiment:hero`.
fn named<'a>(target: &'a str, kind: &str) -> Option<&'a str> {
    target.strip_prefix(kind)?.strip_prefix(':')
}

/// A pseudonym shortened for reading: its first eight digits and an ellipsis.
fn short(pseudonym: &str) -> String {
    match pseudonym.get(..8) {
        Some(head) if pseudonym.len() > 8 => format!("{head}…"),
        _ => pseudonym.to_owned(),
    }
}

/// The target as people read it: `pilot hero`, `subject 3f2a…`, `purpose x`.
fn target_text(target: &str) -> String {
    if let Some(key) = named(target, "experiment") {
        format!("pilot {key}")
    } else if let Some(subject) = named(target, "subject") {
        format!("subject {}", short(subject))
    } else if let Some((kind, name)) = target.split_once(':') {
        format!("{kind} {name}")
    } else {
        target.to_owned()
    }
}

/// The strings of the array `field`, if any.
fn strings(details: &Value, field: &str) -> Vec<String> {
    details
        .get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn number(details: &Value, field: &str) -> Option<u64> {
    details.get(field).and_then(Value::as_u64)
}

fn text<'a>(details: &'a Value, field: &str) -> Option<&'a str> {
    details.get(field).and_then(Value::as_str)
}

/// " (design version 3)" when the details name one.
fn design_version(details: &Value) -> String {
    number(details, "design_version")
        .map(|v| format!(" (design version {v})"))
        .unwrap_or_default()
}

/// The sentence for one entry.
pub fn summarize(action: &str, target: &str, details: &Value) -> String {
    let what = target_text(target);
    let version = design_version(details);
    match action {
        "experiment.create" => format!("created {what}{version}"),
        "experiment.update" => {
            let voided = if details.get("approval_voided") == Some(&Value::Bool(true)) {
                "; the approval was voided"
            } else {
                ""
            };
            format!(
                "edited {what}: now design version {}{voided}",
                number(details, "design_version").unwrap_or(0)
            )
        }
        "experiment.submit" => format!("submitted {what}{version} for approval"),
        "experiment.approve" | "experiment.deny" => {
            let verb = if action == "experiment.approve" {
                "approved"
            } else {
                "denied"
            };
            let comment = text(details, "comment")
                .map(|c| format!(": '{c}'"))
                .unwrap_or_default();
            format!("{verb} {what}{version}{comment}")
        }
        "experiment.start" => format!("started {what}{version}"),
        "experiment.stop" => format!("stopped {what}{version}"),
        "experiment.decision_refused" => format!("a decision on {what} was refused{version}"),
        "experiment.export" => format!("exported the data of {what}"),
        "experiment.memo_written" => format!("wrote the scale-decision memo of {what}"),
        "results.downloaded" => format!("downloaded the results of {what}"),
        "consent.record" => {
            let stored = number(details, "stored").unwrap_or(0);
            let duplicates = number(details, "duplicates").unwrap_or(0);
            let mut sentence = format!(
                "recorded {}",
                count(stored, "consent record", "consent records")
            );
            if duplicates > 0 {
                sentence.push_str(&format!(
                    " ({} already held)",
                    count(duplicates, "duplicate", "duplicates")
                ));
            }
            sentence
        }
        "subject.erase" => {
            let deleted = details.get("deleted").unwrap_or(&Value::Null);
            let versions = details
                .get("versions")
                .and_then(Value::as_array)
                .map_or(1, Vec::len) as u64;
            let across = if versions > 1 {
                format!(", across {} key versions", versions)
            } else {
                String::new()
            };
            format!(
                "erased {what} ({}, {}{across})",
                count(
                    number(deleted, "assignments").unwrap_or(0),
                    "assignment",
                    "assignments"
                ),
                count(number(deleted, "events").unwrap_or(0), "event", "events"),
            )
        }
        "subject.resolve" => format!("resolved a raw id to {what}"),
        "subject.lookup" | "subject.access" => {
            let verb = if action == "subject.lookup" {
                "looked up"
            } else {
                "read what is held about"
            };
            let versions = details
                .get("versions")
                .and_then(Value::as_array)
                .map_or(0, Vec::len) as u64;
            format!(
                "{verb} {what} ({})",
                count(versions, "key version", "key versions")
            )
        }
        "purpose.create" => format!("registered {what}"),
        "purpose.update" => {
            let narrowing = strings(details, "narrowing");
            let returned = strings(details, "returned_to_draft");
            let mut sentence = format!(
                "changed {what} (version {})",
                number(details, "version").unwrap_or(0)
            );
            if !narrowing.is_empty() {
                sentence.push_str(&format!(": {}", narrowing.join("; ")));
            }
            if !returned.is_empty() {
                sentence.push_str(&format!("; sent back to draft: {}", returned.join(", ")));
            }
            sentence
        }
        "purpose.retire" => format!(
            "retired {what}: '{}'",
            text(details, "reason").unwrap_or_default()
        ),
        "purpose.assess" => format!(
            "recorded legitimate-interest assessment v{} of {what}: {}, reviewed by {} on {}",
            number(details, "version").unwrap_or(0),
            text(details, "outcome").unwrap_or("unknown"),
            text(details, "reviewer").unwrap_or("unknown"),
            text(details, "reviewed_on").unwrap_or("unknown")
        ),
        "experiment.returned_to_draft" => format!(
            "sent {what}{version} back to draft: {}",
            text(details, "reason").unwrap_or_default()
        ),
        "notice.create" | "notice.publish" => format!(
            "{} {what} version {} ({})",
            if action == "notice.create" {
                "created"
            } else {
                "published"
            },
            number(details, "version").unwrap_or(0),
            strings(details, "languages").join(", ")
        ),
        "privacy_link.issue" => format!(
            "issued privacy link {} for {what} to subject {}",
            text(details, "link").unwrap_or_default(),
            short(text(details, "subject").unwrap_or_default())
        ),
        "consent.receipt" => format!("signed consent {what}"),
        "data_category.create" => format!("added {what} to the data inventory"),
        "data_category.update" => format!("changed {what} in the data inventory"),
        "token.create" => format!(
            "issued a token for {} (role {})",
            named(target, "token").unwrap_or(target),
            text(details, "role").unwrap_or("unknown")
        ),
        "token.revoke" => format!(
            "revoked the token of {} (role {})",
            named(target, "token").unwrap_or(target),
            text(details, "role").unwrap_or("unknown")
        ),
        "keys.recorded" => "recorded the fingerprints of new keys".to_owned(),
        "audit.chain_keyed" => format!(
            "keyed the audit chain ({} rehashed)",
            count(number(details, "entries").unwrap_or(0), "entry", "entries")
        ),
        _ => format!("{action} on {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_actions_read_as_sentences() {
        assert_eq!(
            summarize(
                "experiment.approve",
                "experiment:checkout-v2",
                &json!({"design_version": 3, "comment": "ok", "from": "submitted", "to": "approved"})
            ),
            "approved pilot checkout-v2 (design version 3): 'ok'"
        );
        assert_eq!(
            summarize(
                "consent.record",
                "consents",
                &json!({"stored": 1000, "duplicates": 0})
            ),
            "recorded 1,000 consent records"
        );
        let subject = "3f2a".repeat(16);
        assert_eq!(
            summarize(
                "subject.erase",
                &format!("subject:{subject}"),
                &json!({"deleted": {"assignments": 12, "events": 340}, "versions": [{}]})
            ),
            "erased subject 3f2a3f2a… (12 assignments, 340 events)"
        );
        assert_eq!(
            summarize("token.create", "token:dana", &json!({"role": "compliance"})),
            "issued a token for dana (role compliance)"
        );
        assert_eq!(
            summarize(
                "purpose.update",
                "purpose:analytics.shop",
                &json!({"version": 2, "narrowing": ["the minimum notice version rose from 1 to 2"],
                    "returned_to_draft": ["a", "b"]})
            ),
            "changed purpose analytics.shop (version 2): the minimum notice version rose from 1 to 2; sent back to draft: a, b"
        );
        assert_eq!(
            summarize(
                "notice.publish",
                "notice:shop",
                &json!({"version": 3, "languages": ["de", "en"]})
            ),
            "published notice shop version 3 (de, en)"
        );
    }

    #[test]
    fn an_unknown_action_names_itself_and_its_target() {
        assert_eq!(
            summarize("notice.withdraw", "notice:shop", &json!({})),
            "notice.withdraw on notice shop"
        );
    }
}
