//! The local store of installed twins: `<root>/<name>/<version>/twin.wasm`
//! and `entry.json` (what the index promised). Downloads land in
//! `<root>/.staging/` first and are renamed in only after their digest
//! checked out, so the store never holds a half-written or unverified file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wt_registry_schema::Tier;

use crate::{Error, Resolved};

/// One installed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub tier: Tier,
    pub api_version: String,
    pub description: String,
    /// The registry it came from.
    pub source: String,
    /// The component file (not stored: derived from the root).
    #[serde(skip)]
    pub path: PathBuf,
}

/// The installed twins under one root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

static STAGING: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `wt/twins` under the user's data directory.
    pub fn default_root() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("wt").join("twins"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }

    /// A fresh file name to download into, on the store's filesystem.
    pub(crate) fn staging_path(&self, name: &str) -> Result<PathBuf, Error> {
        let staging = self.root.join(".staging");
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let n = STAGING.fetch_add(1, Ordering::Relaxed);
        let file = format!(
            "{}-{}-{n}.partial",
            name.replace('/', "_"),
            std::process::id()
        );
        Ok(staging.join(file))
    }

    /// Moves a verified download into place and records what it is.
    pub(crate) fn adopt(&self, staged: &Path, resolved: &Resolved) -> Result<Installed, Error> {
        let dir = self.dir(&resolved.name, &resolved.version);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("twin.wasm");
        std::fs::rename(staged, &path).map_err(|e| Error::io(&path, e))?;
        let installed = Installed {
            name: resolved.name.clone(),
            version: resolved.version.clone(),
            sha256: resolved.artifact.sha256.clone(),
            size: resolved.artifact.size,
            tier: resolved.tier,
            api_version: resolved.api_version.clone(),
            description: resolved.description.clone(),
            source: resolved.source.clone(),
            path,
        };
        let entry = dir.join("entry.json");
        let text = serde_json::to_string_pretty(&installed).expect("an entry serializes");
        write_atomic(&entry, text.as_bytes())?;
        Ok(installed)
    }

    /// An installed version, its file re-hashed against the recorded digest.
    pub fn verified(&self, name: &str, version: &str) -> Result<Installed, Error> {
        let dir = self.dir(name, version);
        let entry_path = dir.join("entry.json");
        let Ok(text) = std::fs::read_to_string(&entry_path) else {
            return Err(Error::NotInstalled {
                name: name.to_owned(),
                version: version.to_owned(),
                installed: self.versions_of(name).join(", "),
            });
        };
        let mut installed: Installed =
            serde_json::from_str(&text).map_err(|e| Error::io(&entry_path, e))?;
        installed.path = dir.join("twin.wasm");
        let bytes = std::fs::read(&installed.path).map_err(|e| Error::io(&installed.path, e))?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != installed.sha256 {
            return Err(Error::Tampered {
                path: installed.path.display().to_string(),
                name: name.to_owned(),
                version: version.to_owned(),
                expected: installed.sha256,
                actual,
            });
        }
        Ok(installed)
    }

    /// Installed versions of a twin, lowest first by semver.
    pub fn versions_of(&self, name: &str) -> Vec<String> {
        let mut versions: Vec<semver::Version> = std::fs::read_dir(self.root.join(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("entry.json").is_file())
            .filter_map(|e| semver::Version::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        versions.sort();
        versions.iter().map(ToString::to_string).collect()
    }

    /// Every installed version (entries only; digests are checked on load).
    pub fn list(&self) -> Vec<Installed> {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for owner_or_name in read_dirs(&self.root) {
            let file_name = owner_or_name
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            // `name/<version>` or `owner/name/<version>`.
            let has_versions = read_dirs(&owner_or_name)
                .iter()
                .any(|d| d.join("entry.json").is_file());
            if has_versions {
                names.push(file_name);
            } else {
                for inner in read_dirs(&owner_or_name) {
                    let inner_name = inner
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    names.push(format!("{file_name}/{inner_name}"));
                }
            }
        }
        names.sort();
        for name in names {
            for version in self.versions_of(&name) {
                let dir = self.dir(&name, &version);
                let Ok(text) = std::fs::read_to_string(dir.join("entry.json")) else {
                    continue;
                };
                if let Ok(mut installed) = serde_json::from_str::<Installed>(&text) {
                    installed.path = dir.join("twin.wasm");
                    out.push(installed);
                }
            }
        }
        out
    }
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Writes a file so readers see the old or the new bytes, never a mix:
/// a temp file beside it, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let n = STAGING.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(
        ".{}.{}-{n}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // Make the rename itself durable where the platform allows.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok::<_, std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(path, e)
    })
}
