//! The pilot the demo plays through the HTTP API, day by simulated day, and
//! the check of every answer the server gives against what the simulated
//! population implies (who may be assigned, which events must be stored).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use pilotgate_store::Store;
use serde_json::{Value, json};

use super::client::Api;
use super::population::{
    BASELINE, Person, Standing, VISIT_MINUTE, WITHDRAW_MINUTE, conversion_rate, population,
};
use super::summary::DemoReport;
use super::{DemoOptions, DemoTokens, first_day};

/// The purpose the pilot runs under: it allows consent and legitimate interest.
const PURPOSE: &str = "analytics.storefront.ab_testing";
const CONTROL: &str = "control";
const TREATMENT: &str = "one_page_checkout";
/// Visitors whose assignment calls are in flight at once.
const VISITORS_IN_FLIGHT: usize = 16;
/// Events per `POST /api/v1/events` and records per `POST /api/v1/consents`.
const PER_CALL: usize = 1000;
/// The minute of the pilot's last day the erasure request is handled at.
const ERASE_MINUTE: u32 = 6 * 60;
/// The minute of each day the day's events are sent at (after they happened).
const SEND_MINUTE: u32 = 23 * 60;
/// Mismatches kept word for word in the report (all are counted).
const MISMATCHES_SHOWN: usize = 10;

mod checks;

/// Whether a visit is the first (the assignment) or a return to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    First,
    Return,
}

/// The pilot of one demo run and what has happened in it so far.
pub(super) struct Pilot<'a> {
    options: &'a DemoOptions,
    store: &'a Store,
    tokens: &'a DemoTokens,
    api: Api,
    key: String,
    run: u32,
    people: Vec<Person>,
    day0: DateTime<Utc>,
    /// Each person's variant from its first visit.
    variants: Vec<Option<String>>,
    /// The person who asks for erasure on the last day.
    erased: Option<usize>,
    report: DemoReport,
}

