//! `wt-host`: serve behavioral API twins (wasm components) over HTTP, or call
//! them in-process from a Rust test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wt_host::{Host, ServeConfig};
//!
//! let host = Host::builder().build()?;
//! host.add_twin_file("target/wasm32-wasip2/release/hello.wasm").await?;
//!
//! // In-process, no socket: the request path is what the twin sees.
//! let response = host
//!     .handle("hello", http::Request::post("/counter").body(bytes::Bytes::new())?)
//!     .await?;
//! assert_eq!(response.status(), 200);
//!
//! // Or over HTTP on ephemeral ports.
//! let running = host.serve(ServeConfig::ephemeral()).await?;
//! let base = running.base_url("hello").expect("hello is served");
//! println!("point the SDK at {base}");
//! host.reset("hello").await?;
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The modules form layers (options, parts, capabilities, twin, pipeline,
//! host, http), each using only its own or lower ones, with no cycles;
//! `docs/architecture.md` draws them and the path of one request, and the
//! `layers` test enforces the rule.
//!
//! This file is the facade: [`Host`], its builder and the whole embedding
//! API on one page (a little over 600 lines), each method a few lines that
//! hand the work to the layers below.

// One folder per layer, bottom up (docs/architecture.md); a module may use
// its own layer or lower ones, never higher, and `layers` is that rule as a
// test. Every module is also named here at the root, so code says
// `crate::state`, not `crate::parts::state`.
mod capability;
mod hosting;
#[cfg(test)]
mod layers;
mod options;
mod parts;
mod pipeline;
mod runtime;
mod serving;
mod tenancy;
mod twin;

use options::{limits, names};
pub use options::{project, units};
pub use parts::{clock, license, settings};
use parts::{faults, framing, journal, logs, metrics, outbound, state};
use pipeline::exchange;
use runtime::{bindings, cache, engine, instances};
use serving::{caller, control, server};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Linker;

pub use cache::CacheOutcome;
pub use clock::TwinClock;
pub use engine::Allocator;
pub use hosting::Tenant;
pub use limits::Limits;
pub use server::{OwnPorts, RunningHost, ServeConfig, ServeError};
pub use tenancy::{TenantError, TenantRequest, TenantSummary};
pub use twin::{LoadError, TwinInfo, WORLD};

use cache::ArtifactCache;
use capability::InstanceState;
use tenancy::{Tenants, World};
use twin::Runtime;
use twin::{LoadRequest, Twin};

/// Errors from the embedding API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no twin named '{0}' is loaded")]
    NoSuchTwin(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("could not set up the wasm engine: {0}")]
    Engine(String),
    #[error(transparent)]
    Call(#[from] twin::CallError),
    #[error(transparent)]
    Config(#[from] settings::ConfigError),
    #[error("twin '{0}' was loaded from bytes, not a file: there is nothing to reload")]
    NotReloadable(String),
    #[error("no tenant '{0}'")]
    NoSuchTenant(String),
    #[error(transparent)]
    Tenant(#[from] TenantError),
}

/// Builds a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    limits: Limits,
    cache_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    allow_outbound: Vec<String>,
    licensing: Option<Arc<license::Licensing>>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: ArtifactCache::default_dir(),
            state_dir: None,
            allow_outbound: Vec::new(),
            licensing: None,
        }
    }
}

