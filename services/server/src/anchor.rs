//! Anchors of the audit chain: its head (entry count and last hash) written
//! to an append-only file outside the database, beside the audit key, so that
//! removing the newest entries, or all of them, is found by `audit verify`.
//!
//! One JSON line per anchor: `{"database", "entries", "head", "at"}`; the
//! database's random id lets one file serve several databases. The server
//! anchors every [`ANCHOR_EVERY`] when the chain grew, and when it stops;
//! every CLI command that writes audit entries anchors before it exits;
//! `pilotgate audit anchor` anchors on demand and prints the line, for
//! operators who also keep it elsewhere. What is not detected: entries
//! appended after the latest anchor and removed before the next one, and an
//! attacker who can rewrite both the database and the anchor file and holds
//! the audit key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pilotgate_domain::audit::ChainHead;
use pilotgate_store::Store;
use serde::{Deserialize, Serialize};

/// How often the server anchors a grown chain.
pub const ANCHOR_EVERY: Duration = Duration::from_secs(5);

/// One anchor line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The database's random id (`database_identity`).
    pub database: String,
    pub entries: u64,
    pub head: String,
    /// When the anchor was written, RFC 3339.
    pub at: String,
}

impl Anchor {
    /// The chain head this anchor recorded.
    pub fn chain_head(&self) -> ChainHead {
        ChainHead {
            entries: self.entries,
            hash: self.head.clone(),
        }
    }
}

/// The anchor file.
#[derive(Debug, Clone)]
pub struct AnchorFile {
    path: PathBuf,
}

impl AnchorFile {
    pub fn new(path: PathBuf) -> AnchorFile {
        AnchorFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest anchor of `database`, if the file holds one. The file is
    /// read from its end, so a long history costs nothing; a line read that
    /// is not an anchor is an error naming the file and its line from the end.
    pub fn latest(&self, database: &str) -> Result<Option<Anchor>, String> {
        use std::io::{Read, Seek, SeekFrom};
        const CHUNK: u64 = 64 * 1024;
        let unreadable = |e: std::io::Error| {
            format!(
                "{}: cannot read the audit anchor file: {e}",
                self.path.display()
            )
        };
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(unreadable(error)),
        };
        let mut end = file.seek(SeekFrom::End(0)).map_err(unreadable)?;
        // Bytes of a line cut by the chunk boundary, carried to the next (earlier) chunk.
        let mut tail: Vec<u8> = Vec::new();
        let mut from_end = 0usize;
        loop {
            let start = end.saturating_sub(CHUNK);
            let mut chunk = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
            file.seek(SeekFrom::Start(start)).map_err(unreadable)?;
            file.read_exact(&mut chunk).map_err(unreadable)?;
            chunk.extend_from_slice(&tail);
            let mut lines: Vec<&[u8]> = chunk.split(|b| *b == b'\n').collect();
            // The first piece may be the end of a line that began earlier.
            let first = if start > 0 {
                lines.remove(0).to_vec()
            } else {
                Vec::new()
            };
            for line in lines.iter().rev() {
                let text = String::from_utf8_lossy(line);
                if text.trim().is_empty() {
                    continue;
                }
                from_end += 1;
                let anchor: Anchor = serde_json::from_str(&text).map_err(|_| {
                    format!(
                        "{}: line {from_end} from the end is not an audit anchor",
                        self.path.display()
                    )
                })?;
                if anchor.database == database {
                    return Ok(Some(anchor));
                }
            }
            if start == 0 {
                return Ok(None);
            }
            tail = first;
            end = start;
        }
    }

    /// Appends `anchor` and makes it durable; the file is created readable
    /// by its owner only.
    pub fn append(&self, anchor: &Anchor) -> Result<(), String> {
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.path)?;
            let mut line = serde_json::to_string(anchor).map_err(std::io::Error::other)?;
            line.push('\n');
            file.write_all(line.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|e| {
            format!(
                "{}: cannot write the audit anchor file: {e}",
                self.path.display()
            )
        })
    }

    /// Anchors the chain's head now, unless the newest anchor already holds
    /// it; returns the anchor written. Refuses to anchor a chain that no
    /// longer reaches its newest anchor (that would bless a cut).
    pub async fn anchor_now(&self, store: &Store) -> Result<Option<Anchor>, String> {
        let database = store.database_id().await.map_err(|e| e.to_string())?;
        let head = store.audit_head().await.map_err(|e| e.to_string())?;
        let latest = self.latest(&database)?;
        if head.entries == 0 && latest.is_none() {
            // Nothing to protect yet.
            return Ok(None);
        }
        if let Some(latest) = latest.filter(|l| l.entries > 0) {
            if latest.chain_head() == head {
                return Ok(None);
            }
            let still_there = match i64::try_from(latest.entries) {
                Ok(id) if latest.entries <= head.entries => {
                    store.audit_hash_at(id).await.map_err(|e| e.to_string())?
                }
                _ => None,
            };
            if still_there.as_deref() != Some(latest.head.as_str()) {
                return Err(format!(
                    "the audit log no longer holds entry {} as anchored at {}: it was cut or rewritten; \
                     not anchoring (run `pilotgate audit verify`)",
                    latest.entries, latest.at
                ));
            }
        }
        let anchor = Anchor {
            database,
            entries: head.entries,
            head: head.hash,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        self.append(&anchor)?;
        Ok(Some(anchor))
    }
}

/// Anchors the chain every [`ANCHOR_EVERY`] while the server runs.
pub fn spawn_anchoring(store: Store, file: AnchorFile) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ANCHOR_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = file.anchor_now(&store).await {
                tracing::error!(%error, "the audit chain was not anchored");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(database: &str, entries: u64) -> Anchor {
        Anchor {
            database: database.to_owned(),
            entries,
            head: format!("{entries:064x}"),
            at: "2026-12-02T10:00:00.000Z".to_owned(),
        }
    }

    #[test]
    fn the_latest_anchor_of_a_database_is_found_among_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = AnchorFile::new(dir.path().join("pilotgate.anchor"));
        assert_eq!(file.latest("a").unwrap(), None);
        for a in [
            anchor("a", 1),
            anchor("b", 7),
            anchor("a", 3),
            anchor("b", 9),
        ] {
            file.append(&a).unwrap();
        }
        assert_eq!(file.latest("a").unwrap(), Some(anchor("a", 3)));
        assert_eq!(file.latest("b").unwrap(), Some(anchor("b", 9)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_line_that_is_not_an_anchor_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pilotgate.anchor");
        std::fs::write(&path, "{}\n").unwrap();
        let error = AnchorFile::new(path).latest("a").unwrap_err();
        assert!(
            error.ends_with("pilotgate.anchor: line 1 from the end is not an audit anchor"),
            "{error}"
        );
    }

    #[test]
    fn a_long_history_is_read_from_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = AnchorFile::new(dir.path().join("pilotgate.anchor"));
        file.append(&anchor("a", 1)).unwrap();
        for n in 0..3_000 {
            file.append(&anchor("b", n)).unwrap();
        }
        // Lines longer than nothing cross the 64 KiB chunks (about 150 bytes each).
        assert_eq!(file.latest("a").unwrap(), Some(anchor("a", 1)));
        assert_eq!(file.latest("b").unwrap(), Some(anchor("b", 2_999)));
        assert_eq!(file.latest("c").unwrap(), None);
    }
}
