//! Black-box tests of the HTTP API through a spawned app, on SQLite and PostgreSQL.

use crate::support::assert_json_error;
use pilotgate_domain::Role;
use pilotgate_server::auth::{Access, PERMISSIONS};
use reqwest::Method;

api_story!(health_and_readiness_answer_ok, |app| {
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    assert_eq!(app.get("/readyz", None).await.status().as_u16(), 200);
});

api_story!(
    readiness_fails_with_503_when_the_database_goes_away,
    |app| {
        assert_eq!(app.get("/readyz", None).await.status().as_u16(), 200);
        match app.db.sqlite_file() {
            Some(file) => std::fs::remove_file(file).unwrap(),
            None => app.db.drop_postgres_database(),
        }
        let body = assert_json_error(app.get("/readyz", None).await, 503).await;
        assert_eq!(body["error"], "unavailable");
        // Liveness does not depend on the database.
        assert_eq!(app.get("/healthz", None).await.status().as_u16(), 200);
    }
);

api_story!(an_unknown_route_is_a_json_404, |app| {
    let body = assert_json_error(app.get("/api/v1/nothing-here", None).await, 404).await;
    assert_eq!(body["error"], "not_found");
});

api_story!(a_method_the_route_does_not_take_is_a_json_405, |app| {
    let response = app
        .request(Method::DELETE, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_json_error(response, 405).await;
});

api_story!(an_oversized_body_is_a_json_413, |app| {
    let body = vec![b'x'; 65 * 1024];
    let response = app
        .request(Method::POST, "/api/v1/audit", Some(Role::Compliance))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let body = assert_json_error(response, 413).await;
    assert_eq!(body["error"], "payload_too_large");
});

api_story!(metrics_count_requests_by_route_and_status, |app| {
    app.get("/healthz", None).await;
    app.get("/healthz", None).await;
    app.get("/api/v1/audit", None).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        text.contains(
            r#"pilotgate_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"pilotgate_http_requests_total{method="GET",route="/api/v1/audit",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("pilotgate_http_request_duration_seconds_bucket"),
        "{text}"
    );
});

api_story!(tokens_are_checked_and_revoked_tokens_refused, |app| {
    let no_token = assert_json_error(app.get("/api/v1/audit", None).await, 401).await;
    assert_eq!(no_token["error"], "unauthorized");
    let garbage = app
        .client
        .get(format!("{}/api/v1/audit", app.address))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_json_error(garbage, 401).await;
    let mut forged = app.tokens[&Role::Compliance].clone();
    // Change the last hex digit of the secret to another one.
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let forged = app
        .client
        .get(format!("{}/api/v1/audit", app.address))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_json_error(forged, 401).await;

    assert_eq!(
        app.get("/api/v1/audit", Some(Role::Compliance))
            .await
            .status()
            .as_u16(),
        200
    );
    app.db
        .store
        .revoke_token(
            "compliance-token",
            None,
            &pilotgate_domain::Actor::operator(),
        )
        .await
        .unwrap();
    assert_json_error(app.get("/api/v1/audit", Some(Role::Compliance)).await, 401).await;
});

api_story!(every_route_refuses_every_role_it_should, |app| {
    for permission in PERMISSIONS {
        let method = Method::from_bytes(permission.method.as_bytes()).unwrap();
        let subject = "a".repeat(64);
        let path = permission
            .path
            .replace("{subject}", &subject)
            .replace("{key}", "matrix-pilot");
        let path = path.as_str();
        let callers = std::iter::once(None).chain(Role::ALL.into_iter().map(Some));
        for caller in callers {
            let response = app
                .request(method.clone(), path, caller)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let expected_refusal = match (permission.access, caller) {
                (Access::Public, _) => None,
                (Access::Roles(_), None) => Some(401),
                (Access::Roles(_), Some(Role::Admin)) => None,
                (Access::Roles(roles), Some(role)) if roles.contains(&role) => None,
                (Access::Roles(_), Some(_)) => Some(403),
                (Access::Only(_), None) => Some(401),
                (Access::Only(roles), Some(role)) if roles.contains(&role) => None,
                (Access::Only(_), Some(_)) => Some(403),
            };
            match expected_refusal {
                Some(refusal) => {
                    assert_eq!(status, refusal, "{method} {path} as {caller:?}");
                    assert_json_error(response, refusal).await;
                }
                None => {
                    assert!(
                        ![401, 403, 405].contains(&status),
                        "{method} {path} as {caller:?} was refused with {status}"
                    );
                    // A 404 may say the pilot does not exist, never that the route does not.
                    let body = response.text().await.unwrap();
                    assert!(
                        !body.contains("no route matches"),
                        "{method} {path} is not routed"
                    );
                }
            }
        }
    }
});

api_story!(
    the_audit_log_pages_and_verifies_and_names_a_tampered_entry,
    |app| {
        // Spawning created one token per role: five audit entries.
        let page: serde_json::Value = app
            .get_json("/api/v1/audit?limit=2", Some(Role::Compliance))
            .await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 2);
        assert_eq!(page["next_after"], 2);
        assert_eq!(page["entries"][0]["action"], "token.create");
        assert_eq!(page["entries"][0]["details"]["role"], "admin");
        let rest: serde_json::Value = app
            .get_json("/api/v1/audit?after=2&limit=100", Some(Role::Admin))
            .await;
        assert_eq!(rest["entries"].as_array().unwrap().len(), 3);
        assert_eq!(rest["next_after"], serde_json::Value::Null);
        let target: serde_json::Value = app
            .get(
                "/api/v1/audit?target=token:ingest-token",
                Some(Role::Compliance),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(target["entries"].as_array().unwrap().len(), 1);

        let verify: serde_json::Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(verify["ok"], true);
        assert_eq!(verify["entries"], 5);

        app.db
            .execute_raw("UPDATE audit_log SET actor = 'someone else' WHERE id = 4")
            .await
            .unwrap();
        let verify: serde_json::Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(verify["ok"], false);
        assert_eq!(verify["first_bad_id"], 4);

        let bad_limit = app
            .get("/api/v1/audit?limit=0", Some(Role::Compliance))
            .await;
        assert_json_error(bad_limit, 400).await;
        let bad_after = app
            .get("/api/v1/audit?after=x", Some(Role::Compliance))
            .await;
        assert_json_error(bad_after, 400).await;
    }
);

api_story!(
    the_openapi_document_describes_every_route_in_the_permission_table,
    |app| {
        let document: serde_json::Value = app
            .get("/api/v1/openapi.json", None)
            .await
            .json()
            .await
            .unwrap();
        let paths = document["paths"].as_object().unwrap();
        for permission in PERMISSIONS {
            let operation = &paths[permission.path][permission.method.to_lowercase()];
            assert!(
                operation.is_object(),
                "{} {} is not documented",
                permission.method,
                permission.path
            );
            if let Access::Roles(_) | Access::Only(_) = permission.access {
                assert!(
                    operation["security"].is_array(),
                    "{} {} does not declare its bearer token",
                    permission.method,
                    permission.path
                );
                for status in ["401", "429"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{} {} does not document {status}",
                        permission.method,
                        permission.path
                    );
                }
            }
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            documented,
            PERMISSIONS.len(),
            "the document lists routes the permission table does not"
        );
    }
);

