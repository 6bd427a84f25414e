//! The customer's consent form, behind a privacy link: issuing a link for
//! a person (by raw id, pseudonymized here), showing the notice with the
//! person's current choices, and saving choices as ledger records (through
//! the same store path as `POST /api/v1/consents`) with a signed receipt.
//! The form page (`/privacy/{token}`) and its API twin
//! (`/api/v1/privacy/{token}`) both call here.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentRecord, ConsentStatus, NewConsent};
use pilotgate_domain::notice::status_of_choice;
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_store::{NewReceipt, NoticeVersion, StoreError, StoredNotice};

use super::ServiceError;
use super::notices::clip;
use crate::consent_input::check_user_id;
use crate::receipts::{ReceiptFacts, ReceiptPurpose, new_receipt_id, receipt_payload};
use crate::signing::{LinkClaims, LinkRefusal, open_link, seal_link, sign_receipt};
use crate::startup::AppState;

/// Why the form cannot be shown or saved; each maps to one status.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// 404: the link is not genuine, or what it names is gone.
    #[error("{0}")]
    NotFound(String),
    /// 410: the link expired.
    #[error("this privacy link has expired; ask the shop for a new one")]
    Expired,
    /// 403: the form's token does not belong to this link.
    #[error("the form does not belong to this link; reload the page and try again")]
    Forbidden,
    /// 409: the notice shown is not a published version any more, or the store refused.
    #[error("{0}")]
    Conflict(String),
    /// 422: the choices are not valid.
    #[error("{0}")]
    Unprocessable(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for FormError {
    fn from(error: StoreError) -> Self {
        FormError::Service(ServiceError::Store(error))
    }
}

/// A link issued for a person.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedLink {
    /// `/privacy/{token}`: the token names the person by pseudonym only, signed.
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// What the person chose before, for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentChoice {
    Allowed { since: DateTime<Utc> },
    NotAllowed,
    NoChoice,
}

/// One purpose of the notice on the form.
#[derive(Debug, Clone)]
pub struct PurposeState {
    pub key: String,
    pub sentence: String,
    /// Registered (and so offered); a retired or unknown purpose is shown as no longer offered.
    pub offered: bool,
    pub current: CurrentChoice,
    /// The purpose allows legitimate interest: a GPC signal objects to it.
    pub allows_legitimate_interest: bool,
}

/// The form as it is shown: the notice's latest version in one language.
#[derive(Debug, Clone)]
pub struct FormState {
    pub claims: LinkClaims,
    pub notice: StoredNotice,
    pub version: NoticeVersion,
    pub language: String,
    pub purposes: Vec<PurposeState>,
}

/// One choice: allow the purpose or not.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub purpose: String,
    pub allow: bool,
}

/// A ledger record a save appended.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SavedRecord {
    pub id: i64,
    pub purpose: String,
    pub basis: String,
    pub status: String,
}

/// What a save did, with the signed receipt.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Saved {
    pub receipt_id: String,
    /// The receipt: a JWS compact serialization (HS256) of Kantara v1.1 fields.
    pub receipt: String,
    pub notice_id: String,
    pub notice_version: u32,
    pub records: Vec<SavedRecord>,
    /// Purposes a Global Privacy Control signal was recorded as an objection to.
    pub gpc_objections: Vec<String>,
}

