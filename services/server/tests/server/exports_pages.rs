//! Governed exports in the browser, without JavaScript: the analyst asks
//! through the pilot page's form, compliance approves or denies through the
//! compliance view's forms, the analyst downloads through the page's link
//! (audited before the file leaves, the manifest naming its bytes); a denied
//! request offers no download and the marketer sees no form.

use crate::exports_api::{pilot_with_data, register_recipient};
use crate::support::{TestApp, web};
use pilotgate_domain::Role;
use serde_json::{Value, json};
use sha2::Digest;

async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let response = web::submit(&app.address, cookie, path, fields).await;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status().as_u16(), location)
}

/// The id of the export request of pilot `hero` whose reason is `reason`.
async fn id_of(app: &TestApp, reason: &str) -> String {
    let list = app
        .get_json("/api/v1/experiments/hero/exports", Some(Role::Analyst))
        .await;
    list["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == reason)
        .and_then(|e| e["id"].as_str())
        .expect("the request")
        .to_owned()
}

api_story!(
    an_export_is_requested_approved_and_downloaded_through_the_pages,
    |app| {
        pilot_with_data(&app).await;
        register_recipient(
            &app,
            "warehouse",
            json!(["personalize.content"]),
            json!(["csv"]),
        )
        .await;

        // The analyst asks through the pilot page's form.
        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        let (status, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert_eq!(status, 200);
        assert!(page.contains("Request an export"), "{page}");
        assert!(page.contains("action=\"/ui/experiments/hero/exports\""));
        assert!(page.contains("<option value=\"warehouse\">"));
        let csrf = web::csrf_of(&page);
        let forged = [
            ("csrf", "forged"),
            ("recipient", "warehouse"),
            ("format", "csv"),
            ("reason", "forged"),
        ];
        let (status, _) = post_form(&app, &analyst, "/ui/experiments/hero/exports", &forged).await;
        assert_eq!(status, 403, "no request without the session's CSRF token");
        for reason in ["load into the warehouse", "a second copy"] {
            let fields = [
                ("csrf", csrf.as_str()),
                ("recipient", "warehouse"),
                ("format", "csv"),
                ("reason", reason),
            ];
            let (status, location) =
                post_form(&app, &analyst, "/ui/experiments/hero/exports", &fields).await;
            assert_eq!((status, location.as_str()), (303, "/ui/experiments/hero"));
        }
        let list = app
            .get_json("/api/v1/experiments/hero/exports", Some(Role::Analyst))
            .await;
        assert_eq!(list["exports"].as_array().unwrap().len(), 2, "{list}");
        let approved = id_of(&app, "load into the warehouse").await;
        let denied = id_of(&app, "a second copy").await;
        // Pending: listed, nothing to download yet.
        let (_, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert!(page.contains("pending"));
        assert!(!page.contains("/download\""));

        // The analyst may not decide.
        let decide = [("csrf", csrf.as_str()), ("comment", "my own")];
        let (status, _) = post_form(
            &app,
            &analyst,
            &format!("/ui/exports/{approved}/approve"),
            &decide,
        )
        .await;
        assert_eq!(status, 403);

        // Compliance approves one and denies the other through its forms.
        let dpo = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, view) = app.page(&dpo, "/ui/experiments/hero/compliance").await;
        assert_eq!(status, 200);
        assert!(view.contains(&format!("action=\"/ui/exports/{approved}/approve\"")));
        assert!(view.contains(&format!("action=\"/ui/exports/{denied}/deny\"")));
        let dpo_csrf = web::csrf_of(&view);
        let approve = [("csrf", dpo_csrf.as_str()), ("comment", "contract checked")];
        let (status, location) = post_form(
            &app,
            &dpo,
            &format!("/ui/exports/{approved}/approve"),
            &approve,
        )
        .await;
        assert_eq!(
            (status, location.as_str()),
            (303, "/ui/experiments/hero/compliance")
        );
        let deny = [
            ("csrf", dpo_csrf.as_str()),
            ("comment", "one copy is enough"),
        ];
        let (status, _) = post_form(&app, &dpo, &format!("/ui/exports/{denied}/deny"), &deny).await;
        assert_eq!(status, 303);
        // Decided: no form left; deciding again is refused on the error page.
        let (_, view) = app.page(&dpo, "/ui/experiments/hero/compliance").await;
        assert!(!view.contains("/approve\" class=\"stack\" aria-label=\"Approve the export"));
        let (status, _) = post_form(
            &app,
            &dpo,
            &format!("/ui/exports/{denied}/approve"),
            &approve,
        )
        .await;
        assert_eq!(status, 409);

        // The analyst downloads the approved one through the page's link.
        let (_, page) = app.page(&analyst, "/ui/experiments/hero").await;
        let link = format!("href=\"/ui/exports/{approved}/download\"");
        assert!(page.contains(&link), "{page}");
        assert!(
            !page.contains(&format!("/ui/exports/{denied}/download")),
            "a denied request offers no download"
        );
        let response = reqwest::Client::new()
            .get(format!("{}/ui/exports/{approved}/download", app.address))
            .header("cookie", &analyst)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        let audit_id: i64 = response.headers()["x-audit-entry"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let file = response.bytes().await.unwrap().to_vec();
        let entries = crate::exports_api::downloads_audited(&app).await;
        assert_eq!(entries.len(), 1, "one download, audited");
        assert_eq!(entries[0].id, audit_id);
        let manifest: Value = serde_json::from_str(&entries[0].details).unwrap();
        assert_eq!(
            manifest["sha256"],
            hex::encode(sha2::Sha256::digest(&file)).as_str(),
            "the manifest names the bytes sent"
        );
        assert_eq!(manifest["recipient"], "warehouse");
        let (_, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert!(page.contains("1 of 3"));

        // The marketer sees no exports, no form, and cannot download.
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app.page(&marketer, "/ui/experiments/hero").await;
        assert_eq!(status, 200);
        assert!(!page.contains("Request an export") && !page.contains("/exports"));
        let (status, _) = app
            .page(&marketer, &format!("/ui/exports/{approved}/download"))
            .await;
        assert_eq!(status, 403);
    }
);
