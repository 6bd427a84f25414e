//! Throw-away certificates for the TLS tests, made with the `openssl`
//! command: a CA of the test's own and a server certificate it signs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA's certificate and key, in PEM files.
pub struct Ca {
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate (signed by a test CA) and its key, in PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whether the `openssl` command is here.
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new self-signed CA named `name`, its files in `dir`.
pub fn ca(dir: &Path, name: &str) -> Ca {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    Ca { cert, key }
}

/// A server certificate for the DNS name `host`, signed by `ca`, its files in `dir`.
pub fn server(dir: &Path, ca: &Ca, host: &str) -> ServerCert {
    let cert = dir.join(format!("{host}.pem"));
    let key = dir.join(format!("{host}.key"));
    let csr = dir.join(format!("{host}.csr"));
    let extensions = dir.join(format!("{host}.ext"));
    std::fs::write(
        &extensions,
        format!(
            "subjectAltName=DNS:{host}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={host}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca.cert.to_str().unwrap(),
            "-CAkey",
            ca.key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            extensions.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    ServerCert { cert, key }
}
