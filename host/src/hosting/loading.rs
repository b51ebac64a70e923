//! Loading twins into the default world: from files or bytes, under the
//! name `describe` gives or another, with the durable state opened once the
//! name is known free; reloading one in place, and watching files for it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::clock::TwinClock;
use crate::twin::{self, LoadError, Twin};
use crate::{AddOptions, BackgroundTask, Error, Host, TwinInfo, state};

impl Host {
    /// Loads a twin from a `.wasm` file under the name its `describe` gives.
    pub async fn add_twin_file(&self, path: impl AsRef<Path>) -> Result<TwinInfo, Error> {
        self.add_file(None, path.as_ref()).await
    }

    /// Loads a twin from a file under another name (a second copy, say).
    pub async fn add_twin_file_as(
        &self,
        name: &str,
        path: impl AsRef<Path>,
    ) -> Result<TwinInfo, Error> {
        self.add_file(Some(name.to_owned()), path.as_ref()).await
    }

    /// Loads a twin from component bytes under the name its `describe` gives.
    pub async fn add_twin_bytes(&self, wasm: &[u8]) -> Result<TwinInfo, Error> {
        self.add(None, "<bytes>".into(), wasm).await
    }

    /// Loads a twin from component bytes under `name`.
    pub async fn add_twin_bytes_as(&self, name: &str, wasm: &[u8]) -> Result<TwinInfo, Error> {
        self.add(Some(name.to_owned()), format!("<bytes for {name}>"), wasm)
            .await
    }

    /// Loads a twin from a file with explicit options: what an installer
    /// uses to serve a registry twin under its registry identity and tier.
    pub async fn add_twin_file_with(
        &self,
        path: impl AsRef<Path>,
        options: AddOptions,
    ) -> Result<TwinInfo, Error> {
        let path = path.as_ref();
        let wasm = twin::read_file(path)?;
        self.add_with(options, path.display().to_string(), Some(path), &wasm)
            .await
    }

    async fn add_file(&self, name: Option<String>, path: &Path) -> Result<TwinInfo, Error> {
        let options = AddOptions {
            name,
            ..AddOptions::default()
        };
        self.add_twin_file_with(path, options).await
    }

    async fn add(
        &self,
        name: Option<String>,
        source_name: String,
        wasm: &[u8],
    ) -> Result<TwinInfo, Error> {
        let options = AddOptions {
            name,
            ..AddOptions::default()
        };
        self.add_with(options, source_name, None, wasm).await
    }

    async fn add_with(
        &self,
        options: AddOptions,
        source_name: String,
        path: Option<&Path>,
        wasm: &[u8],
    ) -> Result<TwinInfo, Error> {
        if let Some(name) = &options.name {
            self.check_name_free(&source_name, name)?;
        }
        let inner = &self.inner;
        let prepared = Twin::prepare(
            inner.load_request(
                TwinClock::layered(inner.default.clock().clone()),
                options,
                source_name.clone(),
                path.map(Path::to_path_buf),
            ),
            wasm,
        )
        .await?;
        let info = prepared.info().clone();
        // Checked before opening durable state: a second twin of the same
        // name must not touch the first one's file.
        self.check_name_free(&source_name, &info.name)?;
        let state = match &inner.state_dir {
            None => state::TwinState::default(),
            Some(dir) => {
                let path = dir.join(&info.name).join("state.redb");
                state::TwinState::durable(&path).map_err(|err| LoadError::State {
                    source_name: source_name.clone(),
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?
            }
        };
        let twin = prepared.into_twin(state);
        if !inner.default.insert(Arc::new(twin), true) {
            return Err(LoadError::Duplicate {
                source_name,
                name: info.name,
            }
            .into());
        }
        Ok(info)
    }

    /// Swaps a twin's code for what its file holds now, keeping its state,
    /// journal, faults, deliveries, clock and settings. Requests in flight
    /// finish on the old code; the next one runs the new. If the new file
    /// does not load, the old twin keeps serving and the error says why.
    pub async fn reload(&self, name: &str) -> Result<TwinInfo, Error> {
        let old = self
            .twin(name)
            .ok_or_else(|| Error::NoSuchTwin(name.to_owned()))?;
        let path = old
            .path()
            .ok_or_else(|| Error::NotReloadable(name.to_owned()))?
            .to_path_buf();
        let wasm = twin::read_file(&path)?;
        let options = AddOptions {
            name: Some(name.to_owned()),
            identity: Some(old.info().identity.clone()),
            requires_license: old.forced_license(),
        };
        let twin = Twin::prepare(
            self.inner.load_request(
                old.clock().clone(),
                options,
                path.display().to_string(),
                Some(path.clone()),
            ),
            &wasm,
        )
        .await?
        .into_successor(&old);
        let info = twin.info().clone();
        self.inner.default.insert(Arc::new(twin), false);
        tracing::info!(twin = name, version = %info.version, sha256 = %info.sha256, "reloaded");
        Ok(info)
    }

    /// Watches every file-loaded twin and reloads it when its file changes
    /// (checked every `every`; a change must hold still for one check, so a
    /// file being written is not loaded half-way). Stops when dropped.
    pub fn watch_files(&self, every: std::time::Duration) -> BackgroundTask {
        let host = self.clone();
        BackgroundTask(tokio::spawn(async move {
            let stamp = |path: &Path| {
                std::fs::metadata(path)
                    .ok()
                    .map(|m| (m.modified().ok(), m.len()))
            };
            let mut seen: BTreeMap<String, Option<(Option<std::time::SystemTime>, u64)>> = host
                .all_twins()
                .iter()
                .filter_map(|t| t.path().map(|p| (t.name().to_owned(), stamp(p))))
                .collect();
            let mut pending: BTreeMap<String, Option<(Option<std::time::SystemTime>, u64)>> =
                BTreeMap::new();
            loop {
                tokio::time::sleep(every).await;
                for twin in host.all_twins() {
                    let Some(path) = twin.path() else { continue };
                    let now = stamp(path);
                    let name = twin.name().to_owned();
                    if seen.get(&name) == Some(&now) {
                        pending.remove(&name);
                        continue;
                    }
                    // Changed: reload once it has held still for a check.
                    if pending.get(&name) != Some(&now) {
                        pending.insert(name, now);
                        continue;
                    }
                    pending.remove(&name);
                    seen.insert(name.clone(), now);
                    if let Err(err) = host.reload(&name).await {
                        tracing::error!(twin = %name, "reload failed; still serving the previous code: {err}");
                    }
                }
            }
        }))
    }

    fn check_name_free(&self, source_name: &str, name: &str) -> Result<(), Error> {
        if !twin::is_valid_name(name) {
            return Err(LoadError::BadName {
                source_name: source_name.to_owned(),
                name: name.to_owned(),
            }
            .into());
        }
        if self.twin(name).is_some() {
            return Err(LoadError::Duplicate {
                source_name: source_name.to_owned(),
                name: name.to_owned(),
            }
            .into());
        }
        if self.inner.tenants.contains(name) {
            return Err(LoadError::TenantName {
                source_name: source_name.to_owned(),
                name: name.to_owned(),
            }
            .into());
        }
        Ok(())
    }
}
