//! Publishing into a folder registry: copy the artifact to
//! `<name>/<version>/<file>.wasm`, record its sha256 and size, and rewrite
//! `index.json` atomically. A published version never changes its bytes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wt_registry_schema::{Artifact, Index, Tier, TwinEntry, Version};

use crate::Error;
use crate::store::write_atomic;

/// What to publish: the component and what its `describe` said.
#[derive(Debug, Clone)]
pub struct Publication {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub description: String,
    pub tier: Tier,
    pub world: String,
    pub category: String,
    pub author: String,
    pub repo: String,
    pub sdk_targets: Vec<String>,
    /// RFC 3339.
    pub released: String,
    pub wasm: Vec<u8>,
}

/// How a publication ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub artifact: Artifact,
    /// The same bytes were already published: nothing changed.
    pub unchanged: bool,
    pub index: PathBuf,
}

/// A new registry starts in a new or empty folder: a folder with files
/// but no `index.json` is something else (`./registry` from this repo's
/// root is the registry crate's source), and publishing would scatter
/// artifacts through it.
fn refuse_foreign_folder(dir: &Path) -> Result<(), Error> {
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_some() {
        return Err(Error::Publish(format!(
            "{}: has files but no index.json, so it is not a registry; publish into a new or empty folder, or into an existing registry",
            dir.display()
        )));
    }
    Ok(())
}

/// Publishes into the folder registry `dir` (created if needed). Artifact
/// URLs are relative to the index unless `base_url` is given.
pub fn publish(
    dir: &Path,
    publication: &Publication,
    base_url: Option<&str>,
) -> Result<Published, Error> {
    let p = publication;
    if !wt_registry_schema::is_valid_name(&p.name) {
        return Err(Error::Publish(format!(
            "{:?} is not a valid registry name",
            p.name
        )));
    }
    if semver::Version::parse(&p.version).is_err() {
        return Err(Error::Publish(format!(
            "{}: version {:?} (from its describe) is not semver",
            p.name, p.version
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let index_path = dir.join("index.json");
    let mut index = match std::fs::read_to_string(&index_path) {
        Ok(text) => Index::from_json(&text).map_err(|e| Error::Index {
            origin: index_path.display().to_string(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse_foreign_folder(dir)?;
            Index::empty()
        }
        Err(e) => return Err(Error::io(&index_path, e)),
    };
    let sha256 = hex::encode(Sha256::digest(&p.wasm));
    let file_name = format!("{}.wasm", p.name.rsplit('/').next().unwrap_or(&p.name));
    let relative = format!("{}/{}/{file_name}", p.name, p.version);
    let url = match base_url {
        Some(base) => format!("{}/{relative}", base.trim_end_matches('/')),
        None => relative.clone(),
    };
    if let Some(existing) = index
        .twins
        .get(&p.name)
        .and_then(|t| t.versions.get(&p.version))
    {
        if existing.component.sha256 != sha256 {
            return Err(Error::Republish {
                name: p.name.clone(),
                version: p.version.clone(),
                existing: existing.component.sha256.clone(),
            });
        }
        return Ok(Published {
            artifact: existing.component.clone(),
            unchanged: true,
            index: index_path,
        });
    }
    // The artifact first, then the index that points at it.
    let artifact_path = dir.join(&relative);
    if let Some(parent) = artifact_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_atomic(&artifact_path, &p.wasm)?;
    let artifact = Artifact {
        url,
        sha256,
        size: p.wasm.len() as u64,
    };
    let entry = index
        .twins
        .entry(p.name.clone())
        .or_insert_with(|| TwinEntry {
            description: p.description.clone(),
            category: p.category.clone(),
            author: p.author.clone(),
            repo: p.repo.clone(),
            latest: p.version.clone(),
            versions: Default::default(),
        });
    entry.description = p.description.clone();
    entry.versions.insert(
        p.version.clone(),
        Version {
            component: artifact.clone(),
            released: p.released.clone(),
            api_version: p.api_version.clone(),
            sdk_targets: p.sdk_targets.clone(),
            tier: p.tier,
            world: p.world.clone(),
            yanked: false,
        },
    );
    entry.latest = newest(entry);
    index
        .validate()
        .map_err(|e| Error::Publish(e.to_string()))?;
    let mut text = serde_json::to_string_pretty(&index).expect("an index serializes");
    text.push('\n');
    write_atomic(&index_path, text.as_bytes())?;
    Ok(Published {
        artifact,
        unchanged: false,
        index: index_path,
    })
}

/// The highest non-yanked, non-prerelease version (else the highest).
fn newest(entry: &TwinEntry) -> String {
    let parsed = |yanked_ok: bool| {
        entry
            .versions
            .iter()
            .filter(|(_, v)| yanked_ok || !v.yanked)
            .filter_map(|(k, _)| semver::Version::parse(k).ok())
            .filter(|v| yanked_ok || v.pre.is_empty())
            .max()
    };
    parsed(false)
        .or_else(|| parsed(true))
        .map(|v| v.to_string())
        .unwrap_or_else(|| entry.latest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(version: &str, wasm: &[u8]) -> Publication {
        Publication {
            name: "hello".into(),
            version: version.into(),
            api_version: "2026-11-01".into(),
            description: "d".into(),
            tier: Tier::Free,
            world: "wondertwin:twin@0.1.0".into(),
            category: "example".into(),
            author: "wt".into(),
            repo: "r".into(),
            sdk_targets: vec![],
            released: "2026-11-22T00:00:00Z".into(),
            wasm: wasm.to_vec(),
        }
    }

    #[test]
    fn publishes_updates_latest_and_refuses_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let first = publish(dir.path(), &publication("0.1.0", b"one"), None).unwrap();
        assert!(!first.unchanged);
        assert_eq!(first.artifact.url, "hello/0.1.0/hello.wasm");
        assert_eq!(
            std::fs::read(dir.path().join("hello/0.1.0/hello.wasm")).unwrap(),
            b"one"
        );
        publish(
            dir.path(),
            &publication("0.10.0", b"two"),
            Some("http://x/reg/"),
        )
        .unwrap();
        let index =
            Index::from_json(&std::fs::read_to_string(dir.path().join("index.json")).unwrap())
                .unwrap();
        assert_eq!(index.twins["hello"].latest, "0.10.0");
        assert_eq!(
            index.twins["hello"].versions["0.10.0"].component.url,
            "http://x/reg/hello/0.10.0/hello.wasm"
        );
        let again = publish(dir.path(), &publication("0.1.0", b"one"), None).unwrap();
        assert!(again.unchanged);
        let err = publish(dir.path(), &publication("0.1.0", b"other"), None).unwrap_err();
        assert!(matches!(err, Error::Republish { .. }), "{err}");
        let err = publish(dir.path(), &publication("one", b"x"), None).unwrap_err();
        assert!(err.to_string().contains("not semver"), "{err}");
    }

    #[test]
    fn a_folder_with_files_but_no_index_is_not_a_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        let err = publish(dir.path(), &publication("0.1.0", b"one"), None).unwrap_err();
        assert!(err.to_string().contains("no index.json"), "{err}");
        assert!(!dir.path().join("hello").exists());
        // A new folder, or an empty one, becomes a registry.
        let fresh = dir.path().join("new");
        publish(&fresh, &publication("0.1.0", b"one"), None).unwrap();
        assert!(fresh.join("index.json").exists());
    }
}
