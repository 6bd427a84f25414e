//! The audit page (issue 22) over HTTP, on SQLite and PostgreSQL: newest
//! first, "Older entries" walks page after page (strictly older, no repeats,
//! none skipped) and "Newer entries" walks back; filters by actor, action and
//! target narrow the page and survive paging; `GET /api/v1/audit` takes the
//! same filters and pages newest first with `before`.

use crate::support::{TestApp, web};
use pilotgate_domain::Role;
use serde_json::Value;

/// The link of `rel` ("next": older, "prev": newer) on an audit page, decoded.
fn link(html: &str, rel: &str) -> Option<String> {
    let end = html.find(&format!("\" rel=\"{rel}\""))?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// The ids of the `<tr>` rows of an audit page, in page order.
fn row_ids(html: &str) -> Vec<i64> {
    html.split("<tr><td class=\"num\">")
        .skip(1)
        .filter_map(|row| row.split('<').next()?.parse().ok())
        .collect()
}

/// The rows of an audit page, each as its HTML.
fn rows(html: &str) -> Vec<&str> {
    html.split("<tr><td class=\"num\">")
        .skip(1)
        .map(|row| row.split("</tr>").next().unwrap_or_default())
        .collect()
}

/// Every audit entry's id, newest first, through the API.
async fn all_ids(app: &TestApp) -> Vec<i64> {
    let page = app
        .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
        .await;
    let mut ids: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    ids.reverse();
    ids
}

api_story!(
    older_entries_walks_every_page_newest_first_without_repeats_or_gaps,
    |app| {
        for n in 0..230 {
            app.add_token(&format!("t{n}"), Role::Analyst).await;
        }
        let expected = all_ids(&app).await;
        assert!(expected.len() > 200, "more than two pages");
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let mut path = "/ui/audit".to_owned();
        let mut seen: Vec<i64> = Vec::new();
        let mut pages = Vec::new();
        loop {
            let (status, html) = app.page(&cookie, &path).await;
            assert_eq!(status, 200, "{path}");
            let ids = row_ids(&html);
            assert!(!ids.is_empty(), "{path} shows entries");
            assert!(
                ids.windows(2).all(|w| w[0] > w[1]),
                "newest first on {path}"
            );
            if let Some(last) = seen.last() {
                assert!(
                    ids[0] < *last,
                    "{path} is strictly older than the page before"
                );
            }
            seen.extend(&ids);
            pages.push(path.clone());
            match link(&html, "next") {
                Some(older) => path = older,
                None => break,
            }
            assert!(pages.len() < 10, "the pages end");
        }
        assert_eq!(pages.len(), 3, "{pages:?}");
        assert_eq!(seen, expected, "every entry once, none skipped");

        // "Newer entries" from the last page returns to the second one.
        let (_, last) = app.page(&cookie, &pages[2]).await;
        let newer = link(&last, "prev").expect("a link to newer entries");
        let (_, second) = app.page(&cookie, &newer).await;
        assert_eq!(row_ids(&second), expected[100..200].to_vec());
        let (_, first) = app.page(&cookie, &link(&second, "prev").unwrap()).await;
        assert_eq!(row_ids(&first), expected[..100].to_vec());
        assert!(
            link(&first, "prev").is_none(),
            "the newest page has no newer link"
        );
    }
);

api_story!(
    filters_by_actor_action_and_target_narrow_the_page_and_survive_paging,
    |app| {
        for n in 0..120 {
            app.add_token(&format!("t{n}"), Role::Analyst).await;
        }
        app.register_purpose().await;
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;

        // By actor: a token's name finds its entries, whatever its role.
        let (status, html) = app.page(&cookie, "/ui/audit?actor=compliance-token").await;
        assert_eq!(status, 200);
        let found = rows(&html);
        assert_eq!(found.len(), 1, "{html}");
        assert!(found[0].contains("purpose.create"));
        assert!(
            found[0].contains("registered purpose personalize.content"),
            "a summary"
        );
        assert!(
            html.contains("value=\"compliance-token\""),
            "the form keeps the filter"
        );

        // By action, across pages: 125 token.create entries (5 at start, 120 here).
        let (_, first) = app.page(&cookie, "/ui/audit?action=token.create").await;
        let first_rows = rows(&first);
        assert_eq!(first_rows.len(), 100);
        assert!(
            first_rows
                .iter()
                .all(|r| r.contains("<td>token.create</td>"))
        );
        assert!(first_rows[0].contains("issued a token for t119 (role analyst)"));
        let older = link(&first, "next").expect("older entries");
        assert!(older.contains("action=token.create"), "{older}");
        let (_, second) = app.page(&cookie, &older).await;
        let second_rows = rows(&second);
        assert_eq!(second_rows.len(), 25);
        assert!(
            second_rows
                .iter()
                .all(|r| r.contains("<td>token.create</td>"))
        );
        let (first_ids, second_ids) = (row_ids(&first), row_ids(&second));
        assert!(second_ids[0] < *first_ids.last().unwrap());
        assert!(link(&second, "next").is_none());
        let newer = link(&second, "prev").expect("newer entries");
        assert!(newer.contains("action=token.create"), "{newer}");
        let (_, back) = app.page(&cookie, &newer).await;
        assert_eq!(row_ids(&back), first_ids);

        // By target, and by several filters at once.
        let (_, one) = app.page(&cookie, "/ui/audit?target=token%3At7").await;
        assert_eq!(rows(&one).len(), 1);
        assert!(rows(&one)[0].contains("token:t7<"));
        let (_, none) = app
            .page(&cookie, "/ui/audit?target=token%3At7&action=purpose.create")
            .await;
        assert!(rows(&none).is_empty());
        assert!(none.contains("match the filters"));

        // The API: the same filters, newest first with `before`.
        let page: Value = app
            .get_json(
                &format!(
                    "/api/v1/audit?action=token.create&before={}&limit=100",
                    i64::MAX
                ),
                Some(Role::Compliance),
            )
            .await;
        let ids: Vec<i64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, first_ids);
        let next = page["next_before"].as_i64().expect("a next page");
        let rest: Value = app
            .get_json(
                &format!("/api/v1/audit?action=token.create&before={next}&limit=100"),
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(rest["entries"].as_array().unwrap().len(), 25);
        assert!(rest["next_before"].is_null());
        let by_actor: Value = app
            .get_json(
                "/api/v1/audit?actor=operator&limit=1000",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(by_actor["entries"].as_array().unwrap().len(), 125);
        let both = app
            .get("/api/v1/audit?after=1&before=9", Some(Role::Compliance))
            .await;
        assert_eq!(both.status(), 400);
    }
);

/// The sign-in page is public; the filters are not a way around the role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filtered_audit_page_is_compliance_only() {
    let app = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    let cookie = web::sign_in(&app.address, &app.tokens[&Role::Marketer])
        .await
        .pair;
    let (status, _) = app.page(&cookie, "/ui/audit?action=token.create").await;
    assert_eq!(status, 403);
}
