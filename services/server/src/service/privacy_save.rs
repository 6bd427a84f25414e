//! Saving the consent form's choices: one ledger record per choice (channel
//! `privacy_center`, the proof naming the receipt and the privacy link it
//! was made through), Global Privacy Control objections, and the signed
//! receipt. Choices are taken only on the notice's latest version; "yes" is
//! refused for a purpose that is retired or needs a newer notice, while
//! "no" (a refusal or withdrawal) is always taken for a registered purpose.

use std::collections::BTreeSet;

use pilotgate_domain::Actor;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus, NewConsent};
use pilotgate_domain::notice::status_of_choice;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_store::{NewReceipt, StoreError};

use super::ServiceError;
use super::notices::clip;
use super::privacy::{
    Choice, CurrentChoice, FormError, Limit, Saved, SavedRecord, claims, current_choice,
    history_of, limit_of, notice_of, registered,
};
use crate::receipts::{ReceiptFacts, ReceiptPurpose, new_receipt_id, receipt_payload};
use crate::signing::sign_receipt;
use crate::startup::AppState;

/// Saves `choices` made on version `notice_version` of the link's notice,
/// which must be its latest: one consent record per choice (granted; or
/// withdrawn when consent is granted now, denied otherwise), channel
/// `privacy_center`; with `gpc`, an objection under legitimate interest to
/// each purpose of the notice that allows it (retired ones too). Then signs
/// and keeps the receipt. No choice at all is a 422: nothing is recorded.
pub async fn save(
    state: &AppState,
    token: &str,
    notice_version: u32,
    choices: &[Choice],
    gpc: bool,
    language: Option<&str>,
) -> Result<Saved, FormError> {
    let claims = claims(state, token).await?;
    let notice = notice_of(state, &claims).await?;
    let shown = notice
        .latest()
        .filter(|latest| latest.version == notice_version)
        .cloned()
        .ok_or_else(|| {
            FormError::Conflict(
                "the notice changed since the form was shown; reload it and choose again"
                    .to_owned(),
            )
        })?;
    if choices.is_empty() {
        return Err(FormError::Unprocessable(
            "choices: nothing was chosen, so nothing was saved; choose yes or no for at least one purpose".to_owned(),
        ));
    }
    let registered = registered(state).await?;
    let mut seen = BTreeSet::new();
    for choice in choices {
        if !shown.content.purposes.contains(&choice.purpose) {
            return Err(FormError::Unprocessable(format!(
                "choices: '{}' is not a purpose of this notice",
                clip(&choice.purpose)
            )));
        }
        match limit_of(registered.get(&choice.purpose), shown.version) {
            Some(Limit::Unknown) => {
                return Err(FormError::Unprocessable(format!(
                    "choices: '{}' is no longer offered",
                    choice.purpose
                )));
            }
            Some(Limit::Retired) if choice.allow => {
                return Err(FormError::Unprocessable(format!(
                    "choices: '{}' is no longer offered: it can only be refused",
                    choice.purpose
                )));
            }
            Some(Limit::NoticeTooOld { needed }) if choice.allow => {
                return Err(FormError::Unprocessable(format!(
                    "choices: '{}' needs notice version {needed} or later, and this notice is at version {}: it can only be refused",
                    choice.purpose, shown.version
                )));
            }
            _ => {}
        }
        if !seen.insert(choice.purpose.as_str()) {
            return Err(FormError::Unprocessable(format!(
                "choices: '{}' is chosen twice",
                choice.purpose
            )));
        }
    }
    let now = state.store.now();
    let (history, aliases) = history_of(state, &claims.subject).await?;
    let receipt_id = new_receipt_id();
    let method = if gpc { "form+gpc" } else { "form" };
    let proof_ref = format!("receipt:{receipt_id};privacy-link:{}", claims.reference);
    let draft = |purpose: &Purpose, basis, status, method: &str| ConsentDraft {
        subject: claims.subject.clone(),
        purpose: purpose.key.clone(),
        basis,
        status,
        notice_id: notice.id.clone(),
        notice_version,
        channel: Channel::PrivacyCenter,
        method: method.to_owned(),
        collected_at: now,
        effective_from: None,
        expires_at: None,
        proof_ref: Some(proof_ref.clone()),
    };
    let mut drafts = Vec::new();
    for choice in choices {
        let purpose = &registered[&choice.purpose].purpose;
        let granted_now = matches!(
            current_choice(&history, &choice.purpose, now),
            CurrentChoice::Allowed { .. }
        );
        let status = status_of_choice(choice.allow, granted_now);
        drafts.push(draft(purpose, LegalBasis::Consent, status, method));
    }
    let mut gpc_objections = Vec::new();
    if gpc {
        for key in &shown.content.purposes {
            if let Some(record) = registered.get(key).filter(|r| {
                r.purpose
                    .allowed_bases
                    .contains(&LegalBasis::LegitimateInterest)
            }) {
                drafts.push(draft(
                    &record.purpose,
                    LegalBasis::LegitimateInterest,
                    ConsentStatus::Objected,
                    "gpc",
                ));
                gpc_objections.push(key.clone());
            }
        }
    }
    let mut records = drafts
        .into_iter()
        .map(|d| d.finish(now))
        .collect::<Result<Vec<NewConsent>, _>>()
        .map_err(|e| FormError::Service(ServiceError::internal(e)))?;
    // A withdrawal or objection acts on the person's other pseudonyms too.
    for record in &mut records {
        record.aliases = aliases.clone();
    }
    let appended = state
        .store
        .append_consents(&records, &Actor::customer())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) | StoreError::Forbidden(m) | StoreError::NotFound(m) => {
                FormError::Conflict(format!("your choices could not be saved: {m}"))
            }
            other => FormError::from(other),
        })?;
    let language = shown.content.pick_language(language, None);
    let text = &shown.content.languages[&language];
    let purposes: Vec<ReceiptPurpose> = records
        .iter()
        .zip(&appended)
        .map(|(r, a)| {
            let purpose = &registered[r.purpose.as_str()].purpose;
            ReceiptPurpose {
                purpose: r.purpose.to_string(),
                description: text
                    .purposes
                    .get(r.purpose.as_str())
                    .cloned()
                    .unwrap_or_default(),
                status: r.status.as_str().to_owned(),
                basis: r.basis.as_str().to_owned(),
                record_id: a.id,
                retention_days: purpose.retention_days,
                special_category: purpose.special_category,
            }
        })
        .collect();
    let payload = receipt_payload(
        &state.privacy,
        &ReceiptFacts {
            id: &receipt_id,
            subject: claims.subject.as_str(),
            language: &language,
            notice_id: &notice.id,
            notice_version,
            collected_at: now,
            method,
            service: &text.title,
            purposes: &purposes,
            link: &claims.reference,
        },
    );
    let jws = sign_receipt(&payload, &state.keys);
    state
        .store
        .store_receipt(
            &NewReceipt {
                id: receipt_id.clone(),
                subject: claims.subject.as_str().to_owned(),
                key_version: claims.subject.key_version(),
                notice_id: notice.id.clone(),
                notice_version,
                jws: jws.clone(),
            },
            &Actor::customer(),
        )
        .await?;
    Ok(Saved {
        receipt_id,
        receipt: jws,
        notice_id: notice.id,
        notice_version,
        privacy_link: claims.reference,
        records: purposes
            .into_iter()
            .map(|p| SavedRecord {
                id: p.record_id,
                purpose: p.purpose,
                basis: p.basis,
                status: p.status,
            })
            .collect(),
        gpc_objections,
    })
}
