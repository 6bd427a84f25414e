//! The `/ui/notices` page's forms over HTTP, on SQLite and PostgreSQL:
//! purposes ticked, per language a title, a body and one sentence per
//! purpose; adding a language and refreshing the fields without saving;
//! creating from a template or from scratch, publishing the next version,
//! refusals shown on the form with what was typed; compliance only.

use crate::notices_api::{register_template_purposes, template};
use crate::support::{TestApp, web};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// The notice form's fields for `content` (a notice's JSON content), as a
/// browser posts them, then `extra` (the CSRF token, the step, the id).
fn form_of(content: &Value, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for purpose in content["purposes"].as_array().unwrap() {
        fields.push(("purpose".to_owned(), purpose.as_str().unwrap().to_owned()));
    }
    for (tag, text) in content["languages"].as_object().unwrap() {
        fields.push(("lang".to_owned(), tag.clone()));
        fields.push((
            format!("title.{tag}"),
            text["title"].as_str().unwrap().to_owned(),
        ));
        // A browser sends a textarea's line breaks as CRLF.
        let body = text["body"].as_str().unwrap().replace('\n', "\r\n");
        fields.push((format!("body.{tag}"), body));
        for (purpose, sentence) in text["purposes"].as_object().unwrap() {
            let sentence = sentence.as_str().unwrap().to_owned();
            fields.push((format!("sentence.{tag}.{purpose}"), sentence));
        }
    }
    for (name, value) in extra {
        fields.push(((*name).to_owned(), (*value).to_owned()));
    }
    fields
}

/// Posts the form `fields` to `path` as the session `cookie`.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(String, String)],
) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    web::submit(&app.address, cookie, path, &pairs).await
}

api_story!(
    the_notices_page_creates_from_a_template_and_publishes_for_compliance_only,
    |app| {
        register_template_purposes(&app).await;
        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, html) = app
            .page(&compliance, "/ui/notices?template=personalisation")
            .await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Personalised content and offers")
                && html.contains("href=\"/ui/notices\""),
            "{html}"
        );
        assert!(
            html.contains("value=\"Content and offers chosen for you\"")
                && html.contains("name=\"sentence.de.personalize.offers.profiling\"")
                && html.contains("id=\"new-id\" name=\"id\" value=\"shop-personalisation\""),
            "the form is prefilled: {html}"
        );
        let csrf = web::csrf_of(&html);
        let content = template(&app, "personalisation").await;
        let with = |id: &str, csrf: &str| {
            form_of(&content, &[("id", id), ("csrf", csrf), ("step", "save")])
        };
        let refused = post_form(
            &app,
            &compliance,
            "/ui/notices",
            &with("shop-personal", "wrong"),
        )
        .await;
        assert_eq!(refused.status(), 403);
        let created = post_form(
            &app,
            &compliance,
            "/ui/notices",
            &with("shop-personal", &csrf),
        )
        .await;
        assert_eq!(created.status(), 303);
        let publish = form_of(&content, &[("csrf", &csrf), ("step", "save")]);
        let published = post_form(
            &app,
            &compliance,
            "/ui/notices/shop-personal/versions",
            &publish,
        )
        .await;
        assert_eq!(published.status(), 303);
        let stored = app
            .get_json("/api/v1/notices/shop-personal", Some(Role::Compliance))
            .await;
        assert_eq!(
            stored["versions"][1]["languages"], content["languages"],
            "the CRLF of the textareas are stored as line breaks"
        );

        let mut untitled = content.clone();
        untitled["languages"]["en"]["title"] = json!(" ");
        let fields = form_of(&untitled, &[("csrf", &csrf), ("step", "save")]);
        let bad = post_form(
            &app,
            &compliance,
            "/ui/notices/shop-personal/versions",
            &fields,
        )
        .await;
        assert_eq!(bad.status(), 422);
        let page = bad.text().await.unwrap();
        assert!(
            page.contains("Not saved: Title in English (en): must be 1 to 200 characters")
                && page.contains("name=\"title.en\" value=\" \"")
                && page.contains("<details open>"),
            "the input is kept and the form open: {page}"
        );
        let mut unregistered = content.clone();
        unregistered["purposes"][1] = json!("personalize.unknown.profiling");
        for tag in ["en", "de"] {
            let sentences = unregistered["languages"][tag]["purposes"]
                .as_object_mut()
                .unwrap();
            let sentence = sentences.remove("personalize.offers.profiling").unwrap();
            sentences.insert("personalize.unknown.profiling".to_owned(), sentence);
        }
        let fields = form_of(
            &unregistered,
            &[("id", "shop-other"), ("csrf", &csrf), ("step", "save")],
        );
        let bad = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(bad.status(), 422);
        let page = bad.text().await.unwrap();
        assert!(
            page.contains("personalize.unknown.profiling&#39; is not a registered purpose")
                || page.contains("personalize.unknown.profiling&#x27; is not a registered purpose"),
            "{page}"
        );
        assert!(page.contains("value=\"shop-other\""), "the id is kept");
        assert!(
            page.contains("not registered: register it first, or untick it"),
            "the unregistered purpose stays ticked with a note: {page}"
        );
        let again = post_form(
            &app,
            &compliance,
            "/ui/notices",
            &with("shop-personal", &csrf),
        )
        .await;
        assert_eq!(again.status(), 422, "a taken id is shown on the form");
        let (_, html) = app.page(&compliance, "/ui/notices").await;
        assert!(
            html.contains("v2") && html.contains("v1") && html.contains("Publish version 3"),
            "{html}"
        );
        assert!(!html.contains("<script"));

        // A notice with long texts in two languages is more than the default form limit (16 KiB).
        let text = json!({"title": "Long", "body": "word ".repeat(1800).trim(), "purposes": {"analytics.storefront.ab_testing": "Compare pages."}});
        let long = json!({"purposes": ["analytics.storefront.ab_testing"], "languages": {"en": text, "de": text}});
        let fields = form_of(
            &long,
            &[("id", "shop-long"), ("csrf", &csrf), ("step", "save")],
        );
        assert!(fields.iter().map(|(_, v)| v.len()).sum::<usize>() > 16 * 1024);
        let created = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(created.status(), 303);

        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, html) = app.page(&marketer, "/ui/notices").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("shop-personal")
                && !html.contains("<form method=\"post\" action=\"/ui/notices"),
            "{html}"
        );
        let csrf = web::csrf_of(&html);
        let refused = post_form(
            &app,
            &marketer,
            "/ui/notices/shop-personal/versions",
            &form_of(&content, &[("csrf", &csrf), ("step", "save")]),
        )
        .await;
        assert_eq!(refused.status(), 403);
        let versions = app
            .get_json("/api/v1/notices/shop-personal", Some(Role::Compliance))
            .await;
        assert_eq!(versions["latest_version"], 2);
    }
);

