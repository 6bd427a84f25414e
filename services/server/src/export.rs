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

use pilotgate_analysis::export::{AssignmentColumns, EventColumns, FileFormat, write_export};
use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::time::to_micros;
use pilotgate_store::Store;

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
) -> Result<String, String> {
    if store
        .experiment(experiment)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no pilot has the key '{experiment}'"));
    }
    let recipient = match authority {
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
            Some(request.recipient)
        }
    };
    let subject_of = |pseudonym: &str| match &recipient {
        Some(name) => crate::service::exports::recipient_subject(keys, name, pseudonym),
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
    let (assignment_count, event_count) = (
        assignment_columns.subject.len(),
        event_columns.subject.len(),
    );
    // Audited before any byte is written: an export that is not in the audit
    // log never leaves the database.
    let details = serde_json::json!({
        "format": format.extension(),
        "assignments": assignment_count,
        "events": event_count,
        "withdrawn_left_out": withdrawn,
    });
    let entry = match authority {
        ExportAuthority::Approved(id) => {
            let mut manifest = details;
            manifest["export"] = serde_json::json!(id);
            manifest["pilot"] = serde_json::json!(experiment);
            manifest["recipient"] = serde_json::json!(recipient);
            manifest["via"] = serde_json::json!("cli");
            store
                .record_export_download(id, &Actor::operator(), false, manifest)
                .await
        }
        ExportAuthority::BreakGlass(_) => {
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
    let (assignments_path, events_path) = tokio::task::spawn_blocking(move || {
        write_export(&out_dir, format, &assignment_columns, &event_columns)
    })
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