#[test]
fn the_permission_table_lists_each_route_once() {
    let mut seen = std::collections::HashSet::new();
    for permission in PERMISSIONS {
        assert!(
            seen.insert((permission.method, permission.path)),
            "{} {} twice",
            permission.method,
            permission.path
        );
    }
}

api_story!(
    a_client_guessing_one_tokens_secret_is_throttled_and_valid_tokens_are_not,
    |app| {
        // Wrong secrets for one token id from one client.
        let guess = || {
            app.client
                .get(format!("{}/api/v1/purposes", app.address))
                .bearer_auth(format!("pgt_{:012x}_{}", 0xabcu32, "0".repeat(64)))
                .send()
        };
        for n in 0..pilotgate_server::throttle::AuthFailures::LIMIT {
            assert_eq!(guess().await.unwrap().status().as_u16(), 401, "guess {n}");
        }
        let response = guess().await.unwrap();
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let body = assert_json_error(response, 429).await;
        assert_eq!(body["error"], "too_many_requests");
        // Valid tokens from the same client are answered: a guesser locks nobody out.
        let valid = app.get("/api/v1/purposes", Some(Role::Analyst)).await;
        assert_eq!(valid.status().as_u16(), 200);
        // Requests that need no token still work.
        assert_eq!(app.get("/healthz", None).await.status().as_u16(), 200);
    }
);