/// Issues a privacy link for the person `user_id` to the notice `notice`.
pub async fn issue_link(
    state: &AppState,
    user_id: &str,
    notice: &str,
) -> Result<IssuedLink, ServiceError> {
    check_user_id(user_id).map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
    let found = state.store.notice(notice).await?;
    if found.is_none() {
        return Err(ServiceError::Store(StoreError::NotFound(format!(
            "no notice is called '{}'",
            clip(notice)
        ))));
    }
    let candidates = state.keys.candidates(user_id);
    // Seen together now: an erasure by any of them reaches the others.
    state
        .store
        .link_pseudonyms(&candidates[0], &candidates[1..])
        .await?;
    let expires_at = pilotgate_domain::time::truncate_to_micros(
        state.store.now() + Duration::minutes(state.privacy.link_minutes),
    );
    let claims = LinkClaims {
        subject: candidates[0].clone(),
        notice: notice.to_owned(),
        expires_at,
        nonce: hex::encode(rand::random::<[u8; 12]>()),
    };
    let token =
        seal_link(&claims, &state.keys).ok_or_else(|| ServiceError::internal("no current key"))?;
    Ok(IssuedLink {
        url: format!("/privacy/{token}"),
        expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The claims of a genuine, unexpired link.
pub fn claims(state: &AppState, token: &str) -> Result<LinkClaims, FormError> {
    open_link(token, &state.keys, state.store.now()).map_err(|refusal| match refusal {
        LinkRefusal::Expired => FormError::Expired,
        LinkRefusal::Invalid => FormError::NotFound(
            "this privacy link is not valid; check that it was copied whole, or ask the shop for a new one".to_owned(),
        ),
    })
}

async fn notice_of(state: &AppState, claims: &LinkClaims) -> Result<StoredNotice, FormError> {
    state
        .store
        .notice(&claims.notice)
        .await?
        .filter(|n| !n.versions.is_empty())
        .ok_or_else(|| FormError::NotFound("the notice of this link no longer exists".to_owned()))
}

/// The person's current choice per purpose under the basis consent.
fn current_choice(records: &[ConsentRecord], purpose: &str, now: DateTime<Utc>) -> CurrentChoice {
    let in_force = records
        .iter()
        .filter(|r| {
            r.purpose == purpose && r.basis == LegalBasis::Consent && r.effective_from <= now
        })
        .max_by_key(|r| (r.effective_from, r.id));
    match in_force {
        Some(r) if r.status == ConsentStatus::Granted => {
            if r.expires_at.is_some_and(|at| at <= now) {
                CurrentChoice::NoChoice
            } else {
                CurrentChoice::Allowed {
                    since: r.effective_from,
                }
            }
        }
        Some(_) => CurrentChoice::NotAllowed,
        None => CurrentChoice::NoChoice,
    }
}

/// The form for the link `token`, in the language asked for (`?lang=`,
/// then `Accept-Language`, then English).
pub async fn open(
    state: &AppState,
    token: &str,
    lang: Option<&str>,
    accept_language: Option<&str>,
) -> Result<FormState, FormError> {
    let claims = claims(state, token)?;
    let notice = notice_of(state, &claims).await?;
    let version = notice
        .latest()
        .cloned()
        .expect("a stored notice has a version");
    let language = version.content.pick_language(lang, accept_language);
    let registered = registered(state).await?;
    let history = history_of(state, &claims.subject).await?.0;
    let now = state.store.now();
    let text = &version.content.languages[&language];
    let purposes = version
        .content
        .purposes
        .iter()
        .map(|key| PurposeState {
            key: key.clone(),
            sentence: text.purposes.get(key).cloned().unwrap_or_default(),
            offered: registered.contains_key(key),
            current: current_choice(&history, key, now),
            allows_legitimate_interest: registered
                .get(key)
                .is_some_and(|p| p.allowed_bases.contains(&LegalBasis::LegitimateInterest)),
        })
        .collect();
    Ok(FormState {
        claims,
        notice,
        version,
        language,
        purposes,
    })
}

/// The person's ledger under the link's pseudonym and every pseudonym
/// linked to it (older key versions), and those linked pseudonyms.
async fn history_of(
    state: &AppState,
    subject: &Pseudonym,
) -> Result<(Vec<ConsentRecord>, Vec<Pseudonym>), FormError> {
    let aliases = state.store.linked_aliases(subject).await?;
    let names: Vec<String> = std::iter::once(subject)
        .chain(&aliases)
        .map(|p| p.as_str().to_owned())
        .collect();
    Ok((state.store.consent_history(&names).await?, aliases))
}

/// The purposes the form offers: registered and not retired.
async fn registered(state: &AppState) -> Result<HashMap<String, Purpose>, FormError> {
    Ok(state
        .store
        .list_purpose_records()
        .await?
        .into_iter()
        .filter(|record| record.retired_at.is_none())
        .map(|record| (record.purpose.key.to_string(), record.purpose))
        .collect())
}

/// Saves `choices` made on version `notice_version` of the link's notice:
/// one consent record per choice (granted; or withdrawn when consent is
/// granted now, denied otherwise), channel `privacy_center`; with `gpc`,
/// an objection under legitimate interest to each purpose of the notice
/// that allows it. Then signs and keeps the receipt.
pub async fn save(
    state: &AppState,
    token: &str,
    notice_version: u32,
    choices: &[Choice],
    gpc: bool,
    language: Option<&str>,
) -> Result<Saved, FormError> {
    let claims = claims(state, token)?;
    let notice = notice_of(state, &claims).await?;
    let shown = notice.version(notice_version).cloned().ok_or_else(|| {
        FormError::Conflict(
            "the notice changed since the page was loaded; reload it and choose again".to_owned(),
        )
    })?;
    if choices.is_empty() {
        return Err(FormError::Unprocessable(
            "choices: choose yes or no for at least one purpose".to_owned(),
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
        if !registered.contains_key(&choice.purpose) {
            return Err(FormError::Unprocessable(format!(
                "choices: '{}' is no longer offered",
                choice.purpose
            )));
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
        proof_ref: Some(format!("receipt:{receipt_id}")),
    };
    let mut drafts = Vec::new();
    for choice in choices {
        let purpose = &registered[&choice.purpose];
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
            if let Some(purpose) = registered
                .get(key)
                .filter(|p| p.allowed_bases.contains(&LegalBasis::LegitimateInterest))
            {
                drafts.push(draft(
                    purpose,
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
        .map(|(r, a)| ReceiptPurpose {
            purpose: r.purpose.to_string(),
            description: text
                .purposes
                .get(r.purpose.as_str())
                .cloned()
                .unwrap_or_default(),
            status: r.status.as_str().to_owned(),
            basis: r.basis.as_str().to_owned(),
            record_id: a.id,
            retention_days: registered[r.purpose.as_str()].retention_days,
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

/// The receipt `receipt_id` of the link's person, as the JWS.
pub async fn receipt(state: &AppState, token: &str, receipt_id: &str) -> Result<String, FormError> {
    let claims = claims(state, token)?;
    let not_found = || FormError::NotFound("there is no such receipt for this link".to_owned());
    if !crate::receipts::is_receipt_id(receipt_id) {
        return Err(not_found());
    }
    state
        .store
        .receipt(receipt_id, claims.subject.as_str())
        .await?
        .ok_or_else(not_found)
}