impl<'a> Pilot<'a> {
    pub(super) fn new(
        options: &'a DemoOptions,
        run: u32,
        store: &'a Store,
        tokens: &'a DemoTokens,
        base: &str,
    ) -> Pilot<'a> {
        let people = population(options.subjects, options.days, options.seed);
        let last = options.days - 1;
        let erased = people.iter().position(|p| {
            p.standing.refusal().is_none()
                && p.leaving_day(options.days).is_none()
                && p.arrival_day < last
        });
        Pilot {
            options,
            store,
            tokens,
            api: Api::new(base.to_owned()),
            key: format!("demo-pilot-{run}"),
            run,
            variants: vec![None; people.len()],
            people,
            day0: first_day(options.days),
            erased,
            report: DemoReport::default(),
        }
    }

    /// Plays the whole pilot and reads its results.
    pub(super) async fn run(mut self) -> Result<DemoReport, String> {
        self.prepare().await?;
        for day in 0..self.options.days {
            self.play_day(day).await?;
        }
        self.store.simulate_time(None);
        self.read_results().await?;
        self.draft_next_pilot().await?;
        self.report.experiment = self.key.clone();
        self.report.subjects = self.options.subjects;
        self.report.days = self.options.days;
        self.report.true_lift = self.options.true_lift;
        Ok(self.report)
    }

    /// A second pilot mia designed but has not submitted, so that a new user
    /// can walk design, submit, approve and start in the browser.
    async fn draft_next_pilot(&mut self) -> Result<(), String> {
        let key = format!("demo-draft-{}", self.run);
        let design = demo_design(
            &key,
            &format!("Free-shipping banner (demo draft {})", self.run),
            "A free-shipping banner on the cart page lifts the purchase rate by at least 10%",
            ["control", "banner"],
            0.5,
        );
        self.api
            .post("/api/v1/experiments", &self.tokens.marketer, &design)
            .await?;
        self.report.draft = Some(key);
        Ok(())
    }

    fn at(&self, day: i64, minute: u32) -> DateTime<Utc> {
        self.day0 + TimeDelta::days(day) + TimeDelta::minutes(i64::from(minute))
    }

    fn set_clock(&self, day: i64, minute: u32) {
        self.store.simulate_time(Some(self.at(day, minute)));
    }

    fn user_id(&self, person: usize) -> String {
        format!("demo{}-user{person:07}", self.run)
    }

    /// The day before the pilot: the purpose, the consent inventory, the design,
    /// its review; then the start at midnight.
    async fn prepare(&mut self) -> Result<(), String> {
        self.set_clock(-1, 9 * 60);
        let purposes = self
            .api
            .get("/api/v1/purposes", &self.tokens.compliance)
            .await?;
        let known = purposes["purposes"]
            .as_array()
            .or(purposes.as_array())
            .is_some_and(|list| list.iter().any(|p| p["key"] == PURPOSE));
        if !known {
            self.api
                .post(
                    "/api/v1/purposes",
                    &self.tokens.compliance,
                    &json!({
                        "key": PURPOSE,
                        "description": "A/B tests of the storefront's pages and wording, without profiling",
                        "allowed_bases": ["consent", "legitimate_interest"],
                        "min_notice_version": 2,
                        "retention_days": 180
                    }),
                )
                .await?;
            self.api
                .post(
                    &format!("/api/v1/purposes/{PURPOSE}/assessments"),
                    &self.tokens.compliance,
                    &json!({
                        "purpose_test": "Finding which storefront wording helps customers complete a purchase is a legitimate interest of the shop and of its customers.",
                        "necessity_test": "Comparing two versions of a page on pseudonymous visitors is the least intrusive way to know; no profile is built.",
                        "interests": "A checkout that works better for customers; fewer abandoned orders.",
                        "expectations": "Customers of an online shop expect it to improve its pages; nothing is inferred about them.",
                        "safeguards": "Pseudonyms only, 180-day retention, objection honoured at once, no profiling, results in aggregate.",
                        "outcome": "positive",
                        "reviewer": "Dana (DPO)",
                        "reviewed_on": self.at(-1, 0).format("%Y-%m-%d").to_string()
                    }),
                )
                .await?;
        }
        let inventory: Vec<Value> = (0..self.people.len())
            .filter_map(|i| self.inventory_record(i))
            .collect();
        for (n, chunk) in inventory.chunks(PER_CALL).enumerate() {
            self.append_consents(chunk).await?;
            eprint!(
                "\rconsent inventory: {} of {} records",
                (n * PER_CALL + chunk.len()),
                inventory.len()
            );
        }
        eprintln!();
        self.report.inventory_records = inventory.len();
        let design = demo_design(
            &self.key,
            &format!("One-page checkout (demo run {})", self.run),
            "A one-page checkout lifts the share of visitors who buy by at least 10%",
            [CONTROL, TREATMENT],
            1.0,
        );
        let marketer = &self.tokens.marketer;
        self.api
            .post("/api/v1/experiments", marketer, &design)
            .await?;
        let path = format!("/api/v1/experiments/{}", self.key);
        self.api
            .post(&format!("{path}/submit"), marketer, &json!({}))
            .await?;
        self.set_clock(-1, 15 * 60);
        self.api
            .post(
                &format!("{path}/approve"),
                &self.tokens.compliance,
                &json!({"design_version": 1, "comment": "Legitimate interest assessed (LIA-2026-014); no profiling; 90 days retention."}),
            )
            .await?;
        self.set_clock(0, 0);
        self.api
            .post(&format!("{path}/start"), marketer, &json!({}))
            .await?;
        Ok(())
    }

    /// Appends consent records; every one must be stored.
    async fn append_consents(&self, records: &[Value]) -> Result<(), String> {
        let answer = self
            .api
            .post(
                "/api/v1/consents",
                &self.tokens.ingest,
                &json!({ "records": records }),
            )
            .await?;
        match answer["invalid"].as_array().and_then(|list| list.first()) {
            Some(bad) => Err(format!(
                "POST /api/v1/consents refused a record: {}: {}",
                bad["field"].as_str().unwrap_or("?"),
                bad["reason"].as_str().unwrap_or("?")
            )),
            None => Ok(()),
        }
    }

    /// The inventory's record of a person, if it has one.
    fn inventory_record(&self, i: usize) -> Option<Value> {
        let person = &self.people[i];
        let basis = person.standing.basis()?;
        let status = match person.standing {
            Standing::Denied => "denied",
            Standing::Withdrawn => "withdrawn",
            Standing::Objected => "objected",
            _ => "granted",
        };
        let notice_version = if person.standing == Standing::StaleNotice {
            1
        } else {
            2
        };
        let channel = if i.is_multiple_of(3) { "app" } else { "banner" };
        // Before the import (day -1, 09:00) even for the newest records.
        let collected = self.at(-i64::from(person.collected_days_before), 8 * 60);
        Some(json!({
            "user_id": self.user_id(i),
            "purpose": PURPOSE,
            "basis": basis,
            "status": status,
            "notice_id": "privacy-notice",
            "notice_version": notice_version,
            "source": {"channel": channel, "method": "click"},
            "collected_at": rfc3339(collected),
            "proof_ref": format!("cmp://receipts/{}", i % 9973)
        }))
    }

    fn converts(&self, person: usize) -> bool {
        let treated = self.variants[person].as_deref() == Some(TREATMENT);
        self.people[person].conversion_draw < conversion_rate(treated, self.options.true_lift)
    }

    async fn play_day(&mut self, day: u32) -> Result<(), String> {
        let last = self.options.days - 1;
        if day == last {
            self.erase().await?;
        }
        self.set_clock(i64::from(day), VISIT_MINUTE);
        let visits: Vec<(usize, Visit)> = (0..self.people.len())
            .filter_map(|i| {
                let person = &self.people[i];
                if person.arrival_day == day {
                    Some((i, Visit::First))
                } else {
                    let buys = self.variants[i].is_some()
                        && person.purchase_day(self.converts(i), self.options.days) == Some(day);
                    buys.then_some((i, Visit::Return))
                }
            })
            .collect();
        let answers = self.assign_all(&visits).await?;
        for ((person, visit), answer) in visits.iter().zip(answers) {
            self.check_visit(*person, *visit, day, &answer);
        }

        self.set_clock(i64::from(day), WITHDRAW_MINUTE);
        let leaving: Vec<usize> = (0..self.people.len())
            .filter(|&i| {
                self.variants[i].is_some()
                    && self.people[i].leaving_day(self.options.days) == Some(day)
            })
            .collect();
        let records: Vec<Value> = leaving
            .iter()
            .map(|&i| {
                let who = &self.people[i];
                json!({
                    "user_id": self.user_id(i),
                    "purpose": PURPOSE,
                    "basis": who.standing.basis().unwrap_or("consent"),
                    "status": who.standing.leaving_status(),
                    "notice_id": "privacy-notice",
                    "notice_version": 2,
                    "source": {"channel": "privacy_center", "method": "click"},
                    "collected_at": rfc3339(self.at(i64::from(day), WITHDRAW_MINUTE)),
                })
            })
            .collect();
        for chunk in records.chunks(PER_CALL) {
            self.append_consents(chunk).await?;
        }
        self.report.withdrawals += leaving.len() as u64;

        self.set_clock(i64::from(day), SEND_MINUTE);
        let (accepted_before, refused_before) = (
            self.report.events_accepted,
            self.report.events_refused.values().sum::<u64>(),
        );
        self.send_events(day).await?;
        eprintln!(
            "day {:>2}/{} {}: {} visits, {} assigned so far, {} withdrew, events {} stored / {} refused",
            day + 1,
            self.options.days,
            self.at(i64::from(day), 0).format("%Y-%m-%d"),
            visits.len(),
            self.report.assigned.values().sum::<u64>(),
            leaving.len(),
            self.report.events_accepted - accepted_before,
            self.report.events_refused.values().sum::<u64>() - refused_before,
        );
        Ok(())
    }

    /// The assignment calls of one day, [`VISITORS_IN_FLIGHT`] at a time; the
    /// answers in the order of `visits`.
    async fn assign_all(&self, visits: &[(usize, Visit)]) -> Result<Vec<Value>, String> {
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..VISITORS_IN_FLIGHT {
            let calls: Vec<(usize, Value)> = visits
                .iter()
                .enumerate()
                .skip(lane)
                .step_by(VISITORS_IN_FLIGHT)
                .map(|(slot, (person, _))| {
                    (
                        slot,
                        json!({"experiment": self.key, "user_id": self.user_id(*person)}),
                    )
                })
                .collect();
            let (api, token) = (self.api.clone(), self.tokens.ingest.clone());
            tasks.spawn(async move {
                let mut answers = Vec::with_capacity(calls.len());
                for (slot, body) in calls {
                    answers.push((slot, api.post("/api/v1/assign", &token, &body).await?));
                }
                Ok::<_, String>(answers)
            });
        }
        let mut answers = vec![Value::Null; visits.len()];
        while let Some(lane) = tasks.join_next().await {
            for (slot, answer) in lane.map_err(|e| format!("an assignment call failed: {e}"))?? {
                answers[slot] = answer;
            }
        }
        Ok(answers)
    }

    /// The day's purchases and support contacts, sent at the end of the day. Buyers who
    /// were never assigned send theirs too: the server must refuse them.
    async fn send_events(&mut self, day: u32) -> Result<(), String> {
        let mut events = Vec::new();
        let mut expected_accepted = 0;
        for i in 0..self.people.len() {
            let person = &self.people[i];
            let mut event = |name: &str, minute: u32| {
                let at = self.at(i64::from(day), minute) + TimeDelta::seconds(30);
                // Sent at the end of the day: refused when the person was not
                // eligible when it occurred, or withdrew or objected before it
                // was sent (whatever time it claims).
                if self.variants[i].is_some()
                    && self.expected_refusal(i, day, minute).is_none()
                    && self.expected_refusal(i, day, SEND_MINUTE).is_none()
                {
                    expected_accepted += 1;
                }
                events.push(json!({
                    "event_id": format!("demo{}-{name}-{i}", self.run),
                    "user_id": self.user_id(i),
                    "name": name,
                    "occurred_at": rfc3339(at),
                }));
            };
            if self.variants[i].is_some() {
                let bought = person.purchase_day(self.converts(i), self.options.days);
                if bought == Some(day) {
                    event("purchase", person.purchase_minute);
                }
                if person.support_day(self.options.days) == Some(day) {
                    event("support_contact", person.support_minute);
                }
            } else if person.arrival_day == day && person.conversion_draw < BASELINE {
                event("purchase", person.purchase_minute);
            }
        }
        self.report.events_expected_accepted += expected_accepted;
        for chunk in events.chunks(PER_CALL) {
            let answer = self
                .api
                .post(
                    "/api/v1/events",
                    &self.tokens.ingest,
                    &json!({ "events": chunk }),
                )
                .await?;
            self.report.events_sent += chunk.len() as u64;
            self.report.events_accepted += answer["accepted"].as_u64().unwrap_or(0);
            for refusal in answer["refused"].as_array().into_iter().flatten() {
                let reason = refusal["reason"].as_str().unwrap_or("unknown").to_owned();
                *self.report.events_refused.entry(reason).or_default() += 1;
            }
        }
        Ok(())
    }

    /// The erasure request of one subject, handled by compliance early on the
    /// pilot's last day.
    async fn erase(&mut self) -> Result<(), String> {
        let Some(person) = self.erased else {
            return Ok(());
        };
        self.set_clock(i64::from(self.options.days - 1), ERASE_MINUTE);
        let token = &self.tokens.compliance;
        let resolved = self
            .api
            .post(
                "/api/v1/subjects/resolve",
                token,
                &json!({"user_id": self.user_id(person)}),
            )
            .await?;
        let subject = resolved["subject"]
            .as_str()
            .ok_or("the resolve answer has no subject")?;
        let receipt = self
            .api
            .post(
                &format!("/api/v1/subjects/{subject}/erasure"),
                token,
                &json!({}),
            )
            .await?;
        self.report.erased = 1;
        self.report.erased_events = receipt["deleted"]["events"].as_u64().unwrap_or(0);
        if let Some(variant) = self.variants[person].as_ref() {
            *self.report.erased_from.entry(variant.clone()).or_default() += 1;
        }
        Ok(())
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A demo pilot's design on the demo purpose: two equal variants, purchases
/// as the primary metric and support contacts as the guardrail, a 10% MDE
/// on the simulated baseline, 90 days of retention.
fn demo_design(
    key: &str,
    name: &str,
    hypothesis: &str,
    variants: [&str; 2],
    coverage: f64,
) -> Value {
    json!({
        "key": key,
        "name": name,
        "hypothesis": hypothesis,
        "purpose": PURPOSE,
        "variants": [{"key": variants[0], "weight": 1}, {"key": variants[1], "weight": 1}],
        "coverage": coverage,
        "primary_metric": {"event": "purchase", "kind": "binary"},
        "guardrails": [{"event": "support_contact", "kind": "binary"}],
        "mde": 0.1,
        "alpha": 0.05,
        "power": 0.8,
        "baseline_rate": BASELINE,
        "data_categories": ["orders", "page_views"],
        "retention_days": 90
    })
}
