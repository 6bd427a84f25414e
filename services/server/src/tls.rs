//! Encryption in transit: the TLS settings of the PostgreSQL connection
//! (added to the database URL, where sqlx reads them) and the certificate and
//! key `pilotgate serve` speaks HTTPS with (rustls, ring provider: the one
//! sqlx uses too).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The `sslmode` values PostgreSQL (and sqlx) know.
pub const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// The database URL with the configuration's TLS settings added: `sslmode`
/// (`PILOTGATE_DATABASE_SSLMODE`) and `sslrootcert` (`PILOTGATE_DATABASE_CA_FILE`).
/// A CA file without a mode means `verify-full` (the certificate is signed by
/// that CA and names the host connected to). A setting the URL states too
/// must agree with it; both settings are refused for SQLite.
pub fn database_url_with_tls(
    url: &str,
    sslmode: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<String, String> {
    if sslmode.is_none() && ca_file.is_none() {
        return Ok(url.to_owned());
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(
            "the database TLS settings (sslmode, CA file) apply to a postgres:// URL only"
                .to_owned(),
        );
    }
    if let Some(mode) = sslmode
        && !SSL_MODES.contains(&mode)
    {
        return Err(format!(
            "the database sslmode must be one of {}",
            SSL_MODES.join(", ")
        ));
    }
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let stated = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let mut added = Vec::new();
    match (stated("sslmode"), sslmode) {
        (Some(in_url), Some(mode)) if in_url != mode => {
            return Err(format!(
                "the database URL says sslmode={in_url} but the configuration says {mode}"
            ));
        }
        (None, Some(mode)) => added.push(format!("sslmode={mode}")),
        (None, None) => added.push("sslmode=verify-full".to_owned()),
        _ => {}
    }
    if let Some(path) = ca_file {
        std::fs::metadata(path)
            .map_err(|e| format!("the database CA file {}: {e}", path.display()))?;
        let text = path
            .to_str()
            .ok_or_else(|| format!("the database CA file {} is not UTF-8", path.display()))?;
        if stated("sslrootcert").is_some() {
            return Err(
                "both the database URL (sslrootcert) and the configuration name a CA file"
                    .to_owned(),
            );
        }
        added.push(format!("sslrootcert={}", percent_encode(text)));
    }
    if added.is_empty() {
        return Ok(url.to_owned());
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}{}", added.join("&")))
}

/// A path as a URL query value: everything but unreserved characters and `/` escaped.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The HTTPS settings of `serve` from a PEM certificate chain and a PEM private key.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<rustls::ServerConfig, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("the TLS certificate {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the TLS certificate {} holds no PEM certificate",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("the TLS key {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the TLS certificate {} and key {} do not make a usable pair: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_adds_verify_full_and_the_escaped_path() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("root ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let url = database_url_with_tls("postgres://app@db/pg", None, Some(&ca)).unwrap();
        assert_eq!(
            url,
            format!(
                "postgres://app@db/pg?sslmode=verify-full&sslrootcert={}",
                ca.to_str().unwrap().replace(' ', "%20")
            )
        );
        let url = database_url_with_tls("postgres://app@db/pg?sslmode=verify-ca", None, Some(&ca))
            .unwrap();
        assert!(url.starts_with("postgres://app@db/pg?sslmode=verify-ca&sslrootcert="));
        assert_eq!(
            database_url_with_tls("postgres://db/pg", Some("require"), None).unwrap(),
            "postgres://db/pg?sslmode=require"
        );
        assert_eq!(
            database_url_with_tls("sqlite://x.db", None, None).unwrap(),
            "sqlite://x.db"
        );
    }

    #[test]
    fn contradictions_unknown_modes_missing_files_and_sqlite_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        for (url, mode, file, needle) in [
            (
                "postgres://db/pg?sslmode=disable",
                Some("verify-full"),
                None,
                "sslmode=disable",
            ),
            (
                "postgres://db/pg",
                Some("verify_full"),
                None,
                "must be one of",
            ),
            (
                "postgres://db/pg",
                None,
                Some(dir.path().join("none.pem")),
                "none.pem",
            ),
            (
                "postgres://db/pg?sslrootcert=/a",
                None,
                Some(ca.clone()),
                "both",
            ),
            ("sqlite://x.db", Some("require"), None, "postgres://"),
        ] {
            let error = database_url_with_tls(url, mode, file.as_deref()).unwrap_err();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }

    #[test]
    fn a_missing_or_empty_certificate_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let missing = dir.path().join("missing.pem");
        let error = server_config(&missing, &empty).unwrap_err();
        assert!(error.contains("missing.pem"), "{error}");
        let error = server_config(&empty, &empty).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
    }
}
