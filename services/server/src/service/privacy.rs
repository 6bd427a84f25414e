//! The customer's consent form, behind a privacy link: issuing a link for
//! a person (by raw id, pseudonymized here; the link's token is opaque and
//! kept only as its hash), showing the notice with the person's current
//! choices, and saving choices as ledger records (through the same store
//! path as `POST /api/v1/consents`) with a signed receipt (`privacy_save.rs`).
//! The form page (`/privacy/{token}`) and its API twin
//! (`/api/v1/privacy/{token}`) both call here.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{ConsentRecord, ConsentStatus};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::purpose::LegalBasis;
use pilotgate_store::{NewPrivacyLink, NoticeVersion, PurposeRecord, StoreError, StoredNotice};

use super::ServiceError;
use super::notices::clip;
use crate::consent_input::check_user_id;
use crate::signing::{is_link_token, link_hash, link_reference, new_link_token};
use crate::startup::AppState;

pub use super::privacy_save::save;

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
    /// `/privacy/{token}`: the token is 32 random bytes; it names no one.
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

/// Why a purpose of the notice cannot be allowed on the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Not a registered purpose: nothing can be chosen.
    Unknown,
    /// Retired: only a refusal (a withdrawal of what was given) is taken.
    Retired,
    /// The purpose needs a newer notice version than the notice's latest
    /// (`min_notice_version` above it): a consent under it would not count,
    /// so only a refusal is taken.
    NoticeTooOld { needed: u32 },
}

impl Limit {
    /// The API's name of the limit.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Unknown => "unknown",
            Limit::Retired => "retired",
            Limit::NoticeTooOld { .. } => "notice_too_old",
        }
    }
}

/// One purpose of the notice on the form.
#[derive(Debug, Clone)]
pub struct PurposeState {
    pub key: String,
    pub sentence: String,
    /// "Yes" may be chosen.
    pub may_allow: bool,
    /// "No" may be chosen (and the purpose is on the form): every registered
    /// purpose, except a retired one the person never had a record for.
    pub may_refuse: bool,
    /// Why "yes" is not offered, if it is not.
    pub limit: Option<Limit>,
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
    /// The reference of the privacy link the choices were made through
    /// (also in each record's `proof_ref` and in the receipt).
    pub privacy_link: String,
    pub records: Vec<SavedRecord>,
    /// Purposes a Global Privacy Control signal was recorded as an objection to.
    pub gpc_objections: Vec<String>,
}

/// Issues a privacy link for the person `user_id` to the notice `notice`.
pub async fn issue_link(
    state: &AppState,
    actor: &Actor,
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
    let token = new_link_token();
    state
        .store
        .issue_privacy_link(
            &NewPrivacyLink {
                id_hash: link_hash(&token),
                reference: link_reference(&token),
                subject: candidates[0].clone(),
                notice_id: notice.to_owned(),
                expires_at,
            },
            actor,
        )
        .await?;
    Ok(IssuedLink {
        url: format!("/privacy/{token}"),
        expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// What a genuine link says (kept server-side under the token's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub subject: Pseudonym,
    pub notice: String,
    pub expires_at: DateTime<Utc>,
    /// The link's short non-secret reference (see `signing::link_reference`).
    pub reference: String,
    /// The token that issued the link.
    pub issued_by: String,
}

/// The claims of a genuine, unexpired link: an unknown token is a 404,
/// an expired one a 410.
pub async fn claims(state: &AppState, token: &str) -> Result<LinkClaims, FormError> {
    let invalid = || {
        FormError::NotFound(
            "this privacy link is not valid; check that it was copied whole, or ask the shop for a new one".to_owned(),
        )
    };
    if !is_link_token(token) {
        return Err(invalid());
    }
    let link = state
        .store
        .privacy_link(&link_hash(token))
        .await?
        .ok_or_else(invalid)?;
    if state.store.now() >= link.expires_at {
        return Err(FormError::Expired);
    }
    Ok(LinkClaims {
        subject: link.subject,
        notice: link.notice_id,
        expires_at: link.expires_at,
        reference: link_reference(token),
        issued_by: link.issued_by,
    })
}

pub(super) async fn notice_of(
    state: &AppState,
    claims: &LinkClaims,
) -> Result<StoredNotice, FormError> {
    state
        .store
        .notice(&claims.notice)
        .await?
        .filter(|n| !n.versions.is_empty())
        .ok_or_else(|| FormError::NotFound("the notice of this link no longer exists".to_owned()))
}

/// The person's current choice per purpose under the basis consent.
pub(super) fn current_choice(
    records: &[ConsentRecord],
    purpose: &str,
    now: DateTime<Utc>,
) -> CurrentChoice {
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
    let claims = claims(state, token).await?;
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
        .map(|key| {
            let limit = limit_of(registered.get(key), version.version);
            PurposeState {
                key: key.clone(),
                sentence: text.purposes.get(key).cloned().unwrap_or_default(),
                may_allow: limit.is_none(),
                may_refuse: match limit {
                    None | Some(Limit::NoticeTooOld { .. }) => true,
                    Some(Limit::Unknown) => false,
                    Some(Limit::Retired) => history.iter().any(|r| r.purpose.as_str() == key),
                },
                limit,
                current: current_choice(&history, key, now),
                allows_legitimate_interest: registered.get(key).is_some_and(|p| {
                    p.purpose
                        .allowed_bases
                        .contains(&LegalBasis::LegitimateInterest)
                }),
            }
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
pub(super) async fn history_of(
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

/// Every registered purpose, retired ones included, by key.
pub(super) async fn registered(
    state: &AppState,
) -> Result<HashMap<String, PurposeRecord>, FormError> {
    Ok(state
        .store
        .list_purpose_records()
        .await?
        .into_iter()
        .map(|record| (record.purpose.key.to_string(), record))
        .collect())
}

/// Why "yes" cannot be chosen for `record` under notice version `version`.
pub(super) fn limit_of(record: Option<&PurposeRecord>, version: u32) -> Option<Limit> {
    match record {
        None => Some(Limit::Unknown),
        Some(r) if r.retired_at.is_some() => Some(Limit::Retired),
        Some(r) if r.purpose.min_notice_version > version => Some(Limit::NoticeTooOld {
            needed: r.purpose.min_notice_version,
        }),
        Some(_) => None,
    }
}

/// The receipt `receipt_id` of the link's person, as the JWS.
pub async fn receipt(state: &AppState, token: &str, receipt_id: &str) -> Result<String, FormError> {
    let claims = claims(state, token).await?;
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
