//! `wt.lock`: the version and digest each twin resolved to, so a project
//! runs the same bytes on every machine until someone asks for newer ones.
//!
//! ```toml
//! version = 1
//!
//! [[twin]]
//! name = "stripe"
//! version = "0.1.0"
//! sha256 = "…"
//! source = "https://registry.example.com/index.json"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The lockfile format version.
const LOCK_VERSION: u32 = 1;

/// One pinned twin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockDoc {
    version: u32,
    #[serde(default, rename = "twin")]
    twins: Vec<LockEntry>,
}

/// A `wt.lock` file, loaded (or empty when it does not exist yet).
#[derive(Debug, Clone)]
pub struct Lockfile {
    path: PathBuf,
    entries: Vec<LockEntry>,
}

impl Lockfile {
    /// Reads `path`, or starts empty when it does not exist.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let doc: LockDoc = toml::from_str(&text).map_err(|e| Error::Lock {
                    path: path.display().to_string(),
                    message: e.message().to_owned(),
                })?;
                if doc.version != LOCK_VERSION {
                    return Err(Error::Lock {
                        path: path.display().to_string(),
                        message: format!(
                            "lockfile version {} is not supported (this wt writes {LOCK_VERSION})",
                            doc.version
                        ),
                    });
                }
                doc.twins
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(Self { path, entries })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Option<&LockEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    pub fn entries(&self) -> &[LockEntry] {
        &self.entries
    }

    /// Pins `entry.name` to `entry`; returns whether anything changed.
    pub fn pin(&mut self, entry: LockEntry) -> bool {
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) if *existing == entry => false,
            Some(existing) => {
                *existing = entry;
                true
            }
            None => {
                self.entries.push(entry);
                self.entries.sort_by(|a, b| a.name.cmp(&b.name));
                true
            }
        }
    }

    /// Writes the file atomically.
    pub fn save(&self) -> Result<(), Error> {
        let doc = LockDoc {
            version: LOCK_VERSION,
            twins: self.entries.clone(),
        };
        let body = toml::to_string_pretty(&doc).map_err(|e| Error::Lock {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let text = format!(
            "# Written by `wt-host install`: the version and sha256 each twin resolved to.\n# Commit it; `wt-host run` and `install` honor it.\n{body}"
        );
        crate::store::write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wt.lock");
        let mut lock = Lockfile::load(&path).unwrap();
        assert!(lock.entries().is_empty());
        let entry = LockEntry {
            name: "stripe".into(),
            version: "0.1.0".into(),
            sha256: "a".repeat(64),
            source: "/r/index.json".into(),
        };
        assert!(lock.pin(entry.clone()));
        assert!(!lock.pin(entry.clone()));
        lock.save().unwrap();
        let again = Lockfile::load(&path).unwrap();
        assert_eq!(again.get("stripe"), Some(&entry));
        std::fs::write(&path, "version = 1\n[[twin]]\nname = \"x\"\n").unwrap();
        let err = Lockfile::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("wt.lock") && err.contains("missing field"),
            "{err}"
        );
    }
}