api_story!(
    the_notices_form_creates_from_scratch_with_an_added_language_and_publishes_a_version,
    |app| {
        register_template_purposes(&app).await;
        app.post_ok(
            "/api/v1/purposes/personalize.offers.profiling/retire",
            Role::Compliance,
            json!({"reason": "no more offers"}),
        )
        .await;
        const AB: &str = "analytics.storefront.ab_testing";
        const CONTENT: &str = "personalize.content.profiling";
        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, html) = app.page(&compliance, "/ui/notices").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("<label for=\"new-id\">")
                && html.contains("<label for=\"new-title-en\">")
                && html.contains("<label for=\"new-body-en\">")
                && html.contains(&format!("name=\"purpose\" value=\"{AB}\""))
                && html.contains(&format!("name=\"purpose\" value=\"{CONTENT}\""))
                && !html.contains("value=\"personalize.offers.profiling\""),
            "the registered purposes that are not retired, to tick: {html}"
        );
        let csrf = web::csrf_of(&html);
        let typed = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            [
                ("csrf", csrf.as_str()),
                ("id", "shop-own"),
                ("purpose", AB),
                ("purpose", CONTENT),
            ]
            .iter()
            .chain(extra)
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
        };

        // Ticking the purposes and pressing "Update the fields" gives a
        // sentence field per ticked purpose, keeping what was typed.
        let en = [
            ("lang", "en"),
            ("title.en", "We test our shop"),
            (
                "body.en",
                "We try two versions of some pages.\r\nYou may say no.",
            ),
        ];
        let fields = typed(&[&en[..], &[("step", "refresh")]].concat());
        let refreshed = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(refreshed.status(), 200);
        let page = refreshed.text().await.unwrap();
        assert!(
            page.contains(&format!("name=\"sentence.en.{AB}\" value=\"\""))
                && page.contains(&format!("name=\"sentence.en.{CONTENT}\" value=\"\""))
                && page.contains("value=\"We test our shop\"")
                && page.contains("We try two versions of some pages.\nYou may say no.</textarea>")
                && page.contains("value=\"shop-own\""),
            "{page}"
        );

        // A language code that is not one is refused; German is added.
        let sentences_en = [
            (
                "sentence.en.analytics.storefront.ab_testing",
                "We compare two versions of a page.",
            ),
            (
                "sentence.en.personalize.content.profiling",
                "We choose content for you.",
            ),
        ];
        let fields = typed(
            &[
                &en[..],
                &sentences_en,
                &[("new_language", "german!"), ("step", "add_language")],
            ]
            .concat(),
        );
        let bad = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(bad.status(), 422);
        let page = bad.text().await.unwrap();
        assert!(page.contains("is not a short language code"), "{page}");
        let fields = typed(
            &[
                &en[..],
                &sentences_en,
                &[("new_language", "DE"), ("step", "add_language")],
            ]
            .concat(),
        );
        let added = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(added.status(), 200);
        let page = added.text().await.unwrap();
        assert!(
            page.contains("<label for=\"new-title-de\">Title (German (de), one line)</label>")
                && page.contains("name=\"title.de\" value=\"\"")
                && page.contains(&format!("name=\"sentence.de.{CONTENT}\" value=\"\""))
                && page.contains("value=\"We compare two versions of a page.\""),
            "empty German fields, the English ones kept: {page}"
        );
        assert_eq!(
            app.get_json("/api/v1/notices", Some(Role::Compliance))
                .await["notices"],
            json!([]),
            "no step but save saves"
        );

        // Saving with a German text left empty is refused and keeps everything.
        let fields = typed(&[&en[..], &sentences_en, &[("lang", "de"), ("step", "save")]].concat());
        let refused = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(refused.status(), 422);
        let page = refused.text().await.unwrap();
        assert!(
            page.contains("Not saved: Title in German (de)")
                && page.contains("value=\"We compare two versions of a page.\""),
            "{page}"
        );
        let de = [
            ("lang", "de"),
            ("title.de", "Wir testen unseren Shop"),
            (
                "body.de",
                "Wir probieren zwei Fassungen aus.\r\nSie dürfen ablehnen.",
            ),
            (
                "sentence.de.analytics.storefront.ab_testing",
                "Wir vergleichen zwei Fassungen.",
            ),
            (
                "sentence.de.personalize.content.profiling",
                "Wir wählen Inhalte für Sie.",
            ),
        ];
        let fields = typed(&[&en[..], &sentences_en, &de, &[("step", "save")]].concat());
        let created = post_form(&app, &compliance, "/ui/notices", &fields).await;
        assert_eq!(created.status(), 303);
        let expected_v1 = json!({
            "en": {"title": "We test our shop", "body": "We try two versions of some pages.\nYou may say no.",
                   "purposes": {AB: "We compare two versions of a page.", CONTENT: "We choose content for you."}},
            "de": {"title": "Wir testen unseren Shop", "body": "Wir probieren zwei Fassungen aus.\nSie dürfen ablehnen.",
                   "purposes": {AB: "Wir vergleichen zwei Fassungen.", CONTENT: "Wir wählen Inhalte für Sie."}},
        });
        let stored = app
            .get_json("/api/v1/notices/shop-own", Some(Role::Ingest))
            .await;
        assert_eq!(stored["latest_version"], 1);
        assert_eq!(stored["versions"][0]["purposes"], json!([AB, CONTENT]));
        assert_eq!(stored["versions"][0]["languages"], expected_v1);

        // Version 2: the publish form is prefilled from version 1; change a title.
        let (_, html) = app.page(&compliance, "/ui/notices").await;
        assert!(
            html.contains("action=\"/ui/notices/shop-own/versions\"")
                && html.contains("<label for=\"edit-shop-own-title-de\">")
                && html.contains("id=\"edit-shop-own-title-de\" name=\"title.de\" value=\"Wir testen unseren Shop\"")
                && html.contains("Publish version 2"),
            "{html}"
        );
        let en_v2 = [
            ("lang", "en"),
            ("title.en", "We test versions of our shop"),
            (
                "body.en",
                "We try two versions of some pages.\r\nYou may say no.",
            ),
        ];
        let fields: Vec<(String, String)> =
            typed(&[&en_v2[..], &sentences_en, &de, &[("step", "save")]].concat())
                .into_iter()
                .filter(|(name, _)| name != "id")
                .collect();
        let published =
            post_form(&app, &compliance, "/ui/notices/shop-own/versions", &fields).await;
        assert_eq!(published.status(), 303);
        let stored = app
            .get_json("/api/v1/notices/shop-own", Some(Role::Ingest))
            .await;
        assert_eq!(stored["latest_version"], 2);
        let mut expected_v2 = expected_v1.clone();
        expected_v2["en"]["title"] = json!("We test versions of our shop");
        assert_eq!(
            stored["versions"][0]["languages"], expected_v1,
            "v1 is kept"
        );
        assert_eq!(stored["versions"][1]["languages"], expected_v2);
        assert_eq!(stored["versions"][1]["purposes"], json!([AB, CONTENT]));

        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, html) = app.page(&marketer, "/ui/notices").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("shop-own")
                && html.contains("We test versions of our shop")
                && !html.contains("<form method=\"post\" action=\"/ui/notices")
                && !html.contains("name=\"step\""),
            "a marketer sees the versions and no form: {html}"
        );
    }
);
