//! Worlds: sets of twins that share nothing with one another.
//!
//! The host's default world is what `wt-host run` loads and every user got
//! before tenants existed. A tenant is another world, made on request from
//! the default world's twins (`POST /_wt/tenants`): the same compiled code,
//! with its own state, clock, faults, settings, journal and deliveries, so
//! one CI job's `clock advance 30d` or reset never reaches another's. Making
//! one compiles nothing (each twin is a [`Twin::fork`]), and a tenant idle for
//! its time to live is removed, its memory returned once the requests still
//! holding its twins finish.
//!
//! Tenant ids are chosen so a path's first segment is never ambiguous: a
//! tenant may not take a loaded twin's name, nor a twin a live tenant's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::clock::{TwinClock, wall_millis};
use crate::twin::{CallError, Twin};

/// A set of twins with one clock: the default world, or a tenant.
#[derive(Debug)]
pub struct World {
    /// The tenant's id; `None` for the default world.
    id: Option<Arc<str>>,
    clock: TwinClock,
    twins: RwLock<BTreeMap<String, Arc<Twin>>>,
    /// How long a tenant lives without a request.
    ttl: Option<Duration>,
    /// Wall-clock milliseconds (never twin time: moving a tenant's clock
    /// must not expire it).
    created_at: u64,
    last_used: AtomicU64,
    /// The tenant's twins' own ports, once the server opened them.
    ports: Mutex<Option<TenantPorts>>,
}

/// Ports a tenant's twins listen on, and what closes them: the server's
/// listeners stop when `close` is dropped (the tenant's removal).
pub(crate) struct TenantPorts {
    pub addrs: BTreeMap<String, SocketAddr>,
    pub _close: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for TenantPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPorts")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl World {
    /// The host's default world, on the host's clock.
    pub(crate) fn default_world(clock: TwinClock) -> World {
        let now = wall_millis();
        World {
            id: None,
            clock,
            twins: RwLock::default(),
            ttl: None,
            created_at: now,
            last_used: AtomicU64::new(now),
            ports: Mutex::default(),
        }
    }

    /// Records the ports the server opened for this world's twins; they
    /// close when the world is removed.
    pub(crate) fn set_ports(&self, ports: TenantPorts) {
        *self.ports.lock().unwrap_or_else(|p| p.into_inner()) = Some(ports);
    }

    /// The twin's own port, if the server opened one for it.
    pub fn own_port(&self, twin: &str) -> Option<SocketAddr> {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|ports| ports.addrs.get(twin).copied())
    }

    /// The tenant's id (`None`: the default world).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The world's clock; its twins' clocks are layered on it.
    pub fn clock(&self) -> &TwinClock {
        &self.clock
    }

    pub(crate) fn twin(&self, name: &str) -> Option<Arc<Twin>> {
        self.read().get(name).cloned()
    }

    /// Every twin, sorted by name.
    pub(crate) fn twins(&self) -> Vec<Arc<Twin>> {
        self.read().values().cloned().collect()
    }

    /// Names of the twins, sorted.
    pub fn twin_names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// Puts `twin` in (a new twin or a reload's successor); returns false,
    /// changing nothing, when `only_new` and the name is taken.
    pub(crate) fn insert(&self, twin: Arc<Twin>, only_new: bool) -> bool {
        let mut twins = self.twins.write().unwrap_or_else(|p| p.into_inner());
        if only_new && twins.contains_key(twin.name()) {
            return false;
        }
        twins.insert(twin.name().to_owned(), twin);
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Twin>>> {
        self.twins.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every twin back to a clean slate, and the world's clock to real time
    /// for a tenant (the default world's clock is the operator's, moved only
    /// through `/_wt/clock`).
    pub(crate) async fn reset(&self) -> Result<(), CallError> {
        for twin in self.twins() {
            twin.reset().await?;
        }
        if self.id.is_some() {
            self.clock.clear();
        }
        Ok(())
    }

    /// Marks the world used now: a tenant's time to live runs from here.
    pub(crate) fn touch(&self) {
        if self.ttl.is_some() {
            self.last_used.store(wall_millis(), Ordering::Relaxed);
        }
    }

    /// When the tenant is removed if no request comes (wall milliseconds).
    pub fn expires_at_millis(&self) -> Option<u64> {
        let ttl = u64::try_from(self.ttl?.as_millis()).unwrap_or(u64::MAX);
        Some(self.last_used.load(Ordering::Relaxed).saturating_add(ttl))
    }

    /// What the control plane and the embedding API say about a tenant.
    pub fn summary(&self) -> TenantSummary {
        TenantSummary {
            id: self.id.as_deref().unwrap_or_default().to_owned(),
            twins: self.twin_names(),
            ttl_secs: self.ttl.map_or(0, |t| t.as_secs()),
            created_at_millis: self.created_at,
            expires_at_millis: self.expires_at_millis().unwrap_or(0),
        }
    }

    /// Closes the world's own ports and cancels what its twins still have
    /// to deliver.
    async fn close(&self) {
        let ports = self.ports.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(ports);
        for twin in self.twins() {
            twin.outbound().cancel_all().await;
        }
    }
}

/// A tenant, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantSummary {
    pub id: String,
    pub twins: Vec<String>,
    pub ttl_secs: u64,
    pub created_at_millis: u64,
    pub expires_at_millis: u64,
}

/// What a new tenant is made of.
#[derive(Debug, Clone)]
pub struct TenantRequest {
    /// The default world's twins to fork; empty: all of them.
    pub twins: Vec<String>,
    /// Removed after this long without a request.
    pub ttl: Duration,
    /// Its id; one is made up when `None`.
    pub name: Option<String>,
}

