//! The PostgreSQL connection over TLS, against a throw-away PostgreSQL the
//! test starts on a free port with `ssl=on`, a certificate for `localhost`
//! signed by a CA the test makes, and only `hostssl` entries in pg_hba.conf
//! (a connection without TLS is refused). The machine's own PostgreSQL is
//! shared with the other tests and is not touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use pilotgate_server::config::Config;
use pilotgate_server::startup::open_store;

use crate::support::certs;

/// A private PostgreSQL cluster, stopped and removed when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// Starts a cluster serving `cert` (for `localhost`) over TLS only.
    fn start(cert: &certs::ServerCert) -> PrivatePostgres {
        let bin = postgres_bin().expect("PostgreSQL's initdb under /usr/lib/postgresql");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivatePostgres {
            bin,
            data: data.clone(),
            // initdb refuses to run as root: the cluster is postgres's then.
            as_postgres: root,
            port,
            _dir: dir,
        };
        std::fs::create_dir(&data).unwrap();
        let owner = |path: &Path| {
            if root {
                run(Command::new("chown").args(["-R", "postgres:"]).arg(path));
            }
        };
        owner(cluster._dir.path());
        run(cluster
            .tool("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data));
        std::fs::copy(&cert.cert, data.join("server.crt")).unwrap();
        std::fs::copy(&cert.key, data.join("server.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .unwrap();
        owner(&data);
        run(cluster.tool("pg_ctl").arg("-D").arg(&data).args([
            "-w",
            "-l",
            data.join("log").to_str().unwrap(),
            "-o",
            &format!(
                "-p {port} -c listen_addresses=localhost -c unix_socket_directories='{}' \
                 -c ssl=on -c fsync=off",
                data.display()
            ),
            "start",
        ]));
        cluster
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{query}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[tokio::test]
async fn postgres_over_tls_verify_full_with_the_ca_and_refusals() {
    assert!(
        certs::openssl_available(),
        "the PostgreSQL TLS test makes its certificates with the openssl command, which is missing"
    );
    if postgres_bin().is_none() {
        eprintln!(
            "SKIPPED postgres_over_tls: no /usr/lib/postgresql/<version>/bin/initdb on this machine \
             to start a private PostgreSQL with ssl=on"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path(), "pilotgate-db-ca");
    let other_ca = certs::ca(dir.path(), "some-other-ca");
    let cert = certs::server(dir.path(), &ca, "localhost");
    let cluster = PrivatePostgres::start(&cert);
    let ca_path = ca.cert.to_str().unwrap();

    // The configuration's CA file: verify-full, and the store opens and migrates.
    let toml = dir.path().join("pilotgate.toml");
    std::fs::write(
        &toml,
        format!(
            "database_url = \"{}\"\ndatabase_ca_file = \"{ca_path}\"\n",
            cluster.url("localhost", "")
        ),
    )
    .unwrap();
    let config = Config::from_file(&toml).unwrap();
    assert!(
        config.database_url.contains("sslmode=verify-full"),
        "{}",
        config.database_url
    );
    let store = open_store(&config.database_url)
        .await
        .expect("verify-full with the test CA connects");
    store.close().await;

    // The same in the URL alone.
    let in_url = cluster.url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={ca_path}"),
    );
    open_store(&in_url)
        .await
        .expect("sslmode and sslrootcert in the URL")
        .close()
        .await;

    // Without TLS the server refuses (pg_hba has hostssl entries only):
    // the connections above did use TLS.
    let error = open_store(&cluster.url("localhost", "?sslmode=disable"))
        .await
        .expect_err("no TLS, no connection")
        .to_string();
    assert!(error.contains("no encryption"), "{error}");

    // A CA that did not sign the server's certificate.
    let wrong = cluster.url(
        "localhost",
        &format!(
            "?sslmode=verify-full&sslrootcert={}",
            other_ca.cert.display()
        ),
    );
    let error = open_store(&wrong)
        .await
        .expect_err("a certificate of another CA is refused")
        .to_string();
    assert!(
        error.contains("invalid peer certificate") && !error.contains("not valid for name"),
        "the error says the certificate's issuer is not trusted: {error}"
    );

    // The right CA but another host name than the certificate's (it names
    // localhost): verify-full refuses. (sqlx 0.8.6's verify-ca does not skip
    // the host name check with rustls 0.23.46, which reports the mismatch as
    // `NotValidForNameContext`: verify-ca behaves as verify-full here.)
    let error = open_store(&cluster.url(
        "127.0.0.1",
        &format!("?sslmode=verify-full&sslrootcert={ca_path}"),
    ))
    .await
    .expect_err("the certificate names localhost, not 127.0.0.1")
    .to_string();
    assert!(
        error.contains("certificate not valid for name \"127.0.0.1\""),
        "the error says the certificate is not for this host: {error}"
    );
    drop(cluster);
}
