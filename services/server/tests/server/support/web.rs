//! The dashboards as a browser without JavaScript sees them: a client that
//! shows redirects, the cookies a response sets, the CSRF field of a form,
//! signing in through the form, and reading a page with a cookie.

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// A cookie a response set: `name=value` to send back, and the whole header.
pub struct SetCookie {
    pub pair: String,
    pub full: String,
}

/// The cookie `name` that `response` sets, if it sets one.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<SetCookie> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|full| SetCookie {
            pair: full.split(';').next().unwrap_or_default().to_owned(),
            full: full.to_owned(),
        })
}

/// The value of the first CSRF field of `html`.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap_or_default().to_owned()
}

/// Signs in at `base` with `token` through the form; the session cookie.
pub async fn sign_in(base: &str, token: &str) -> SetCookie {
    let client = client();
    let form = client
        .get(format!("{base}/ui/sign-in"))
        .send()
        .await
        .expect("the sign-in form");
    assert_eq!(form.status(), 200);
    let pre = set_cookie(&form, "pilotgate_csrf").expect("a pre-session cookie");
    let csrf = csrf_of(&form.text().await.expect("a page"));
    let response = client
        .post(format!("{base}/ui/sign-in"))
        .header("cookie", &pre.pair)
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 303, "signed in");
    let session = set_cookie(&response, "pilotgate_session").expect("a session cookie");
    assert!(
        session.full.contains("HttpOnly") && session.full.contains("SameSite=Strict"),
        "{}",
        session.full
    );
    session
}

/// `GET base+path` with `cookie`: the status and the page.
pub async fn page(base: &str, cookie: &str, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("a page");
    (
        response.status().as_u16(),
        response.text().await.expect("a page"),
    )
}

/// `POST base+path` of the form `fields` with `cookie`.
pub async fn submit(
    base: &str,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .expect("a form post")
}
