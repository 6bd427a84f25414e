//! Loading the keys kept outside the database: the pseudonym key ring (from
//! `PILOTGATE_PSEUDONYM_KEY` or the key file) and the audit key (from
//! `PILOTGATE_AUDIT_KEY` or the audit key file), checked against the
//! fingerprints the database remembers (`Store::attach_keys`).
//!
//! The pseudonym key file holds one key per version as `VERSION:HEX` (one per
//! line, `#` comments allowed); a bare `HEX` is version 1, and the highest
//! version pseudonymizes new records. The audit key file holds one `HEX`.
//! A missing key file is created (mode 0600, with a warning) only for a
//! database that has never held what that key protects; otherwise starting is
//! refused in one line that says what to restore. Keys never go to the
//! database or a log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use pilotgate_domain::audit::AuditKey;
use pilotgate_domain::pseudonym::{KeyRing, MIN_KEY_BYTES, PseudonymKey};
use pilotgate_store::{KeyState, Store};
use rand::RngCore;

use crate::config::Config;

/// Why no key could be had, said in one line without the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyLoadError(String);

/// Loads both keys for `store` (making missing key files only where
/// [`KeyState`] allows) and attaches them to it; returns the pseudonym ring.
pub async fn attach_keys(config: &Config, store: &Store) -> Result<KeyRing, KeyLoadError> {
    let state = store
        .key_state()
        .await
        .map_err(|e| KeyLoadError(format!("cannot read the key fingerprints: {e}")))?;
    let ring = load_key_ring(config, &state)?;
    let audit = load_audit_key(config, &state)?;
    store
        .attach_keys(&ring, &audit)
        .await
        .map_err(|e| KeyLoadError(e.to_string()))?;
    Ok(ring)
}

/// The pseudonym key ring the configuration names; the key file is created
/// when it is missing and `state` says the database never held a pseudonym.
pub fn load_key_ring(config: &Config, state: &KeyState) -> Result<KeyRing, KeyLoadError> {
    if let Some(inline) = &config.pseudonym_key {
        return parse_key_ring(inline.split(','))
            .map_err(|e| KeyLoadError(format!("PILOTGATE_PSEUDONYM_KEY: {e}")));
    }
    let path = &config.pseudonym_key_file;
    if !path.exists() {
        if !state.may_make_pseudonym_key() {
            return Err(KeyLoadError(format!(
                "{}: the pseudonym key file is missing, but this database holds pseudonymized records{}; \
                 restore the key file it was used with (or set PILOTGATE_PSEUDONYM_KEY_FILE): \
                 a new key is made only for an empty database",
                path.display(),
                versions_known(state)
            )));
        }
        let mut secret = [0u8; MIN_KEY_BYTES];
        rand::rng().fill_bytes(&mut secret);
        create_key_file(
            path,
            &[
                "# pilotgate pseudonym keys: one VERSION:HEX per line; the highest version is current.",
                &format!("1:{}", hex::encode(secret)),
            ],
        )?;
        tracing::warn!(
            path = %path.display(),
            "no pseudonym key was given: created a new random key file (mode 0600); back it up and keep it apart from the database"
        );
    }
    let lines = read_key_lines(path, "pseudonym key")?;
    parse_key_ring(lines.iter().map(String::as_str))
        .map_err(|e| KeyLoadError(format!("{}: {e}", path.display())))
}

/// The pseudonym key ring the configuration names, read only: no database
/// is opened and no key file is ever made (for `pilotgate receipt verify`).
pub fn read_key_ring(config: &Config) -> Result<KeyRing, KeyLoadError> {
    if let Some(inline) = &config.pseudonym_key {
        return parse_key_ring(inline.split(','))
            .map_err(|e| KeyLoadError(format!("PILOTGATE_PSEUDONYM_KEY: {e}")));
    }
    let path = &config.pseudonym_key_file;
    if !path.exists() {
        return Err(KeyLoadError(
            "no pseudonym key configured: set PILOTGATE_PSEUDONYM_KEY or PILOTGATE_PSEUDONYM_KEY_FILE"
                .to_owned(),
        ));
    }
    let lines = read_key_lines(path, "pseudonym key")?;
    parse_key_ring(lines.iter().map(String::as_str))
        .map_err(|e| KeyLoadError(format!("{}: {e}", path.display())))
}

/// The audit key the configuration names; the file is created when it is
/// missing and `state` says no audit key was ever recorded.
pub fn load_audit_key(config: &Config, state: &KeyState) -> Result<AuditKey, KeyLoadError> {
    if let Some(inline) = &config.audit_key {
        return parse_audit_key(inline)
            .map_err(|e| KeyLoadError(format!("PILOTGATE_AUDIT_KEY: {e}")));
    }
    let path = config.audit_key_path();
    if !path.exists() {
        if !state.may_make_audit_key() {
            return Err(KeyLoadError(format!(
                "{}: the audit key file is missing, but this database's audit chain was written with one; \
                 restore the key file it was used with (or set PILOTGATE_AUDIT_KEY_FILE)",
                path.display()
            )));
        }
        let mut secret = [0u8; MIN_KEY_BYTES];
        rand::rng().fill_bytes(&mut secret);
        create_key_file(
            &path,
            &[
                "# pilotgate audit key: chains the audit log; keep it apart from the database.",
                &hex::encode(secret),
            ],
        )?;
        tracing::warn!(
            path = %path.display(),
            "no audit key was given: created a new random audit key file (mode 0600); back it up and keep it apart from the database"
        );
    }
    let lines = read_key_lines(&path, "audit key")?;
    match lines.as_slice() {
        [one] => parse_audit_key(one).map_err(|e| KeyLoadError(format!("{}: {e}", path.display()))),
        _ => Err(KeyLoadError(format!(
            "{}: the audit key file must hold one line of hex digits",
            path.display()
        ))),
    }
}

