//! Files that leave the database from the host: `pilotgate export` (a
//! pilot's assignments and events in the `pilotgate analyze` input format,
//! pseudonymized, without withdrawn or erased subjects) and `pilotgate memo`
//! (the scale-decision memo as HTML); each audited before it is written.
//!
//! A pilot's data leaves the host only for an approved export request
//! (`--export-id`: counted as one of its downloads, audited as
//! `export.download`, with subject ids derived for its recipient) or under
//! `--break-glass REASON`, audited as `export.break_glass` before anything
//! is read.

use std::collections::HashSet;
use std::path::Path;

use pilotgate_analysis::disclosure::MinCell;

use pilotgate_analysis::export::{
    AssignmentColumns, CovariateColumns, EventColumns, FileFormat, encode_covariate, encode_export,
    write_encoded,
};
use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::time::to_micros;
use pilotgate_store::Store;
use sha2::{Digest, Sha256};

/// What allows an export from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportAuthority {
    /// An approved export request of the pilot (its id).
    Approved(String),
    /// An emergency, with its reason: audited first, shown to compliance.
    BreakGlass(String),
}

/// Writes the export of `experiment` into `out` and returns a one-line summary.
pub async fn export_experiment(
    store: &Store,
    keys: &KeyRing,
    experiment: &str,
    out: &Path,
    format: FileFormat,
    authority: &ExportAuthority,
    k: MinCell,
) -> Result<String, String> {
    let options = ExportOptions {
        covariate_days: None,
        min_cell: k,
    };
    export_experiment_with(store, keys, experiment, out, format, authority, options).await
}

/// What an export adds or withholds.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Also `covariate.EXT` over this many days before each assignment.
    pub covariate_days: Option<u32>,
    /// The minimum cell size the manifest's counts are released under.
    pub min_cell: MinCell,
}

