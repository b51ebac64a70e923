//! Twins from registries: resolve `name[@version]` against an ordered list
//! of registries, download the one component with its sha256 checked
//! **before** it enters the local store, keep `wt.lock`, and publish into a
//! folder registry.
//!
//! The local store (`~/.local/share/wt/twins` unless told otherwise) holds
//! `<name>/<version>/twin.wasm` beside `entry.json`, which records the digest
//! the index promised. Every load re-hashes the file against it, so a
//! tampered store file is refused, and installed twins run with no network.

mod error;
mod fetch;
pub mod lock;
pub mod publish;
mod source;
mod spec;
mod store;

pub use error::Error;
pub use fetch::{Client, ClientOptions};
pub use lock::{LockEntry, Lockfile};
pub use source::Source;
pub use spec::{Spec, VersionReq};
pub use store::{Installed, Store};
pub use wt_registry_schema as schema;

use wt_registry_schema::{Artifact, Index, Tier};

/// A version picked from a registry, with where to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// The artifact with its URL made absolute.
    pub artifact: Artifact,
    pub tier: Tier,
    pub api_version: String,
    pub description: String,
    /// The registry it came from, for messages and the lockfile.
    pub source: String,
}

/// Registries in precedence order: the first that lists a name decides
/// every version of it (no mixing versions across registries).
#[derive(Debug, Clone)]
pub struct Registries {
    sources: Vec<Source>,
    client: Client,
}

impl Registries {
    pub fn new(sources: Vec<Source>, client: Client) -> Self {
        Self { sources, client }
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Each registry's index, in order; the first error stops.
    pub async fn indexes(&self) -> Result<Vec<(Source, Index)>, Error> {
        let mut out = Vec::new();
        for source in &self.sources {
            out.push((source.clone(), self.client.index(source).await?));
        }
        Ok(out)
    }

    /// Resolves a spec; a lock entry pins an unversioned spec.
    pub async fn resolve(&self, spec: &Spec, lock: Option<&LockEntry>) -> Result<Resolved, Error> {
        if self.sources.is_empty() {
            return Err(Error::NoRegistry);
        }
        for source in &self.sources {
            let index = self.client.index(source).await?;
            if index.twins.contains_key(&spec.name) {
                return resolve_in(source, &index, spec, lock);
            }
        }
        Err(Error::UnknownTwin {
            name: spec.name.clone(),
            searched: self
                .sources
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Downloads (unless already installed and intact) and verifies.
    pub async fn install(&self, store: &Store, resolved: &Resolved) -> Result<Installed, Error> {
        if let Ok(installed) = store.verified(&resolved.name, &resolved.version)
            && installed.sha256 == resolved.artifact.sha256
        {
            return Ok(installed);
        }
        let bytes_path = store.staging_path(&resolved.name)?;
        let result = self
            .client
            .download(&resolved.artifact, &bytes_path, &resolved.name)
            .await;
        match result {
            Ok(()) => store.adopt(&bytes_path, resolved),
            Err(err) => {
                let _ = std::fs::remove_file(&bytes_path);
                Err(err)
            }
        }
    }
}

/// Picks the version a spec names from one registry's index.
pub fn resolve_in(
    source: &Source,
    index: &Index,
    spec: &Spec,
    lock: Option<&LockEntry>,
) -> Result<Resolved, Error> {
    let entry = index
        .twins
        .get(&spec.name)
        .ok_or_else(|| Error::UnknownTwin {
            name: spec.name.clone(),
            searched: source.to_string(),
        })?;
    let (version, exact) = match (&spec.version, lock) {
        (VersionReq::Exact(v), _) => (v.clone(), true),
        // The lockfile pins what an unversioned spec means.
        (VersionReq::Unspecified, Some(locked)) => (locked.version.clone(), true),
        (VersionReq::Unspecified | VersionReq::Latest, _) => (entry.latest.clone(), false),
    };
    let meta = entry
        .versions
        .get(&version)
        .ok_or_else(|| Error::UnknownVersion {
            name: spec.name.clone(),
            version: version.clone(),
            known: entry.version_list(),
        })?;
    if meta.yanked && !exact {
        return Err(Error::Yanked {
            name: spec.name.clone(),
            version,
        });
    }
    if let Some(locked) = lock.filter(|l| l.version == version)
        && locked.sha256 != meta.component.sha256
    {
        return Err(Error::LockMismatch {
            name: spec.name.clone(),
            version,
            locked: locked.sha256.clone(),
            index: meta.component.sha256.clone(),
        });
    }
    let mut artifact = meta.component.clone();
    artifact.url = source.artifact_url(&artifact.url)?;
    Ok(Resolved {
        name: spec.name.clone(),
        version,
        artifact,
        tier: meta.tier,
        api_version: meta.api_version.clone(),
        description: entry.description.clone(),
        source: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::from_json(include_str!("../../registry-schema/examples/index.json")).unwrap()
    }

    fn source() -> Source {
        Source::parse("https://registry.example.com/index.json").unwrap()
    }

    #[test]
    fn latest_exact_yanked_and_unknown() {
        let index = index();
        let spec = |s: &str| Spec::parse(s).unwrap();
        let r = resolve_in(&source(), &index, &spec("acme/stripe-pro"), None).unwrap();
        assert_eq!((r.version.as_str(), r.tier), ("1.0.0", Tier::Pro));
        let r = resolve_in(&source(), &index, &spec("hello@latest"), None).unwrap();
        assert_eq!(
            r.artifact.url,
            "https://registry.example.com/hello/0.1.0/hello.wasm"
        );
        // A yanked version needs an exact pin.
        let r = resolve_in(&source(), &index, &spec("acme/stripe-pro@0.9.0"), None).unwrap();
        assert_eq!(r.version, "0.9.0");
        let err = resolve_in(&source(), &index, &spec("hello@0.2.0"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hello has no version 0.2.0 (versions: 0.1.0)"
        );
        let err = resolve_in(&source(), &index, &spec("nope"), None).unwrap_err();
        assert!(matches!(err, Error::UnknownTwin { .. }));
    }

    #[test]
    fn a_yanked_latest_is_refused_unless_pinned() {
        let mut index = index();
        index.twins.get_mut("acme/stripe-pro").unwrap().latest = "0.9.0".into();
        let err = resolve_in(
            &source(),
            &index,
            &Spec::parse("acme/stripe-pro").unwrap(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Yanked { .. }), "{err}");
    }

    #[test]
    fn the_lockfile_pins_unversioned_specs_and_catches_a_changed_artifact() {
        let index = index();
        let mut lock = LockEntry {
            name: "acme/stripe-pro".into(),
            version: "0.9.0".into(),
            sha256: index.twins["acme/stripe-pro"].versions["0.9.0"]
                .component
                .sha256
                .clone(),
            source: source().to_string(),
        };
        let spec = Spec::parse("acme/stripe-pro").unwrap();
        let r = resolve_in(&source(), &index, &spec, Some(&lock)).unwrap();
        assert_eq!(r.version, "0.9.0");
        lock.sha256 = "0".repeat(64);
        let err = resolve_in(&source(), &index, &spec, Some(&lock)).unwrap_err();
        assert!(matches!(err, Error::LockMismatch { .. }), "{err}");
    }
}