fn versions_known(state: &KeyState) -> String {
    if state.pseudonym_versions.is_empty() {
        String::new()
    } else {
        let versions: Vec<String> = state
            .pseudonym_versions
            .iter()
            .map(u32::to_string)
            .collect();
        format!(" under key version {}", versions.join(", "))
    }
}

fn parse_audit_key(text: &str) -> Result<AuditKey, String> {
    let secret = hex::decode(text.trim()).map_err(|_| "the key must be hex digits".to_owned())?;
    AuditKey::new(secret).map_err(|e| e.to_string())
}

/// The lines of a key file that are neither blank nor comments.
fn read_key_lines(path: &Path, what: &str) -> Result<Vec<String>, KeyLoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        KeyLoadError(format!(
            "{}: cannot read the {what} file: {e}",
            path.display()
        ))
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Writes `lines` to a new file at `path`, readable by its owner only.
fn create_key_file(path: &Path, lines: &[&str]) -> Result<(), KeyLoadError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            KeyLoadError(format!(
                "{}: cannot create the key file: {e}",
                path.display()
            ))
        })?;
    lines
        .iter()
        .try_for_each(|line| writeln!(file, "{line}"))
        .and_then(|_| file.sync_all())
        .map_err(|e| {
            KeyLoadError(format!(
                "{}: cannot write the key file: {e}",
                path.display()
            ))
        })
}

fn parse_key_ring<'a>(entries: impl Iterator<Item = &'a str>) -> Result<KeyRing, String> {
    let mut keys = Vec::new();
    for (index, entry) in entries.enumerate() {
        let entry = entry.trim();
        let (version, hex_key) = match entry.split_once(':') {
            Some((version, hex_key)) => {
                let version = version.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "key {}: the version before ':' must be a whole number",
                        index + 1
                    )
                })?;
                (version, hex_key.trim())
            }
            None => (1, entry),
        };
        let secret = hex::decode(hex_key)
            .map_err(|_| format!("key {}: the key must be hex digits", index + 1))?;
        keys.push(
            PseudonymKey::new(version, secret).map_err(|e| format!("key {}: {e}", index + 1))?,
        );
    }
    KeyRing::new(keys).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn empty() -> KeyState {
        KeyState {
            pseudonym_versions: Vec::new(),
            audit_key_known: false,
            holds_pseudonyms: false,
            audit_entries: 0,
        }
    }

    #[test]
    fn a_missing_key_file_is_created_private_for_an_empty_database_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            pseudonym_key_file: dir.path().join("pilotgate.key"),
            ..Config::default()
        };
        let first = load_key_ring(&config, &empty()).unwrap();
        let mode = std::fs::metadata(&config.pseudonym_key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_key_ring(&config, &empty()).unwrap();
        assert_eq!(
            first.current().pseudonymize("a"),
            second.current().pseudonymize("a")
        );
        let audit = load_audit_key(&config, &empty()).unwrap();
        assert_eq!(
            config.audit_key_path(),
            dir.path().join("pilotgate.audit.key")
        );
        assert_eq!(
            load_audit_key(&config, &empty()).unwrap().fingerprint(),
            audit.fingerprint()
        );
    }

    #[test]
    fn a_missing_key_file_is_not_replaced_for_a_database_that_used_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            pseudonym_key_file: dir.path().join("pilotgate.key"),
            ..Config::default()
        };
        let used = KeyState {
            pseudonym_versions: vec![1],
            audit_key_known: true,
            holds_pseudonyms: true,
            audit_entries: 10,
        };
        let error = load_key_ring(&config, &used).unwrap_err().to_string();
        assert!(
            error.contains("pilotgate.key")
                && error.contains("key version 1")
                && error.contains("restore"),
            "{error}"
        );
        assert!(!error.contains('\n'));
        assert!(!config.pseudonym_key_file.exists(), "no new key was made");
        // Records from before fingerprints existed count too.
        let legacy = KeyState {
            holds_pseudonyms: true,
            ..empty()
        };
        assert!(load_key_ring(&config, &legacy).is_err());
        let error = load_audit_key(&config, &used).unwrap_err().to_string();
        assert!(error.contains("audit key file is missing"), "{error}");
    }

    #[test]
    fn inline_keys_name_their_versions_and_the_highest_is_current() {
        let config = Config {
            pseudonym_key: Some(format!("1:{},2:{}", "11".repeat(32), "22".repeat(32))),
            ..Config::default()
        };
        assert_eq!(
            load_key_ring(&config, &empty())
                .unwrap()
                .current()
                .version(),
            2
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["abc", "zz".repeat(32).as_str(), "x:0011"] {
            let config = Config {
                pseudonym_key: Some(bad.to_owned()),
                audit_key: Some(bad.to_owned()),
                ..Config::default()
            };
            let error = load_key_ring(&config, &empty()).unwrap_err().to_string();
            assert!(error.starts_with("PILOTGATE_PSEUDONYM_KEY"), "{error}");
            assert!(!error.contains(bad), "{error}");
            let error = load_audit_key(&config, &empty()).unwrap_err().to_string();
            assert!(error.starts_with("PILOTGATE_AUDIT_KEY"), "{error}");
            assert!(!error.contains(bad), "{error}");
        }
    }
}
