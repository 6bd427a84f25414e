//! What an attack review of the consent form found, on SQLite and
//! PostgreSQL: the privacy link is an opaque token whose issuance is audited
//! and whose reference the records and the receipt carry; a retired purpose
//! can still be refused (and "Refuse all" reaches it); only the notice's
//! latest version is taken, and a purpose needing a newer notice cannot be
//! allowed; the receipt lists refusals apart from consents; and
//! `pilotgate receipt verify` reads the key read-only and tells an unknown
//! key from an altered receipt.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::notices_api::template;
use crate::privacy_form::{USER, get_form, history, notice_and_link, post_form};
use crate::support::process::{pilotgate, run, text};
use crate::support::{TestApp, assert_json_error, pseudonym, web};

const AB: &str = "analytics.storefront.ab_testing";
const PROFILING: &str = "personalize.content.profiling";

async fn choose(app: &TestApp, token: &str, body: Value, gpc: bool) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/v1/privacy/{token}/choices", app.address))
        .json(&body);
    if gpc {
        request = request.header("Sec-GPC", "1");
    }
    request.send().await.unwrap()
}

async fn form_purpose(app: &TestApp, token: &str, index: usize) -> Value {
    app.get_json(&format!("/api/v1/privacy/{token}"), None)
        .await["purposes"][index]
        .clone()
}

fn payload_of(jws: &str) -> Value {
    let part = jws.split('.').nth(1).expect("a JWS payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

api_story!(
    a_privacy_link_is_opaque_audited_and_named_by_what_is_made_through_it,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/").to_owned();
        let subject = pseudonym(USER);
        let mut forbidden = vec![USER.to_owned(), subject.clone(), hex::encode(USER)];
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            forbidden.push(engine.encode(USER));
            forbidden.push(engine.encode(&subject));
            if let Ok(bytes) = hex::decode(&subject) {
                forbidden.push(engine.encode(bytes));
            }
        }
        for secret in &forbidden {
            assert!(!url.contains(secret.as_str()), "{url} holds {secret}");
        }
        let decoded = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        assert_eq!(decoded.len(), 32, "32 random bytes, nothing else");
        assert!(serde_json::from_slice::<Value>(&decoded).is_err());

        let audit = app
            .get_json(
                "/api/v1/audit?action=privacy_link.issue",
                Some(Role::Compliance),
            )
            .await;
        let entries = audit["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{audit}");
        assert_eq!(entries[0]["target"], "notice:shop-testing");
        assert!(
            entries[0]["actor"].as_str().unwrap().contains("ingest"),
            "{audit}"
        );
        let reference = entries[0]["details"]["link"].as_str().unwrap().to_owned();
        assert_eq!(
            reference,
            hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12]
        );
        let everything = app
            .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
            .await;
        assert!(!everything.to_string().contains(&token));

        let body = json!({"notice_version": 1, "choices": [
            {"purpose": AB, "allow": true}, {"purpose": PROFILING, "allow": false}]});
        let saved = choose(&app, &token, body, false).await;
        assert_eq!(saved.status(), 201);
        let saved: Value = saved.json().await.unwrap();
        assert_eq!(saved["privacy_link"], reference.as_str());
        let records = history(&app).await;
        assert_eq!(records.len(), 2);
        for record in &records {
            let proof = record["proof_ref"].as_str().unwrap_or_default();
            assert!(
                proof.contains(&format!("privacy-link:{reference}"))
                    && proof.contains(saved["receipt_id"].as_str().unwrap()),
                "{record}"
            );
        }

        // The receipt: consents in services[].purposes, the refusal apart.
        let receipt = payload_of(saved["receipt"].as_str().unwrap());
        assert_eq!(receipt["privacyLink"], reference.as_str());
        let purposes = receipt["services"][0]["purposes"].as_array().unwrap();
        assert_eq!(purposes.len(), 1, "{receipt}");
        assert_eq!(purposes[0]["purposeCategory"], json!([AB]));
        assert_eq!(purposes[0]["consentType"], "EXPLICIT");
        let refusals = receipt["refusals"].as_array().unwrap();
        assert_eq!(refusals.len(), 1, "{receipt}");
        assert_eq!(
            (
                refusals[0]["purpose"].as_str(),
                refusals[0]["status"].as_str()
            ),
            (Some(PROFILING), Some("denied"))
        );
        assert_eq!(receipt["sensitive"], false);
    }
);

