//! Re-consent counters and the consents that came back, on SQLite and
//! (when configured) PostgreSQL: asks are counts per purpose and day; a
//! consent "came back" when the pseudonym's previous record for the purpose
//! was a granted consent that had expired or predates the minimum notice.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus, NewConsent};
use pilotgate_domain::pseudonym::PseudonymKey;
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_store::{ReconsentAsks, storage_story};

const PURPOSE: &str = "personalize.content";

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, d, 9, 0, 0).unwrap()
}

fn consent(user: &str, status: ConsentStatus, at: DateTime<Utc>, notice: u32) -> NewConsent {
    ConsentDraft {
        subject: PseudonymKey::new(1, vec![9; 32])
            .unwrap()
            .pseudonymize(user),
        purpose: PurposeKey::parse(PURPOSE).unwrap(),
        basis: LegalBasis::Consent,
        status,
        notice_id: "privacy-notice".to_owned(),
        notice_version: notice,
        channel: Channel::Banner,
        method: "click".to_owned(),
        collected_at: at,
        effective_from: None,
        expires_at: None,
        proof_ref: None,
    }
    .finish(at + Duration::hours(1))
    .unwrap()
}

storage_story!(asks_are_counted_per_purpose_and_day, |db| {
    for link in [true, false, true] {
        db.store
            .count_reconsent_ask(PURPOSE, link, day(3))
            .await
            .unwrap();
    }
    db.store
        .count_reconsent_ask(PURPOSE, false, day(4))
        .await
        .unwrap();
    db.store
        .count_reconsent_ask("analytics.reporting", true, day(4))
        .await
        .unwrap();
    let asks = db
        .store
        .reconsent_asks("2026-06-01", "2026-06-03")
        .await
        .unwrap();
    assert_eq!(
        asks,
        [ReconsentAsks {
            purpose: PURPOSE.to_owned(),
            day: "2026-06-03".to_owned(),
            asked: 3,
            links_issued: 2,
        }]
    );
    let asks = db
        .store
        .reconsent_asks("2026-06-01", "2026-06-30")
        .await
        .unwrap();
    assert_eq!(asks.len(), 3);
    assert_eq!((asks[2].asked, asks[2].links_issued), (1, 0));
});

storage_story!(a_consent_came_back_only_after_a_lapsed_one, |db| {
    let purpose = Purpose {
        key: PurposeKey::parse(PURPOSE).unwrap(),
        description: "test purpose".to_owned(),
        allowed_bases: [LegalBasis::Consent].into_iter().collect(),
        min_notice_version: 2,
        special_category: false,
        li_assessment_ref: None,
        contract_necessary: false,
        retention_days: 90,
    };
    db.store
        .create_purpose(&purpose, &Actor::operator())
        .await
        .unwrap();
    use ConsentStatus::*;
    let mut expiring = consent("u2", Granted, day(1), 2);
    expiring.expires_at = Some(day(2));
    let records = vec![
        // Stale notice, then a consent under the current notice: came back.
        consent("u1", Granted, day(1), 1),
        consent("u1", Granted, day(3), 2),
        // Expired, then granted again: came back.
        expiring,
        consent("u2", Granted, day(4), 2),
        // Not lapsed: a renewal is not a return.
        consent("u3", Granted, day(1), 2),
        consent("u3", Granted, day(3), 2),
        // Withdrawn in between: a new consent, not a return from a lapse.
        consent("u4", Granted, day(1), 1),
        consent("u4", Withdrawn, day(2), 1),
        consent("u4", Granted, day(3), 2),
        // Granted again under the stale notice: still needs re-consent.
        consent("u5", Granted, day(1), 1),
        consent("u5", Granted, day(3), 1),
    ];
    db.store
        .append_consents(&records, &Actor::operator())
        .await
        .unwrap();
    let returns = db.store.reconsent_returns(day(1), day(10)).await.unwrap();
    assert_eq!(
        returns,
        [(PURPOSE.to_owned(), day(3)), (PURPOSE.to_owned(), day(4))]
    );
    let later = db
        .store
        .reconsent_returns(day(4) - Duration::hours(1), day(10))
        .await
        .unwrap();
    assert_eq!(later, [(PURPOSE.to_owned(), day(4))]);
});