impl HostBuilder {
    /// Where precompiled native code is kept; `None` compiles on every load.
    /// Defaults to the user's cache directory.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Keep each twin's state in `DIR/<twin>/state.redb` so it survives a
    /// restart (or a crash); `None`, the default, keeps state in memory.
    pub fn state_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.state_dir = dir;
        self
    }

    /// Destinations twins may send requests to beside loopback: hosts
    /// (`hooks.example.test`) or `host:port` pairs.
    pub fn allow_outbound(mut self, destinations: Vec<String>) -> Self {
        self.allow_outbound = destinations;
        self
    }

    /// Where licenses come from and which keys may sign them; by default no
    /// license and only the official issuer's key (free twins need none).
    pub fn licensing(mut self, licensing: license::Licensing) -> Self {
        self.licensing = Some(Arc::new(licensing));
        self
    }

    /// Resource limits for every twin.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn build(self) -> Result<Host, Error> {
        let runtime = Runtime::new(&self.limits).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(runtime.engine());
        capability::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        Ok(Host {
            inner: Arc::new(HostInner {
                runtime,
                linker,
                cache: ArtifactCache::new(self.cache_dir),
                state_dir: self.state_dir,
                http: outbound::client().map_err(|e| Error::Engine(format!("HTTP client: {e}")))?,
                policy: Arc::new(outbound::Policy {
                    allowed: self.allow_outbound,
                }),
                body_budget: Arc::new(limits::BodyBudget::new(self.limits.max_buffered_body_bytes)),
                limits: self.limits,
                licensing: self.licensing.unwrap_or_default(),
                default: Arc::new(World::default_world(TwinClock::default())),
                tenants: Tenants::default(),
                shutdown: tokio::sync::watch::Sender::new(false),
            }),
        })
    }
}

/// How to load a twin beyond its bytes.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// Serve under this name (the route prefix) instead of `describe`'s.
    pub name: Option<String>,
    /// The identity licenses are checked against (`aud`): a registry name
    /// such as `acme/stripe`. Defaults to the served name.
    pub identity: Option<String>,
    /// Needs a license whatever `describe` says (a registry `pro` twin).
    pub requires_license: bool,
}

/// A background task of the host ([`Host::watch_license`],
/// [`Host::watch_files`]); dropping it stops it.
#[derive(Debug)]
pub struct BackgroundTask(tokio::task::JoinHandle<()>);

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Any number of twins in one process. Cheap to clone; clones share twins.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    runtime: Runtime,
    linker: Linker<InstanceState>,
    cache: ArtifactCache,
    state_dir: Option<PathBuf>,
    http: reqwest::Client,
    policy: Arc<outbound::Policy>,
    limits: Limits,
    licensing: Arc<license::Licensing>,
    /// The twins `run` loads, on the operator's clock.
    default: Arc<World>,
    tenants: Tenants,
    /// Set by `POST /_wt/shutdown`; `wt-host run` drains and exits.
    shutdown: tokio::sync::watch::Sender<bool>,
    body_budget: Arc<limits::BodyBudget>,
}

impl HostInner {
    /// What `Twin::prepare` needs from the host, for a new twin or a reload.
    fn load_request(
        &self,
        clock: TwinClock,
        options: AddOptions,
        source_name: String,
        path: Option<PathBuf>,
    ) -> LoadRequest<'_> {
        LoadRequest {
            runtime: &self.runtime,
            linker: &self.linker,
            cache: &self.cache,
            limits: &self.limits,
            clock,
            http: self.http.clone(),
            policy: self.policy.clone(),
            licensing: self.licensing.clone(),
            requires_license: options.requires_license,
            identity: options.identity,
            name: options.name,
            source_name,
            path,
        }
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.inner.runtime)
            .field("twins", &self.twin_names())
            .finish()
    }
}

impl Host {
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Where each twin's durable state lives, if anywhere.
    pub fn state_dir(&self) -> Option<&Path> {
        self.inner.state_dir.as_deref()
    }

    /// Where precompiled code is cached unless told otherwise:
    /// `wt/precompiled` under the user's cache directory.
    pub fn default_cache_dir() -> Option<PathBuf> {
        ArtifactCache::default_dir()
    }

    pub(crate) fn twin(&self, name: &str) -> Option<Arc<Twin>> {
        self.inner.default.twin(name)
    }

    pub(crate) fn all_twins(&self) -> Vec<Arc<Twin>> {
        self.inner.default.twins()
    }

    pub(crate) fn default_world(&self) -> Arc<World> {
        self.inner.default.clone()
    }

    /// Sets a twin's settings (keys it declares in `describe`) to the values
    /// it starts with and returns to on reset. The control plane's
    /// `PUT /_wt/twins/{t}/config` changes them only until the next reset.
    pub fn configure(
        &self,
        twin: &str,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        let found = self
            .twin(twin)
            .ok_or_else(|| Error::NoSuchTwin(twin.to_owned()))?;
        found.settings().set_initial(values).map_err(Error::from)
    }

