//! Configuration: defaults, then an optional `pilotgate.toml`, then environment
//! variables, which win. Secrets are never shown by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use pilotgate_analysis::disclosure::MinCell;
use serde::Deserialize;

use crate::network::{AddressRange, Network};

/// Everything the service needs to start.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://FILE` or `postgres://…`; may hold a password.
    pub database_url: String,
    /// Where the HTTP server listens, e.g. `127.0.0.1:8080`.
    pub bind: String,
    /// Pseudonym keys given inline (`PILOTGATE_PSEUDONYM_KEY`), which win over the key file.
    pub pseudonym_key: Option<String>,
    /// The key file, created with mode 0600 on first run when no key is given.
    pub pseudonym_key_file: PathBuf,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `text` (default) or `json` log lines on stderr.
    pub log_format: LogFormat,
    /// Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed
    /// (`PILOTGATE_TRUSTED_PROXIES`: addresses and CIDR ranges, comma-separated; none by default).
    pub trusted_proxies: Vec<AddressRange>,
    /// The address people use to reach the server, e.g. `https://pilotgate.example.com`;
    /// when it is `https://`, cookies are `Secure`.
    pub public_url: Option<String>,
    /// The audit chain's key given inline (`PILOTGATE_AUDIT_KEY`, 64 hex digits), which wins over the file.
    pub audit_key: Option<String>,
    /// The audit key file; `None` is `pilotgate.audit.key` beside the pseudonym key file.
    pub audit_key_file: Option<PathBuf>,
    /// The append-only file of audit chain heads; `None` is `pilotgate.anchor`
    /// beside the audit key file.
    pub audit_anchor_file: Option<PathBuf>,
    /// How the database is encrypted at rest, in the operator's words
    /// (`PILOTGATE_ENCRYPTED_AT_REST`, e.g. "LUKS volume /var/lib"); the
    /// pilots' risk checklist shows it as evidence. `None`: not declared.
    pub encrypted_at_rest: Option<String>,
    /// The `sslmode` of the PostgreSQL connection (`PILOTGATE_DATABASE_SSLMODE`),
    /// added to the database URL when it does not say it.
    pub database_sslmode: Option<String>,
    /// The CA (PEM) the PostgreSQL server's certificate must be signed by
    /// (`PILOTGATE_DATABASE_CA_FILE`); without a mode it means `verify-full`.
    pub database_ca_file: Option<PathBuf>,
    /// The PEM certificate chain `serve` speaks HTTPS with (`PILOTGATE_TLS_CERT_FILE`);
    /// given with the key, cookies are `Secure` and responses carry HSTS.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of that certificate (`PILOTGATE_TLS_KEY_FILE`).
    pub tls_key_file: Option<PathBuf>,
    /// The minimum cell size `k` (`PILOTGATE_MIN_CELL`, default 10): no
    /// count or mean of fewer than `k` people is released by any page,
    /// route or download.
    pub min_cell: MinCell,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://pilotgate.db".to_owned(),
            bind: "127.0.0.1:8080".to_owned(),
            pseudonym_key: None,
            pseudonym_key_file: PathBuf::from("pilotgate.key"),
            max_body_bytes: 2 * 1024 * 1024,
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            public_url: None,
            audit_key: None,
            audit_key_file: None,
            audit_anchor_file: None,
            encrypted_at_rest: None,
            database_sslmode: None,
            database_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            min_cell: MinCell::DEFAULT,
        }
    }
}

impl Config {
    /// What the operator said about the network in front of the server.
    pub fn network(&self) -> Network {
        Network {
            trusted_proxies: self.trusted_proxies.clone(),
            public_https: self.serves_https()
                || self
                    .public_url
                    .as_deref()
                    .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://")),
        }
    }

    /// Whether `serve` speaks HTTPS itself (a certificate and its key are given).
    pub fn serves_https(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
    }

    /// Adds the database TLS settings to the URL (see `tls::database_url_with_tls`)
    /// and checks that the HTTPS certificate comes with its key.
    fn settle_tls(mut self, origin: &str) -> Result<Config, ConfigError> {
        self.database_url = crate::tls::database_url_with_tls(
            &self.database_url,
            self.database_sslmode.as_deref(),
            self.database_ca_file.as_deref(),
        )
        .map_err(|e| ConfigError(format!("{origin}{e}")))?;
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError(format!(
                "{origin}the TLS certificate and key (PILOTGATE_TLS_CERT_FILE, PILOTGATE_TLS_KEY_FILE) go together"
            )));
        }
        Ok(self)
    }

    /// The audit key file in use.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| beside(&self.pseudonym_key_file, "pilotgate.audit.key"))
    }

    /// The anchor file in use.
    pub fn audit_anchor_path(&self) -> PathBuf {
        self.audit_anchor_file
            .clone()
            .unwrap_or_else(|| beside(&self.audit_key_path(), "pilotgate.anchor"))
    }
}