api_story!(
    a_retired_purpose_nobody_chose_is_not_offered_on_the_form,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/");
        app.post_ok(
            "/api/v1/purposes/personalize.content.profiling/retire",
            Role::Compliance,
            json!({"reason": "no more personalised content"}),
        )
        .await;
        let form = app
            .get_json(&format!("/api/v1/privacy/{token}"), None)
            .await;
        // The person never had a record for it: it is shown without choices.
        let offered: Vec<(String, bool)> = form["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["purpose"].as_str().unwrap_or_default().to_owned(),
                    p["offered"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            offered,
            vec![
                ("analytics.storefront.ab_testing".to_owned(), true),
                ("personalize.content.profiling".to_owned(), false)
            ],
            "{form}"
        );
        let retired = json!({"notice_version": 1, "choices": [{"purpose": "personalize.content.profiling", "allow": true}]});
        let refused = app
            .client
            .post(format!("{}/api/v1/privacy/{token}/choices", app.address))
            .json(&retired)
            .send()
            .await
            .unwrap();
        let body = assert_json_error(refused, 422).await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("no longer offered")
        );
        assert!(history(&app).await.is_empty(), "nothing was recorded");
    }
);

api_story!(
    a_retired_purpose_can_still_be_refused_and_refuse_all_withdraws_it,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/").to_owned();
        let both = json!({"notice_version": 1, "choices": [
            {"purpose": AB, "allow": true}, {"purpose": PROFILING, "allow": true}]});
        assert_eq!(choose(&app, &token, both, false).await.status(), 201);
        app.post_ok(
            &format!("/api/v1/purposes/{PROFILING}/retire"),
            Role::Compliance,
            json!({"reason": "no more personalised content"}),
        )
        .await;

        let retired = form_purpose(&app, &token, 1).await;
        assert_eq!(
            (
                retired["offered"].as_bool(),
                retired["may_allow"].as_bool(),
                retired["limit"].as_str()
            ),
            (Some(true), Some(false), Some("retired")),
            "{retired}"
        );
        let (status, html, _) = get_form(&app, &url).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("no longer offered") && html.contains("You can still say no"),
            "{html}"
        );
        assert!(html.contains("id=\"c1-no\"") && !html.contains("id=\"c1-yes\""));
        assert!(
            html.contains("id=\"c0-yes\""),
            "the other purpose keeps its yes"
        );

        let allow =
            json!({"notice_version": 1, "choices": [{"purpose": PROFILING, "allow": true}]});
        let refused = assert_json_error(choose(&app, &token, allow, false).await, 422).await;
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("no longer offered")
        );

        // Nothing chosen: never "saved".
        let csrf = web::csrf_of(&html);
        let (status, page) = post_form(
            &app,
            &url,
            &[("csrf", &csrf), ("notice_version", "1"), ("all", "")],
            false,
        )
        .await;
        assert_eq!(status, 422, "{page}");
        assert!(
            !page.contains("Your choices were saved") && page.contains("nothing was chosen"),
            "{page}"
        );
        assert_eq!(history(&app).await.len(), 2);

        // Refuse all withdraws the retired purpose too.
        let (status, page) = post_form(
            &app,
            &url,
            &[("csrf", &csrf), ("notice_version", "1"), ("all", "refuse")],
            false,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Your choices were saved"), "{page}");
        let records = history(&app).await;
        assert_eq!(records.len(), 4, "{records:?}");
        let withdrawn: Vec<&str> = records
            .iter()
            .filter(|r| r["status"] == "withdrawn")
            .map(|r| r["purpose"].as_str().unwrap())
            .collect();
        assert!(
            withdrawn.contains(&PROFILING) && withdrawn.contains(&AB),
            "{records:?}"
        );

        // A GPC signal objects to a retired legitimate-interest purpose too.
        app.post_ok(
            &format!("/api/v1/purposes/{AB}/retire"),
            Role::Compliance,
            json!({"reason": "the shop stops testing"}),
        )
        .await;
        let refuse =
            json!({"notice_version": 1, "choices": [{"purpose": PROFILING, "allow": false}]});
        let saved = choose(&app, &token, refuse, true).await;
        assert_eq!(saved.status(), 201);
        let saved: Value = saved.json().await.unwrap();
        assert_eq!(saved["gpc_objections"], json!([AB]), "{saved}");
    }
);