impl Default for TenantRequest {
    fn default() -> Self {
        TenantRequest {
            twins: Vec::new(),
            ttl: DEFAULT_TTL,
            name: None,
        }
    }
}

/// A tenant's time to live when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest time to live a tenant may ask for: a forgotten tenant must
/// go away on its own.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a tenant was not made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("no twin named '{0}' is loaded")]
    UnknownTwin(String),
    #[error(
        "{0:?} is not a usable tenant id (1-63 of a-z, 0-9 and '-', starting with a letter or digit)"
    )]
    BadName(String),
    #[error("{0:?} is taken (a live tenant or a loaded twin has that name)")]
    Taken(String),
    #[error(
        "the host has {0} tenants already (--max-tenants); delete one or wait for one to expire"
    )]
    TooMany(usize),
    #[error("ttl must be between 1 s and {} days", MAX_TTL.as_secs() / 86_400)]
    BadTtl,
}

/// The host's tenants, by id.
#[derive(Debug, Default)]
pub struct Tenants {
    worlds: RwLock<BTreeMap<String, Arc<World>>>,
    created: AtomicU64,
    expired: AtomicU64,
}

impl Tenants {
    /// Makes a tenant of `request.twins` forked from `default`.
    pub(crate) fn create(
        &self,
        default: &World,
        request: TenantRequest,
        max: usize,
    ) -> Result<Arc<World>, TenantError> {
        if request.ttl.is_zero() || request.ttl > MAX_TTL {
            return Err(TenantError::BadTtl);
        }
        let wanted = if request.twins.is_empty() {
            default.twins()
        } else {
            let mut wanted = Vec::new();
            for name in &request.twins {
                let twin = default
                    .twin(name)
                    .ok_or_else(|| TenantError::UnknownTwin(name.clone()))?;
                if !wanted.iter().any(|t: &Arc<Twin>| t.name() == name) {
                    wanted.push(twin);
                }
            }
            wanted
        };
        if let Some(name) = &request.name
            && !is_valid_id(name)
        {
            return Err(TenantError::BadName(name.clone()));
        }
        let mut worlds = self.worlds.write().unwrap_or_else(|p| p.into_inner());
        if worlds.len() >= max {
            return Err(TenantError::TooMany(max));
        }
        let id = match request.name {
            Some(name) if worlds.contains_key(&name) || default.contains(&name) => {
                return Err(TenantError::Taken(name));
            }
            Some(name) => name,
            None => loop {
                let id = new_id();
                if !worlds.contains_key(&id) && !default.contains(&id) {
                    break id;
                }
            },
        };
        // Real time, never the default world's clock: moving that must not
        // move a tenant.
        let clock = TwinClock::default();
        let twins = wanted
            .iter()
            .map(|twin| (twin.name().to_owned(), Arc::new(twin.fork(&clock))))
            .collect();
        let now = wall_millis();
        let world = Arc::new(World {
            id: Some(Arc::from(id.as_str())),
            clock,
            twins: RwLock::new(twins),
            ttl: Some(request.ttl),
            created_at: now,
            last_used: AtomicU64::new(now),
            ports: Mutex::default(),
        });
        worlds.insert(id, world.clone());
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(world)
    }

    pub fn get(&self, id: &str) -> Option<Arc<World>> {
        self.worlds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.worlds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Every live tenant, by id.
    pub fn list(&self) -> Vec<Arc<World>> {
        self.worlds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Removes a tenant: new requests no longer find it, requests in flight
    /// finish on the twins they hold, and its pending deliveries are
    /// cancelled.
    pub(crate) async fn remove(&self, id: &str) -> Option<Arc<World>> {
        let world = self
            .worlds
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)?;
        world.close().await;
        Some(world)
    }

    /// Removes a tenant without waiting: what a dropped handle does. Its
    /// ports close at once; its pending deliveries are cancelled on the
    /// runtime, if there is one.
    pub(crate) fn remove_detached(&self, id: &str) {
        let removed = self
            .worlds
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(world) = removed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { world.close().await });
        }
    }

    /// Removes every tenant whose time to live has passed; returns how many.
    pub(crate) async fn reap(&self) -> usize {
        let now = wall_millis();
        let expired: Vec<Arc<World>> = {
            let mut worlds = self.worlds.write().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = worlds
                .iter()
                .filter(|(_, w)| w.expires_at_millis().is_some_and(|at| at <= now))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| worlds.remove(id)).collect()
        };
        for world in &expired {
            tracing::info!(tenant = world.id().unwrap_or_default(), "tenant expired");
            world.close().await;
        }
        self.expired
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        expired.len()
    }

    /// `(live, created, expired)`, for the metrics.
    pub fn counts(&self) -> (usize, u64, u64) {
        let live = self.worlds.read().unwrap_or_else(|p| p.into_inner()).len();
        (
            live,
            self.created.load(Ordering::Relaxed),
            self.expired.load(Ordering::Relaxed),
        )
    }
}

/// Whether `id` can name a tenant: a DNS label (it is one in
/// `Host: <twin>.<tenant>.localhost`), lower case.
pub fn is_valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// A made-up id: `t` and 10 random lower-case base-32 characters.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let mut id = String::with_capacity(11);
    id.push('t');
    id.extend(bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dns_labels() {
        assert!(is_valid_id("ci-job-7"));
        assert!(is_valid_id("7f3a"));
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
        let id = new_id();
        assert!(is_valid_id(&id) && id.len() == 11, "{id}");
    }
}
