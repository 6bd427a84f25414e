//! `pilotgate serve` with a certificate and key speaks HTTPS only: the
//! certificate is the one given, every response carries HSTS, the cookies
//! are `Secure`, and plain HTTP on the same port gets no answer.

use std::net::SocketAddr;

use pilotgate_store::Dialect;

use crate::support::TestApp;
use crate::support::certs;
use crate::support::process::{Server, pilotgate};

#[tokio::test]
async fn serve_speaks_https_with_hsts_and_secure_cookies_and_refuses_http() {
    assert!(
        certs::openssl_available(),
        "the HTTPS test makes its certificates with the openssl command, which is missing"
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path(), "pilotgate-test-ca");
    let cert = certs::server(dir.path(), &ca, "pilotgate.test");
    let mut command = pilotgate(dir.path(), None);
    command
        .env("PILOTGATE_TLS_CERT_FILE", &cert.cert)
        .env("PILOTGATE_TLS_KEY_FILE", &cert.key);
    let server = Server::start(command);
    assert!(
        server
            .lines
            .iter()
            .any(|line| line.contains("https://127.0.0.1:")),
        "the serving line names the https address: {:?}",
        server.lines
    );

    let address = SocketAddr::from(([127, 0, 0, 1], server.port));
    let trusting = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.cert).unwrap()).unwrap(),
        )
        .resolve("pilotgate.test", address)
        .https_only(true)
        .build()
        .unwrap();
    let base = format!("https://pilotgate.test:{}", server.port);
    let health = trusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("an HTTPS request trusting the test CA");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // Errors carry it too (the header is added outside every other middleware).
    let missing = trusting
        .get(format!("{base}/api/v1/no-such-route"))
        .send()
        .await
        .unwrap();
    assert!(missing.status().is_client_error());
    assert_eq!(
        missing.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let sign_in = trusting
        .get(format!("{base}/ui/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 200);
    let cookie = sign_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A client that does not trust the test CA is refused by its own TLS.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("pilotgate.test", address)
        .build()
        .unwrap();
    let error = untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect_err("a certificate of an unknown CA is not trusted");
    assert!(error.is_connect(), "{error:?}");

    // Plain HTTP on the HTTPS port: the TLS handshake fails, no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP must get no answer on the HTTPS port: {plain:?}"
    );

    let (exit, log, _) = server.terminate();
    assert!(exit.success(), "{log}");
}

#[tokio::test]
async fn a_certificate_without_its_key_or_an_unreadable_one_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = pilotgate(dir.path(), None)
        .arg("serve")
        .env("PILOTGATE_BIND", "127.0.0.1:0")
        .env("PILOTGATE_TLS_CERT_FILE", dir.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PILOTGATE_TLS_KEY_FILE"), "{stderr}");

    let out = pilotgate(dir.path(), None)
        .arg("serve")
        .env("PILOTGATE_BIND", "127.0.0.1:0")
        .env("PILOTGATE_TLS_CERT_FILE", dir.path().join("cert.pem"))
        .env("PILOTGATE_TLS_KEY_FILE", dir.path().join("key.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot serve HTTPS") && stderr.contains("cert.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_a_certificate_there_is_no_hsts() {
    let app = TestApp::spawn(Dialect::Sqlite).await.unwrap();
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("strict-transport-security").is_none());
}