api_story!(
    only_the_latest_notice_is_taken_and_a_purpose_needing_a_newer_one_cannot_be_allowed,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/").to_owned();
        let mut next = template(&app, "ab-testing").await;
        next["purposes"] = json!([AB, PROFILING]);
        for lang in ["en", "de"] {
            next["languages"][lang]["purposes"][PROFILING] = json!("Choose products for you.");
        }
        app.post_ok(
            "/api/v1/notices/shop-testing/versions",
            Role::Compliance,
            next,
        )
        .await;
        let old = json!({"notice_version": 1, "choices": [{"purpose": AB, "allow": true}]});
        let stale = assert_json_error(choose(&app, &token, old, false).await, 409).await;
        assert!(
            stale["message"].as_str().unwrap().contains("reload"),
            "{stale}"
        );
        assert!(history(&app).await.is_empty());
        let latest = json!({"notice_version": 2, "choices": [{"purpose": AB, "allow": true}]});
        assert_eq!(choose(&app, &token, latest, false).await.status(), 201);

        let raised = app
            .request(
                Method::PUT,
                &format!("/api/v1/purposes/{PROFILING}"),
                Some(Role::Compliance),
            )
            .json(&json!({"description": "d", "allowed_bases": ["consent"],
                "min_notice_version": 3, "retention_days": 90}))
            .send()
            .await
            .unwrap();
        assert_eq!(raised.status(), 200);
        let profiling = form_purpose(&app, &token, 1).await;
        assert_eq!(
            (
                profiling["offered"].as_bool(),
                profiling["may_allow"].as_bool(),
                profiling["limit"].as_str()
            ),
            (Some(true), Some(false), Some("notice_too_old")),
            "{profiling}"
        );
        let (_, html, _) = get_form(&app, &url).await;
        assert!(
            html.contains("cannot be allowed with this version of the notice"),
            "{html}"
        );
        assert!(!html.contains("id=\"c1-yes\"") && html.contains("id=\"c1-no\""));
        let allow =
            json!({"notice_version": 2, "choices": [{"purpose": PROFILING, "allow": true}]});
        let refused = assert_json_error(choose(&app, &token, allow, false).await, 422).await;
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("needs notice version 3"),
            "{refused}"
        );
        let refuse =
            json!({"notice_version": 2, "choices": [{"purpose": PROFILING, "allow": false}]});
        let saved = choose(&app, &token, refuse, false).await;
        assert_eq!(saved.status(), 201);
        let saved: Value = saved.json().await.unwrap();
        assert_eq!(saved["records"][0]["status"], "denied");
    }
);

api_story!(
    receipt_verify_reads_the_key_only_and_tells_an_unknown_key_from_an_altered_receipt,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/");
        let body = json!({"notice_version": 1, "choices": [{"purpose": AB, "allow": true}]});
        let saved: Value = choose(&app, token, body, false).await.json().await.unwrap();
        let jws = saved["receipt"].as_str().unwrap().to_owned();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jws.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let kid = header["kid"].as_str().unwrap();
        assert!(kid.starts_with("v1-") && kid.len() == 19, "{kid}");

        let keys = tempfile::tempdir().unwrap();
        let file = keys.path().join("receipt.jws");
        std::fs::write(&file, &jws).unwrap();
        // No key anywhere: one clear line, and nothing made in the folder.
        let empty = tempfile::tempdir().unwrap();
        let none = run(pilotgate(empty.path(), None)
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(!none.status.success());
        let said = text(&none.stderr);
        assert!(
            said.contains("no pseudonym key configured: set PILOTGATE_PSEUDONYM_KEY or PILOTGATE_PSEUDONYM_KEY_FILE"),
            "{said}"
        );
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "no database or key file is made"
        );
        // The right key, from a key file, with no database: valid.
        let key_file = keys.path().join("pilotgate.key");
        std::fs::write(&key_file, crate::support::process::TEST_PSEUDONYM_KEY).unwrap();
        let valid = run(pilotgate(empty.path(), None)
            .env("PILOTGATE_PSEUDONYM_KEY_FILE", &key_file)
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(valid.status.success(), "{}", text(&valid.stderr));
        assert!(text(&valid.stdout).starts_with("valid: receipt "));
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
        // Another key of the same version: not "altered" but an unknown key.
        let other = run(pilotgate(empty.path(), None)
            .env("PILOTGATE_PSEUDONYM_KEY", format!("1:{}", "07".repeat(32)))
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(!other.status.success());
        let said = text(&other.stderr);
        assert!(
            said.contains("unknown key") && said.contains(kid) && !said.contains("altered"),
            "{said}"
        );
        // Altered: the right key, a changed payload.
        let parts: Vec<&str> = jws.split('.').collect();
        let mut payload = payload_of(&jws);
        payload["piiPrincipalId"] = json!("someone else");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        std::fs::write(&file, forged).unwrap();
        let altered = run(pilotgate(empty.path(), None)
            .env("PILOTGATE_PSEUDONYM_KEY_FILE", &key_file)
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(!altered.status.success());
        assert!(text(&altered.stderr).contains("altered"));
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }
);
