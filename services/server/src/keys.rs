//! Loading the pseudonym key ring: from `PILOTGATE_PSEUDONYM_KEY`, or from the
//! key file, which is created with mode 0600 and a warning on first run.
//!
//! Both hold one key per version as `VERSION:HEX` (the file: one per line,
//! `#` comments allowed); a bare `HEX` is version 1. The highest version
//! pseudonymizes new records. Keys never go to the database or a log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use pilotgate_domain::pseudonym::{KeyRing, MIN_KEY_BYTES, PseudonymKey};
use rand::RngCore;

use crate::config::Config;

/// Why no key ring could be had, said in one line without the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyLoadError(String);

/// The key ring the configuration names, creating the key file when nothing is given.
pub fn load_key_ring(config: &Config) -> Result<KeyRing, KeyLoadError> {
    if let Some(inline) = &config.pseudonym_key {
        return parse_key_ring(inline.split(','))
            .map_err(|e| KeyLoadError(format!("PILOTGATE_PSEUDONYM_KEY: {e}")));
    }
    let path = &config.pseudonym_key_file;
    if !path.exists() {
        create_key_file(path)?;
        tracing::warn!(
            path = %path.display(),
            "no pseudonym key was given: created a new random key file (mode 0600); back it up and keep it apart from the database"
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        KeyLoadError(format!(
            "{}: cannot read the pseudonym key file: {e}",
            path.display()
        ))
    })?;
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    parse_key_ring(lines).map_err(|e| KeyLoadError(format!("{}: {e}", path.display())))
}

fn create_key_file(path: &Path) -> Result<(), KeyLoadError> {
    let mut secret = [0u8; MIN_KEY_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            KeyLoadError(format!(
                "{}: cannot create the pseudonym key file: {e}",
                path.display()
            ))
        })?;
    writeln!(
        file,
        "# pilotgate pseudonym keys: one VERSION:HEX per line; the highest version is current."
    )
    .and_then(|_| writeln!(file, "1:{}", hex::encode(secret)))
    .and_then(|_| file.sync_all())
    .map_err(|e| {
        KeyLoadError(format!(
            "{}: cannot write the pseudonym key file: {e}",
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

    #[test]
    fn a_missing_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            pseudonym_key_file: dir.path().join("pilotgate.key"),
            ..Config::default()
        };
        let first = load_key_ring(&config).unwrap();
        let mode = std::fs::metadata(&config.pseudonym_key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_key_ring(&config).unwrap();
        assert_eq!(
            first.current().pseudonymize("a"),
            second.current().pseudonymize("a")
        );
    }

    #[test]
    fn inline_keys_name_their_versions_and_the_highest_is_current() {
        let config = Config {
            pseudonym_key: Some(format!("1:{},2:{}", "11".repeat(32), "22".repeat(32))),
            ..Config::default()
        };
        assert_eq!(load_key_ring(&config).unwrap().current().version(), 2);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["abc", "zz".repeat(32).as_str(), "x:0011"] {
            let config = Config {
                pseudonym_key: Some(bad.to_owned()),
                ..Config::default()
            };
            let error = load_key_ring(&config).unwrap_err().to_string();
            assert!(error.starts_with("PILOTGATE_PSEUDONYM_KEY"), "{error}");
            assert!(!error.contains(bad), "{error}");
        }
    }
}