/// [`export_experiment`], with `options.covariate_days`: also `covariate.EXT`, the
/// primary metric over each kept subject's events in that many days before
/// its assignment (from the other pilots of the purpose), as the results'
/// CUPED computes it, for `pilotgate analyze --covariate`.
pub async fn export_experiment_with(
    store: &Store,
    keys: &KeyRing,
    experiment: &str,
    out: &Path,
    format: FileFormat,
    authority: &ExportAuthority,
    options: ExportOptions,
) -> Result<String, String> {
    let ExportOptions {
        covariate_days,
        min_cell: k,
    } = options;
    let pilot = store
        .experiment(experiment)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no pilot has the key '{experiment}'"))?;
    if covariate_days.is_some_and(|days| !(1..=365).contains(&days)) {
        return Err("--covariate-days must be 1 to 365".to_owned());
    }
    let approved = match authority {
        ExportAuthority::BreakGlass(reason) => {
            let reason = pilotgate_domain::text::PlainText::line(reason, 500)
                .ok()
                .filter(|r| !r.as_str().trim().is_empty())
                .ok_or("--break-glass needs a reason of one line (at most 500 characters)")?;
            store
                .record_audit(
                    &Actor::operator(),
                    "export.break_glass",
                    format!("experiment:{experiment}"),
                    serde_json::json!({"reason": reason.as_str(), "format": format.extension()}),
                )
                .await
                .map_err(|e| e.to_string())?;
            None
        }
        ExportAuthority::Approved(id) => {
            let request = store
                .export_request(id)
                .await
                .map_err(|e| e.to_string())?
                .filter(|r| r.experiment_key == experiment)
                .ok_or_else(|| format!("no export request of '{experiment}' has this id"))?;
            pilotgate_store::check_downloadable(&request, None, store.now())
                .map_err(|e| e.to_string())?;
            Some(request)
        }
    };
    let subject_of = |pseudonym: &str| match &approved {
        Some(request) => {
            crate::service::exports::recipient_subject(keys, &request.recipient, pseudonym)
        }
        None => pseudonym.to_owned(),
    };
    let assignments = store
        .assignments_of(experiment)
        .await
        .map_err(|e| e.to_string())?;
    let events = store
        .events_of(experiment)
        .await
        .map_err(|e| e.to_string())?;
    // Erased subjects have no rows left; withdrawn ones are left out here.
    let withdrawn = assignments
        .iter()
        .filter(|a| a.withdrawn_at.is_some())
        .count();
    let kept: Vec<_> = assignments
        .into_iter()
        .filter(|a| a.withdrawn_at.is_none())
        .collect();
    let subjects: HashSet<&str> = kept.iter().map(|a| a.subject.as_str()).collect();
    let mut assignment_columns = AssignmentColumns::default();
    for a in &kept {
        assignment_columns.subject.push(subject_of(&a.subject));
        assignment_columns.variant.push(a.variant.clone());
        assignment_columns
            .assigned_at
            .push(to_micros(a.assigned_at));
    }
    let mut event_columns = EventColumns::default();
    for e in events
        .iter()
        .filter(|e| subjects.contains(e.subject.as_str()))
    {
        event_columns.subject.push(subject_of(&e.subject));
        event_columns.event.push(e.name.clone());
        event_columns.value.push(e.value);
        event_columns.occurred_at.push(to_micros(e.occurred_at));
    }
    let covariate = match covariate_days {
        None => None,
        Some(days) => {
            let design = &pilot.design;
            let rows = store
                .subject_covariates(
                    experiment,
                    design.purpose.as_str(),
                    &design.primary_metric,
                    i64::from(days) * 86_400_000_000,
                )
                .await
                .map_err(|e| e.to_string())?;
            let mut columns = CovariateColumns::default();
            for (subject, value) in rows {
                columns.subject.push(subject_of(&subject));
                columns.value.push(value);
            }
            Some((days, columns))
        }
    };
    let (assignment_count, event_count) = (
        assignment_columns.subject.len(),
        event_columns.subject.len(),
    );
    let mut bases: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for a in &kept {
        *bases.entry(a.basis.as_str()).or_default() += 1;
    }
    // Made in memory and hashed first: the audit entry names the bytes that
    // will be written, and it is written before any of them is.
    // The covariate file is described by its pre-period and its rows.
    let covariate_summary = covariate
        .as_ref()
        .map(|(days, columns)| (*days, columns.subject.len()));
    let encoded = tokio::task::spawn_blocking(move || {
        let mut encoded = encode_export(format, &assignment_columns, &event_columns)?;
        encoded.covariate = covariate
            .map(|(_, columns)| encode_covariate(format, &columns))
            .transpose()?;
        Ok::<_, String>(encoded)
    })
    .await
    .map_err(|e| format!("the export was interrupted: {e}"))??;
    // The manifest is read in the audit log: its counts of people are
    // released under k, as the API download's are.
    let released =
        crate::service::exports::manifest_counts(store, experiment, &bases, withdrawn as u64, k)
            .await
            .map_err(|e| e.to_string())?;
    let mut details = serde_json::json!({
        "pilot": experiment,
        "purpose": pilot.design.purpose.as_str(),
        "format": format.extension(),
        "assignments": released.assignments,
        "events": event_count,
        "basis_counts": released.basis_counts,
        "withdrawn_left_out": released.withdrawn,
        "min_cell": k.get(),
        "suppressed": released.suppressed,
        "sha256": {
            "assignments": hex::encode(Sha256::digest(&encoded.assignments)),
            "events": hex::encode(Sha256::digest(&encoded.events)),
        },
    });
    if let (Some((days, subjects)), Some(bytes)) = (covariate_summary, &encoded.covariate) {
        details["covariate"] = serde_json::json!({
            "metric": pilot.design.primary_metric.event,
            "lookback_days": days,
            "subjects": crate::service::disclosure::standalone(subjects as u64, k),
        });
        details["sha256"]["covariate"] = serde_json::json!(hex::encode(Sha256::digest(bytes)));
    }
    let entry = match &approved {
        Some(request) => {
            let mut manifest = details;
            manifest["export"] = serde_json::json!(request.id);
            manifest["recipient"] = serde_json::json!(request.recipient);
            manifest["expires_at"] = serde_json::json!(request.expires_at);
            manifest["download"] = serde_json::json!(request.downloads + 1);
            manifest["max_downloads"] = serde_json::json!(request.max_downloads);
            manifest["via"] = serde_json::json!("cli");
            store
                .record_export_download(&request.id, &Actor::operator(), false, manifest)
                .await
        }
        None => {
            store
                .record_audit(
                    &Actor::operator(),
                    "experiment.export",
                    format!("experiment:{experiment}"),
                    details,
                )
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    let out_dir = out.to_owned();
    let (assignments_path, events_path) =
        tokio::task::spawn_blocking(move || write_encoded(&out_dir, &encoded))
            .await
            .map_err(|e| format!("the export was interrupted: {e}"))?
            .map_err(|e| format!("{e} (the export is audited as entry {})", entry.id))?;
    Ok(format!(
        "exported {experiment}: {} assignments to {}, {} events to {} ({withdrawn} withdrawn subjects left out)",
        assignment_count,
        assignments_path.display(),
        event_count,
        events_path.display()
    ))
}

/// Writes the scale-decision memo of `experiment` to `out` as one HTML page
/// (created 0600, never over an existing file) and returns a one-line
/// summary. Audited before the file is written, with the audit chain's head
/// the memo shows and the page's SHA-256.
pub async fn write_memo(
    store: &Store,
    experiment: &str,
    out: &Path,
    k: pilotgate_analysis::disclosure::MinCell,
) -> Result<String, String> {
    use pilotgate_dashboards::Template;
    use sha2::Digest;
    let found = store
        .experiment(experiment)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no pilot has the key '{experiment}'"))?;
    let chrome = pilotgate_dashboards::Chrome::anonymous("Memo", "");
    let memo = crate::ui::memo_model(store, &found, chrome, k)
        .await
        .map_err(|e| format!("{experiment}: the memo cannot be made: {e}"))?;
    let page = memo
        .render()
        .map_err(|e| format!("the memo could not be rendered: {e}"))?;
    let sha256 = hex::encode(sha2::Sha256::digest(page.as_bytes()));
    store
        .record_audit(
            &Actor::operator(),
            "experiment.memo_written",
            format!("experiment:{experiment}"),
            serde_json::json!({
                "audit_entries": memo.audit_entries,
                "audit_hash": memo.audit_hash,
                "sha256": sha256,
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .map_err(|e| format!("{}: cannot create the memo: {e}", out.display()))?;
    std::io::Write::write_all(&mut file, page.as_bytes())
        .map_err(|e| format!("{}: cannot write the memo: {e}", out.display()))?;
    Ok(format!(
        "wrote the memo of {experiment} to {} (audit chain: {} entries, head {})",
        out.display(),
        memo.audit_entries,
        memo.audit_hash
    ))
}