/// The file `name` in the folder of `path`.
fn beside(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.join(name),
        _ => PathBuf::from(name),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field(
                "pseudonym_key",
                &self.pseudonym_key.as_ref().map(|_| "[redacted]"),
            )
            .field("pseudonym_key_file", &self.pseudonym_key_file)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url)
            .field("audit_key", &self.audit_key.as_ref().map(|_| "[redacted]"))
            .field("audit_key_file", &self.audit_key_file)
            .field("audit_anchor_file", &self.audit_anchor_file)
            .field("encrypted_at_rest", &self.encrypted_at_rest)
            .field("database_sslmode", &self.database_sslmode)
            .field("database_ca_file", &self.database_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("min_cell", &self.min_cell.get())
            .finish()
    }
}

/// The keys `pilotgate.toml` may hold; each has an environment variable of the same name in capitals.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    bind: Option<String>,
    pseudonym_key_file: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    trusted_proxies: Option<String>,
    public_url: Option<String>,
    audit_key_file: Option<PathBuf>,
    audit_anchor_file: Option<PathBuf>,
    encrypted_at_rest: Option<String>,
    database_sslmode: Option<String>,
    database_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    min_cell: Option<u64>,
}

/// A configuration that cannot be used, said in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads `PILOTGATE_CONFIG` (or `./pilotgate.toml` when present) and the environment.
    pub fn load() -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let file = match env("PILOTGATE_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("pilotgate.toml")).filter(|p| p.exists()),
        };
        let mut config = match file {
            Some(path) => Config::read_file(&path)?,
            None => Config::default(),
        };
        if let Some(url) = env("PILOTGATE_DATABASE_URL") {
            config.database_url = url;
        }
        if let Some(bind) = env("PILOTGATE_BIND") {
            config.bind = bind;
        }
        config.pseudonym_key = env("PILOTGATE_PSEUDONYM_KEY");
        if let Some(path) = env("PILOTGATE_PSEUDONYM_KEY_FILE") {
            config.pseudonym_key_file = PathBuf::from(path);
        }
        if let Some(limit) = env("PILOTGATE_MAX_BODY_BYTES") {
            config.max_body_bytes = limit.parse().map_err(|_| {
                ConfigError("PILOTGATE_MAX_BODY_BYTES must be a whole number of bytes".to_owned())
            })?;
        }
        if let Some(list) = env("PILOTGATE_TRUSTED_PROXIES") {
            config.trusted_proxies = Network::parse_proxies(&list)
                .map_err(|e| ConfigError(format!("PILOTGATE_TRUSTED_PROXIES: {e}")))?;
        }
        if let Some(url) = env("PILOTGATE_PUBLIC_URL") {
            config.public_url = Some(check_public_url("PILOTGATE_PUBLIC_URL", url)?);
        }
        config.audit_key = env("PILOTGATE_AUDIT_KEY");
        if let Some(path) = env("PILOTGATE_AUDIT_KEY_FILE") {
            config.audit_key_file = Some(PathBuf::from(path));
        }
        if let Some(path) = env("PILOTGATE_AUDIT_ANCHOR_FILE") {
            config.audit_anchor_file = Some(PathBuf::from(path));
        }
        if let Some(how) = env("PILOTGATE_ENCRYPTED_AT_REST") {
            config.encrypted_at_rest =
                Some(check_encrypted_at_rest("PILOTGATE_ENCRYPTED_AT_REST", how)?);
        }
        if let Some(mode) = env("PILOTGATE_DATABASE_SSLMODE") {
            config.database_sslmode = Some(mode);
        }
        if let Some(path) = env("PILOTGATE_DATABASE_CA_FILE") {
            config.database_ca_file = Some(PathBuf::from(path));
        }
        if let Some(path) = env("PILOTGATE_TLS_CERT_FILE") {
            config.tls_cert_file = Some(PathBuf::from(path));
        }
        if let Some(path) = env("PILOTGATE_TLS_KEY_FILE") {
            config.tls_key_file = Some(PathBuf::from(path));
        }
        if let Some(k) = env("PILOTGATE_MIN_CELL") {
            let k = k.parse().map_err(|_| {
                ConfigError("PILOTGATE_MIN_CELL must be a whole number of people".to_owned())
            })?;
            config.min_cell = check_min_cell("PILOTGATE_MIN_CELL", k)?;
        }
        if let Some(format) = env("PILOTGATE_LOG_FORMAT") {
            config.log_format = match format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError(
                        "PILOTGATE_LOG_FORMAT must be text or json".to_owned(),
                    ));
                }
            };
        }
        config.settle_tls("")
    }

    /// The defaults overridden by the keys of the TOML file at `path`, with
    /// the file's database TLS settings added to its database URL.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Config::read_file(path)?.settle_tls(&format!("{}: ", path.display()))
    }

    /// The file's keys as they are (the environment may still change them).
    fn read_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the configuration file: {e}",
                path.display()
            ))
        })?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.message())))?;
        let defaults = Config::default();
        Ok(Config {
            database_url: file.database_url.unwrap_or(defaults.database_url),
            bind: file.bind.unwrap_or(defaults.bind),
            pseudonym_key: None,
            pseudonym_key_file: file
                .pseudonym_key_file
                .unwrap_or(defaults.pseudonym_key_file),
            max_body_bytes: file.max_body_bytes.unwrap_or(defaults.max_body_bytes),
            log_format: file.log_format.unwrap_or(defaults.log_format),
            trusted_proxies: match file.trusted_proxies {
                Some(list) => Network::parse_proxies(&list).map_err(|e| {
                    ConfigError(format!("{}: trusted_proxies: {e}", path.display()))
                })?,
                None => defaults.trusted_proxies,
            },
            public_url: file
                .public_url
                .map(|url| check_public_url(&format!("{}: public_url", path.display()), url))
                .transpose()?,
            audit_key: None,
            audit_key_file: file.audit_key_file,
            audit_anchor_file: file.audit_anchor_file,
            encrypted_at_rest: file
                .encrypted_at_rest
                .map(|how| {
                    check_encrypted_at_rest(&format!("{}: encrypted_at_rest", path.display()), how)
                })
                .transpose()?,
            database_sslmode: file.database_sslmode,
            database_ca_file: file.database_ca_file,
            tls_cert_file: file.tls_cert_file,
            tls_key_file: file.tls_key_file,
            min_cell: match file.min_cell {
                Some(k) => check_min_cell(&format!("{}: min_cell", path.display()), k)?,
                None => defaults.min_cell,
            },
        })
    }
}

