//! `POST /api/v1/events`: conversion and exposure events, up to 1000 at a time.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use pilotgate_domain::consent::MAX_CLOCK_SKEW_MINUTES;
use pilotgate_domain::refusal::Refusal;
use pilotgate_store::{EventDraft, EventFate};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::Caller;
use crate::consent_input::{FieldError, check_user_id, parse_time};
use crate::error::extractors::redact_values;
use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

/// The most events one request may carry.
pub const MAX_EVENTS: usize = 1000;

/// One event as the client sends it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// The client's idempotency key, unique per user: sending the same event
    /// again (same id, user and `occurred_at`) stores nothing new.
    pub event_id: String,
    /// The raw id; pseudonymized on arrival, never stored.
    pub user_id: String,
    /// The metric's event name, e.g. `purchase`.
    pub name: String,
    pub value: Option<f64>,
    /// RFC 3339.
    pub occurred_at: String,
}

/// A batch of events.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventBatch {
    pub events: Vec<EventInput>,
}

impl std::fmt::Debug for EventInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventInput")
            .field("event_id", &self.event_id)
            .field("user_id", &"[redacted]")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An event that was not stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefusedEvent {
    pub index: usize,
    pub event_id: Option<String>,
    /// `invalid`, `no_assignment`, `not_a_metric`, `before_assignment`, or an eligibility reason code.
    pub reason: String,
    /// For `invalid`: which field and why.
    pub message: Option<String>,
}

/// What the batch did. Accepted events are committed before this answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub refused: Vec<RefusedEvent>,
}

/// The body as it arrives: each event still raw, so that one malformed event
/// is refused alone and the others are parsed straight into [`EventInput`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// Just the id of an event that failed to parse, to name it in the refusal.
#[derive(Deserialize)]
struct IdOnly {
    event_id: Option<String>,
}

/// An event that passed validation, its time parsed.
struct Valid {
    input: EventInput,
    occurred_at: DateTime<Utc>,
}

fn parse_event(raw: &RawValue, now: DateTime<Utc>) -> Result<Valid, (Option<String>, FieldError)> {
    let input: EventInput = serde_json::from_str(raw.get()).map_err(|e| {
        let event_id = serde_json::from_str::<IdOnly>(raw.get())
            .ok()
            .and_then(|only| only.event_id)
            .map(|id| id.chars().take(128).collect::<String>());
        (
            event_id,
            FieldError::new("event", redact_values(&e.to_string())),
        )
    })?;
    let event_id = Some(input.event_id.chars().take(128).collect::<String>());
    let fail = |field: &str, reason: &str| Err((event_id.clone(), FieldError::new(field, reason)));
    if let Err(error) = pilotgate_domain::text::PlainText::line(&input.event_id, 128) {
        return fail("event_id", &error.to_string());
    }
    check_user_id(&input.user_id).map_err(|e| (event_id.clone(), e))?;
    if input.name.is_empty()
        || input.name.len() > 100
        || !input
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    {
        return fail(
            "name",
            "must be 1 to 100 of letters, digits, '_', '.', ':' and '-'",
        );
    }
    if input
        .value
        .is_some_and(|v| !v.is_finite() || v.abs() > 1e15)
    {
        return fail("value", "must be a finite number of magnitude at most 1e15");
    }
    let occurred_at =
        parse_time("occurred_at", &input.occurred_at).map_err(|e| (event_id.clone(), e))?;
    if occurred_at > now + Duration::minutes(MAX_CLOCK_SKEW_MINUTES) {
        return fail("occurred_at", "lies in the future");
    }
    if occurred_at.timestamp() < 946_684_800 {
        return fail("occurred_at", "must be after 2000-01-01");
    }
    Ok(Valid { input, occurred_at })
}

/// A batch parsed: the valid events pseudonymized, where each sat in the
/// batch, and the invalid ones refused.
struct Parsed {
    drafts: Vec<EventDraft>,
    /// The client's event ids of `drafts`, as sent (the drafts hold them keyed).
    sent_ids: Vec<String>,
    positions: Vec<usize>,
    refused: Vec<RefusedEvent>,
}

fn parse_batch(state: &AppState, body: &RawValue) -> Result<Parsed, ApiError> {
    let RawBatch { events: raws } = serde_json::from_str(body.get())
        .map_err(|_| ApiError::Unprocessable("the body must be {\"events\": [...]}".to_owned()))?;
    if raws.is_empty() {
        return Err(ApiError::Unprocessable("`events` is empty".to_owned()));
    }
    if raws.len() > MAX_EVENTS {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds at most {MAX_EVENTS} events; this one has {}",
            raws.len()
        )));
    }
    let now = state.store.now();
    let mut parsed = Parsed {
        drafts: Vec::with_capacity(raws.len()),
        sent_ids: Vec::with_capacity(raws.len()),
        positions: Vec::with_capacity(raws.len()),
        refused: Vec::new(),
    };
    for (index, raw) in raws.into_iter().enumerate() {
        match parse_event(raw, now) {
            Ok(Valid { input, occurred_at }) => {
                parsed.drafts.push(EventDraft {
                    subjects: state
                        .keys
                        .candidates(&input.user_id)
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                    event_id: state.event_ids.key(&input.event_id),
                    name: input.name,
                    value: input.value,
                    occurred_at,
                });
                parsed.positions.push(index);
                parsed.sent_ids.push(input.event_id);
            }
            Err((event_id, error)) => parsed.refused.push(RefusedEvent {
                index,
                event_id,
                reason: Refusal::Invalid.as_str().to_owned(),
                message: Some(error.to_string()),
            }),
        }
    }
    Ok(parsed)
}

/// Stores each event whose subject holds an assignment in a running pilot that
/// measures it and was eligible for the pilot's purpose when it occurred;
/// refuses the others with a reason and stores nothing of them.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = EventBatch, security(("bearer" = [])), responses(
    (status = 200, body = EventsOutcome),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[post("/api/v1/events")]
pub async fn record(
    _caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    // Parsing and pseudonymizing a batch takes a millisecond or more: off the
    // HTTP worker threads, so that other requests do not wait behind it.
    let parser = state.clone();
    let Parsed {
        drafts,
        sent_ids: event_ids,
        positions,
        mut refused,
    } = tokio::task::spawn_blocking(move || parse_batch(&parser, &body))
        .await
        .map_err(|_| ApiError::Internal)??;
    let fates = state.store.record_events(drafts).await?;
    let (mut accepted, mut duplicates) = (0, 0);
    for ((fate, index), event_id) in fates.into_iter().zip(positions).zip(event_ids) {
        match fate {
            EventFate::Accepted => accepted += 1,
            EventFate::Duplicate => duplicates += 1,
            EventFate::Refused(reason) => refused.push(RefusedEvent {
                index,
                event_id: Some(event_id),
                reason: reason.as_str().to_owned(),
                message: None,
            }),
        }
    }
    refused.sort_by_key(|r| r.index);
    Ok(HttpResponse::Ok().json(EventsOutcome {
        accepted,
        duplicates,
        refused,
    }))
}
