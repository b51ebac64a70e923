//! Everything that can go wrong between a spec and a verified file. Each
//! message is one line that names the twin, file or URL involved.

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{0:?} is not a twin spec (use NAME, NAME@VERSION or NAME@latest; NAME is `name` or `owner/name`)"
    )]
    BadSpec(String),
    #[error("{0:?} is not a registry (use a folder, file://PATH or http(s)://URL)")]
    BadSource(String),
    #[error("no registry is configured: pass --registry (a folder, file:// or http(s):// URL)")]
    NoRegistry,
    #[error("no twin named {name} in {searched}")]
    UnknownTwin { name: String, searched: String },
    #[error("{name} has no version {version} (versions: {known})")]
    UnknownVersion {
        name: String,
        version: String,
        known: String,
    },
    #[error("{name}@{version} is yanked; pin it exactly (`{name}@{version}`) to use it anyway")]
    Yanked { name: String, version: String },
    #[error(
        "{name}@{version}: wt.lock pins sha256 {locked} but the registry now says {index}; the published artifact changed"
    )]
    LockMismatch {
        name: String,
        version: String,
        locked: String,
        index: String,
    },
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}; nothing was installed")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{url}: size mismatch: the index says {expected} bytes, got {actual}; nothing was installed"
    )]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: refusing to follow a redirect from https to plain http ({to})")]
    Downgrade { url: String, to: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{origin}: invalid index: {message}")]
    Index { origin: String, message: String },
    #[error(
        "{name}@{version} is not installed (installed: {installed}); run `wt-host install {name}@{version}`"
    )]
    NotInstalled {
        name: String,
        version: String,
        installed: String,
    },
    #[error(
        "{path}: sha256 is {actual} but {expected} was installed; the file was changed after install. Run `wt-host install --force {name}@{version}` to fetch it again"
    )]
    Tampered {
        path: String,
        name: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{name}@{version} is already published with other bytes (sha256 {existing}); publish a new version instead"
    )]
    Republish {
        name: String,
        version: String,
        existing: String,
    },
    #[error("{0}")]
    Publish(String),
    #[error("{path}: {message}")]
    Lock { path: String, message: String },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, err: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: err.to_string(),
        }
    }
}
