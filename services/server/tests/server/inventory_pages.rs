//! The data inventory's pages over HTTP, as a browser without JavaScript
//! uses them: `/ui/inventory` for compliance (forms, CSRF) and a marketer
//! (no forms), the design form's checkboxes, and the risk checklist on the
//! pilot's compliance view.

use crate::inventory::find;
use crate::support::{TestApp, web};
use pilotgate_domain::Role;
use serde_json::json;

/// `POST path` of `fields` with `cookie`: the status and the Location or page.
async fn submit(app: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = web::submit(&app.address, cookie, path, fields).await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match location {
        Some(location) => (status, location),
        None => (status, response.text().await.unwrap()),
    }
}

api_story!(
    compliance_edits_the_inventory_page_and_a_marketer_reads_it,
    |app| {
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, page) = app.page(&cookie, "/ui/inventory").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("href=\"/ui/inventory\""),
            "the nav links the page"
        );
        assert!(page.contains("Special-category data (Art. 9)"));
        assert!(page.contains("action=\"/ui/inventory/behavioural\""));
        assert!(page.contains("action=\"/ui/inventory\""));
        let csrf = web::csrf_of(&page);

        let create = [
            ("csrf", csrf.as_str()),
            ("key", "loyalty"),
            ("name", "Loyalty points"),
            ("description", "Points balance."),
            ("sensitivity", "low"),
            ("pseudonymised", "on"),
            ("retention_ceiling_days", "30"),
        ];
        assert_eq!(
            submit(&app, &cookie, "/ui/inventory", &create).await,
            (303, "/ui/inventory".to_owned())
        );
        let forged: Vec<(&str, &str)> = create
            .iter()
            .map(|&(k, v)| if k == "csrf" { (k, "0") } else { (k, v) })
            .collect();
        assert_eq!(submit(&app, &cookie, "/ui/inventory", &forged).await.0, 403);
        let (status, refused) = submit(&app, &cookie, "/ui/inventory", &create).await;
        assert_eq!(status, 409);
        assert!(refused.contains("is in the inventory already"), "{refused}");
        let mut bad_ceiling = create;
        bad_ceiling[1] = ("key", "tier");
        bad_ceiling[6] = ("retention_ceiling_days", "a month");
        let (status, refused) = submit(&app, &cookie, "/ui/inventory", &bad_ceiling).await;
        assert_eq!(status, 422);
        assert!(
            refused.contains("retention_ceiling_days: must be a whole number"),
            "{refused}"
        );
        assert!(
            refused.contains("value=\"a month\""),
            "the form keeps what was typed"
        );

        let edit = [
            ("csrf", csrf.as_str()),
            ("name", "Loyalty points"),
            ("description", "Points balance."),
            ("sensitivity", "moderate"),
            ("dpo_sign_off", "on"),
            ("retention_ceiling_days", ""),
        ];
        assert_eq!(
            submit(&app, &cookie, "/ui/inventory/loyalty", &edit)
                .await
                .0,
            303
        );
        let loyalty = find(
            &app.get_json("/api/v1/data-categories", Some(Role::Compliance))
                .await,
            "loyalty",
        )
        .clone();
        assert_eq!(loyalty["sensitivity"], "moderate");
        assert_eq!(loyalty["required_measures"], json!(["dpo_sign_off"]));
        assert_eq!(
            submit(&app, &cookie, "/ui/inventory/nothing_here", &edit)
                .await
                .0,
            404
        );

        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app.page(&marketer, "/ui/inventory").await;
        assert_eq!(status, 200);
        assert!(page.contains("Loyalty points"));
        assert!(
            !page.contains("action=\"/ui/inventory"),
            "no form for a marketer"
        );
        assert!(
            !page.contains("Audit log"),
            "the nav offers only what a marketer may open"
        );
        assert!(page.contains("href=\"/ui/inventory\""));
        let csrf = web::csrf_of(&page);
        let edit = [
            ("csrf", csrf.as_str()),
            ("name", "x"),
            ("description", "y"),
            ("sensitivity", "low"),
        ];
        assert_eq!(
            submit(&app, &marketer, "/ui/inventory/loyalty", &edit)
                .await
                .0,
            403
        );
        assert_eq!(submit(&app, &marketer, "/ui/inventory", &edit).await.0, 403);
    }
);

api_story!(
    the_design_form_offers_the_inventory_and_the_compliance_view_shows_the_checklist,
    |app| {
        app.register_purpose().await;
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, form) = app.page(&marketer, "/ui/experiments/new").await;
        assert_eq!(status, 200);
        assert!(form.contains("type=\"checkbox\" id=\"data_categories-orders\" name=\"data_categories\" value=\"orders\""));
        assert!(
            !form.contains("value=\"special_category\""),
            "prohibited categories are not offered"
        );
        let csrf = web::csrf_of(&form);
        let fields = |categories: &'static [&'static str]| {
            let mut fields = vec![
                ("csrf", csrf.clone()),
                ("key", "hero".to_owned()),
                ("name", "Hero".to_owned()),
                ("hypothesis", "h".to_owned()),
                ("purpose", "personalize.content".to_owned()),
                ("variant_key", "control".to_owned()),
                ("variant_weight", "1".to_owned()),
                ("variant_key", "v1".to_owned()),
                ("variant_weight", "1".to_owned()),
                ("coverage", "1".to_owned()),
                ("primary_event", "purchase".to_owned()),
                ("primary_kind", "binary".to_owned()),
                ("mde", "0.1".to_owned()),
                ("alpha", "0.05".to_owned()),
                ("power", "0.8".to_owned()),
                ("retention_days", "120".to_owned()),
            ];
            fields.extend(
                categories
                    .iter()
                    .map(|c| ("data_categories", (*c).to_owned())),
            );
            fields
        };
        let post = |fields: Vec<(&'static str, String)>| {
            let (app, marketer) = (&app, &marketer);
            async move {
                let pairs: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                submit(app, marketer, "/ui/experiments/new", &pairs).await
            }
        };
        let (status, refused) = post(fields(&["orders", "favourite colour"])).await;
        assert_eq!(status, 422);
        assert!(refused.contains("id=\"data_categories-error\">&#39;favourite colour&#39; is not in the data inventory</p>")
        || refused.contains("id=\"data_categories-error\">&#x27;favourite colour&#x27; is not in the data inventory</p>"), "{refused}");
        assert!(
            refused.contains("value=\"favourite colour\" checked"),
            "the refused category stays ticked"
        );
        assert_eq!(
            post(fields(&["behavioural", "orders"])).await,
            (303, "/ui/experiments/hero".to_owned())
        );
        let pilot = app
            .get_json("/api/v1/experiments/hero", Some(Role::Marketer))
            .await;
        assert_eq!(pilot["data_categories"], json!(["behavioural", "orders"]));
        app.post_ok("/api/v1/experiments/hero/submit", Role::Marketer, json!({}))
            .await;

        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, view) = app
            .page(&compliance, "/ui/experiments/hero/compliance")
            .await;
        assert_eq!(status, 200);
        assert!(view.contains("Risk checklist"));
        assert!(view.contains("retention 120 days ≤ ceiling 180"), "{view}");
        assert!(view.contains("encrypted at rest: not declared"));
        assert!(view.contains("not met"));
        assert!(
            view.contains("You may still approve"),
            "the approval form shows the unmet measures"
        );
        assert!(view.contains("action=\"/ui/experiments/hero/approve\""));
    }
);