/// The minimum cell size must be at least one person.
fn check_min_cell(name: &str, k: u64) -> Result<MinCell, ConfigError> {
    MinCell::new(k).ok_or_else(|| ConfigError(format!("{name} must be at least 1")))
}

/// A public URL must say its scheme.
fn check_public_url(name: &str, url: String) -> Result<String, ConfigError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(url)
    } else {
        Err(ConfigError(format!(
            "{name} must begin with https:// or http://"
        )))
    }
}

/// A declaration of encryption at rest is one line of plain text (pages show it).
fn check_encrypted_at_rest(name: &str, how: String) -> Result<String, ConfigError> {
    pilotgate_domain::text::PlainText::line(how.trim(), 200)
        .map(|text| text.into_string())
        .map_err(|e| ConfigError(format!("{name} {e}")))
}

/// `scheme://user:password@host/db` shown as `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!(
                "{}{masked}@{host}{}",
                &url[..scheme_end],
                &url[authority_end..]
            )
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/pg"),
            "postgres://app:***@db:5432/pg"
        );
        assert_eq!(redact_url("postgres://app@db/pg"), "postgres://app@db/pg");
        assert_eq!(redact_url("sqlite://pilotgate.db"), "sqlite://pilotgate.db");
    }

    #[test]
    fn debug_output_hides_the_key_and_the_password() {
        let config = Config {
            database_url: "postgres://app:s3cret@db/pg".to_owned(),
            pseudonym_key: Some("00112233".repeat(8)),
            ..Config::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"));
        assert!(!debug.contains("00112233"));
    }

    #[test]
    fn a_toml_file_overrides_the_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pilotgate.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:9000\"\nlog_format = \"json\"\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.bind, "0.0.0.0:9000");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.database_url, "sqlite://pilotgate.db");

        std::fs::write(&path, "bnd = \"x\"\n").unwrap();
        let error = Config::from_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("pilotgate.toml") && error.contains("bnd"),
            "{error}"
        );
    }

    #[test]
    fn encryption_at_rest_is_declared_as_one_line_of_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pilotgate.toml");
        std::fs::write(&path, "encrypted_at_rest = \"LUKS volume /var/lib\"\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(
            config.encrypted_at_rest.as_deref(),
            Some("LUKS volume /var/lib")
        );
        assert_eq!(Config::default().encrypted_at_rest, None);

        std::fs::write(&path, "encrypted_at_rest = \"a\\u001bb\"\n").unwrap();
        let error = Config::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("encrypted_at_rest"), "{error}");
    }
}
