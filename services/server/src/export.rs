//! Files that leave the database from the host: `pilotgate export` (a
//! pilot's assignments and events in the `pilotgate analyze` input format,
//! pseudonymized, without withdrawn or erased subjects) and `pilotgate memo`
//! (the scale-decision memo as HTML); each audited before it is written.

use std::collections::HashSet;
use std::path::Path;

use pilotgate_analysis::export::{AssignmentColumns, EventColumns, FileFormat, write_export};
use pilotgate_domain::Actor;
use pilotgate_domain::time::to_micros;
use pilotgate_store::Store;

/// Writes the export of `experiment` into `out` and returns a one-line summary.
pub async fn export_experiment(
    store: &Store,
    experiment: &str,
    out: &Path,
    format: FileFormat,
) -> Result<String, String> {
    if store
        .experiment(experiment)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no pilot has the key '{experiment}'"));
    }
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
        assignment_columns.subject.push(a.subject.clone());
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
        event_columns.subject.push(e.subject.clone());
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
    let entry = store
        .record_audit(
            &Actor::operator(),
            "experiment.export",
            format!("experiment:{experiment}"),
            serde_json::json!({
                "format": format.extension(),
                "assignments": assignment_count,
                "events": event_count,
                "withdrawn_left_out": withdrawn,
            }),
        )
        .await
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
pub async fn write_memo(store: &Store, experiment: &str, out: &Path) -> Result<String, String> {
    use pilotgate_dashboards::Template;
    use sha2::Digest;
    let found = store
        .experiment(experiment)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no pilot has the key '{experiment}'"))?;
    let chrome = pilotgate_dashboards::Chrome::anonymous("Memo", "");
    let memo = crate::ui::memo_model(store, &found, chrome)
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