    /// Reads the license again (the file may have changed); returns whether
    /// what it says changed. The server also does this when the file
    /// changes and on SIGHUP.
    pub fn reload_license(&self) -> bool {
        self.inner.licensing.reload()
    }

    /// A twin's license state right now (`None` for an unknown twin is
    /// reported as not required).
    pub fn license_status(&self, twin: &str) -> license::LicenseStatus {
        match self.twin(twin) {
            Some(t) => t.license_status(),
            None => self
                .inner
                .licensing
                .status(twin, false, license::unix_now()),
        }
    }

    /// Re-reads the license every `every` and logs each licensed twin whose
    /// state changed (a new license, an expiry). Stops when the handle drops.
    pub fn watch_license(&self, every: std::time::Duration) -> BackgroundTask {
        let host = self.clone();
        BackgroundTask(tokio::spawn(async move {
            let mut last: BTreeMap<String, String> = BTreeMap::new();
            let mut first = true;
            loop {
                host.reload_license();
                for twin in host.all_twins() {
                    let status = twin.license_status();
                    if !status.required {
                        continue;
                    }
                    let name = twin.name().to_owned();
                    let changed = last.get(&name) != Some(&status.state);
                    if changed && !first {
                        match &status.message {
                            None => tracing::info!(twin = %name, "license now valid"),
                            Some(why) => {
                                tracing::warn!(twin = %name, state = %status.state, "license no longer valid: {why}")
                            }
                        }
                    }
                    last.insert(name, status.state);
                }
                first = false;
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// The host's license configuration.
    pub fn licensing(&self) -> &license::Licensing {
        &self.inner.licensing
    }

    /// Names of the loaded twins, sorted.
    pub fn twin_names(&self) -> Vec<String> {
        self.inner.default.twin_names()
    }

    /// What each loaded twin says about itself, sorted by name.
    pub fn twins(&self) -> Vec<TwinInfo> {
        self.all_twins().iter().map(|t| t.info().clone()).collect()
    }

    /// Calls a twin in-process, with no socket. `request`'s URI is the path
    /// (and query) the twin sees. A twin that traps or times out answers the
    /// same JSON 500/504 it would over HTTP; only an unknown twin is an `Err`.
    pub async fn handle(
        &self,
        twin: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, Error> {
        let twin = self
            .twin(twin)
            .ok_or_else(|| Error::NoSuchTwin(twin.to_owned()))?;
        Ok(pipeline::call_in_process(&twin, request).await)
    }

    /// Drops one twin's state.
    pub async fn reset(&self, twin: &str) -> Result<(), Error> {
        let twin = self
            .twin(twin)
            .ok_or_else(|| Error::NoSuchTwin(twin.to_owned()))?;
        twin.reset().await?;
        Ok(())
    }

    /// Drops every twin's state (in the default world).
    pub async fn reset_all(&self) -> Result<(), Error> {
        self.inner.default.reset().await?;
        Ok(())
    }

    /// Twin time of the default world, shared by its twins.
    pub fn clock(&self) -> &TwinClock {
        self.inner.default.clock()
    }

    /// Asks whoever serves this host to stop (what `POST /_wt/shutdown`
    /// and `wt-host down` do); see [`Host::shutdown_requested`].
    pub fn request_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves once a shutdown was asked for: `wt-host run` waits for this
    /// beside SIGINT and SIGTERM, then drains.
    pub async fn shutdown_requested(&self) {
        let mut asked = self.inner.shutdown.subscribe();
        let _ = asked.wait_for(|asked| *asked).await;
    }

    /// Which instance allocator the engine is using.
    pub fn allocator(&self) -> Allocator {
        self.inner.runtime.allocator()
    }

    /// The limits every twin runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn body_budget(&self) -> &Arc<limits::BodyBudget> {
        &self.inner.body_budget
    }

    pub(crate) fn outbound_policy(&self) -> &outbound::Policy {
        &self.inner.policy
    }
}
