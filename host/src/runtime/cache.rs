//! Compile once: native code for each component, cached on disk.
//!
//! An entry is keyed by the component's sha256 and the engine's compatibility
//! hash (wasmtime version, target, and every setting that changes codegen), so
//! a new wt-host or a different `--max-memory` never loads stale code. Each
//! entry has a sidecar with the sha256 of the native code; an entry whose bytes
//! no longer match is removed and recompiled rather than loaded.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache or was compiled just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Loaded precompiled native code.
    Hit,
    /// Compiled and (if a cache directory is set) stored for next time.
    Miss,
    /// No cache directory configured: compiled in memory.
    Disabled,
    /// The same bytes were already loaded in this process: their compiled
    /// code is shared, not loaded again.
    Shared,
}

/// The on-disk cache (`None` directory: compile every time), and the
/// components already loaded in this process, by sha256: a thousand twins
/// from one `.wasm` share one copy of its native code.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    loaded: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Component>>>,
}

impl ArtifactCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            loaded: Default::default(),
        }
    }

    /// The default location: `$XDG_CACHE_HOME/wt/precompiled` or the OS
    /// equivalent; `None` when the OS has no cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("wt").join("precompiled"))
    }

    /// Returns the compiled component for `wasm` (whose digest is `sha256`),
    /// compiling and caching it on a miss. Cache I/O failures are logged and
    /// never fail the load: the cache is an optimisation.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        if let Some(component) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha256)
        {
            return Ok((component.clone(), CacheOutcome::Shared));
        }
        let (component, outcome) = self.load_uncached(engine, wasm, sha256)?;
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256.to_owned(), component.clone());
        Ok((component, outcome))
    }

    fn load_uncached(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Disabled));
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", engine_fingerprint(engine)));
        if let Some(component) = read_entry(engine, &path) {
            return Ok((component, CacheOutcome::Hit));
        }
        let native = engine.precompile_component(wasm)?;
        if let Err(err) = write_entry(&path, &native) {
            tracing::warn!(path = %path.display(), error = %err, "could not write the precompiled cache");
        }
        // Loading what we just produced in memory skips a second compile.
        let component = deserialize(engine, &native)?;
        Ok((component, CacheOutcome::Miss))
    }
}

/// Hex of a sha256 over the engine's compatibility hash.
fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// Feeds `Hash` input into sha256 so the fingerprint is stable across runs
/// (std's `DefaultHasher` promises no such thing).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    let native = std::fs::read(path).ok()?;
    let expected = std::fs::read_to_string(sidecar(path)).ok();
    let actual = hex::encode(Sha256::digest(&native));
    if expected.as_deref().map(str::trim) != Some(actual.as_str()) {
        tracing::warn!(path = %path.display(), "precompiled cache entry does not match its digest; recompiling");
        let _ = std::fs::remove_file(path);
        return None;
    }
    match deserialize(engine, &native) {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "unusable precompiled cache entry; recompiling");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// Writes the entry and its digest, each through a temp file and a rename so
/// a crash never leaves a half-written entry under the real name. The digest
/// goes last: an entry without one is ignored.
fn write_entry(path: &Path, native: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    write_atomic(dir, path, native)?;
    write_atomic(
        dir,
        &sidecar(path),
        hex::encode(Sha256::digest(native)).as_bytes(),
    )
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Unique per process and per write: two loads of one component in one
    // process (or two hosts sharing a cache) never share a temp file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, native: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `native` is either what `precompile_component` produced in this
    // process, or a cache entry whose sha256 matched the digest written beside
    // it when this host (same engine fingerprint) produced it. wasmtime also
    // checks the header and engine compatibility before using the bytes.
    unsafe { Component::deserialize(engine, native) }
}
