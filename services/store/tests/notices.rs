//! Notices and consent receipts in the store, on SQLite and PostgreSQL:
//! versions numbered one after another, an id taken once, receipts found
//! only for their own subject, every change audited.

use pilotgate_domain::Actor;
use pilotgate_domain::notice::{NoticeContent, NoticeId, NoticeText};
use pilotgate_store::{AuditQuery, NewReceipt, StoreError, storage_story};

fn content(title: &str) -> NoticeContent {
    NoticeContent {
        purposes: vec!["personalize.content".to_owned()],
        languages: [(
            "en".to_owned(),
            NoticeText {
                title: title.to_owned(),
                body: "We choose content for you.".to_owned(),
                purposes: [(
                    "personalize.content".to_owned(),
                    "Choose content.".to_owned(),
                )]
                .into(),
            },
        )]
        .into(),
    }
}

storage_story!(
    notice_versions_follow_each_other_and_receipts_stay_with_their_subject,
    |db| {
        let actor = Actor::operator();
        let id = NoticeId::parse("shop-testing").unwrap();
        let first = db
            .store
            .create_notice(&id, &content("One"), &actor)
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        let taken = db.store.create_notice(&id, &content("Again"), &actor).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        for expected in [2, 3] {
            let next = db
                .store
                .publish_notice_version(&id, &content("Next"), &actor)
                .await
                .unwrap();
            assert_eq!(next.version, expected);
        }
        let other = NoticeId::parse("other").unwrap();
        let missing = db
            .store
            .publish_notice_version(&other, &content("x"), &actor)
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
        let stored = db.store.notice("shop-testing").await.unwrap().unwrap();
        assert_eq!(
            stored
                .versions
                .iter()
                .map(|v| v.version)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(stored.versions[0].content, content("One"));
        assert_eq!(
            stored.latest().unwrap().content.languages["en"].title,
            "Next"
        );
        assert_eq!(db.store.list_notices().await.unwrap().len(), 1);
        assert!(db.store.notice("other").await.unwrap().is_none());

        let receipt = NewReceipt {
            id: "0f1e2d3c-4b5a-4678-8899-aabbccddeeff".to_owned(),
            subject: "ab".repeat(32),
            key_version: 1,
            notice_id: "shop-testing".to_owned(),
            notice_version: 3,
            jws: "h.p.s".to_owned(),
        };
        db.store
            .store_receipt(&receipt, &Actor::customer())
            .await
            .unwrap();
        assert_eq!(
            db.store
                .receipt(&receipt.id, &receipt.subject)
                .await
                .unwrap()
                .as_deref(),
            Some("h.p.s")
        );
        assert_eq!(
            db.store
                .receipt(&receipt.id, &"cd".repeat(32))
                .await
                .unwrap(),
            None
        );

        let audit = db
            .store
            .list_audit(&AuditQuery {
                after: None,
                limit: 50,
                target: None,
            })
            .await
            .unwrap();
        let ours: Vec<_> = audit
            .iter()
            .filter(|e| e.action.starts_with("notice.") || e.action.starts_with("consent."))
            .collect();
        let actions: Vec<&str> = ours.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "notice.create",
                "notice.publish",
                "notice.publish",
                "consent.receipt"
            ]
        );
        assert_eq!(ours[3].actor, "customer (privacy link)");
    }
);
