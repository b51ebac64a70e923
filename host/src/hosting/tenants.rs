//! The embedding API of tenants: make, list, call into, delete and reap
//! them (the worlds themselves are `tenancy`).

use std::sync::Arc;

use bytes::Bytes;

use crate::pipeline::call_in_process;
use crate::tenancy::{Tenants, World};
use crate::{BackgroundTask, Error, Host, TenantRequest, TenantSummary, TwinClock};

/// A tenant made through the embedding API ([`Host::tenant`]): a world of
/// its own for one test, removed when the handle drops.
///
/// ```no_run
/// # async fn demo(host: wt_host::Host) -> Result<(), wt_host::Error> {
/// let tenant = host.tenant(wt_host::TenantRequest::default())?;
/// let request = http::Request::post("/counter").body(bytes::Bytes::new()).unwrap();
/// let response = tenant.handle("hello", request).await?;
/// assert_eq!(response.status(), 200); // the default world's counter is untouched
/// # Ok(()) }
/// ```
pub struct Tenant {
    host: Host,
    world: Arc<World>,
    id: String,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant").field("id", &self.id).finish()
    }
}

impl Tenant {
    /// Its id: `/_wt/tenants/{id}/…`, `/{id}/{twin}/…` when served.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Calls one of its twins in-process, as [`Host::handle`] does.
    pub async fn handle(
        &self,
        twin: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, Error> {
        self.host.handle_in(&self.id, twin, request).await
    }

    /// Every twin of the tenant back to a clean slate, and its clock to
    /// real time.
    pub async fn reset(&self) -> Result<(), Error> {
        self.world.reset().await?;
        Ok(())
    }

    /// The tenant's clock: its twins' time, apart from every other world's.
    pub fn clock(&self) -> &TwinClock {
        self.world.clock()
    }

    /// What the control plane says about it.
    pub fn summary(&self) -> TenantSummary {
        self.world.summary()
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        self.host.inner.tenants.remove_detached(&self.id);
    }
}

impl Host {
    /// Makes a tenant and returns a handle that removes it when dropped:
    /// the embedding API's way to give each test a world of its own.
    pub fn tenant(&self, request: TenantRequest) -> Result<Tenant, Error> {
        let world = self.create_world(request)?;
        Ok(Tenant {
            host: self.clone(),
            id: world.id().unwrap_or_default().to_owned(),
            world,
        })
    }

    /// Makes a tenant: a world of its own with copies of the default
    /// world's twins (all, or those named), removed after `ttl` without a
    /// request or by [`Host::delete_tenant`].
    pub fn create_tenant(&self, request: TenantRequest) -> Result<TenantSummary, Error> {
        Ok(self.create_world(request)?.summary())
    }

    /// The new tenant's world itself, for the control plane and handles.
    pub(crate) fn create_world(&self, request: TenantRequest) -> Result<Arc<World>, Error> {
        let max = self.inner.limits.max_tenants;
        Ok(self
            .inner
            .tenants
            .create(&self.inner.default, request, max)?)
    }

    /// Removes a tenant; requests in flight finish first, on its twins.
    pub async fn delete_tenant(&self, id: &str) -> Result<(), Error> {
        match self.inner.tenants.remove(id).await {
            Some(_) => Ok(()),
            None => Err(Error::NoSuchTenant(id.to_owned())),
        }
    }

    /// The live tenants, by id.
    pub fn tenants(&self) -> Vec<TenantSummary> {
        self.inner
            .tenants
            .list()
            .iter()
            .map(|w| w.summary())
            .collect()
    }

    /// Calls a tenant's twin in-process, as [`Host::handle`] does a twin of
    /// the default world.
    pub async fn handle_in(
        &self,
        tenant: &str,
        twin: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, Error> {
        let world = self
            .inner
            .tenants
            .get(tenant)
            .ok_or_else(|| Error::NoSuchTenant(tenant.to_owned()))?;
        world.touch();
        let twin = world
            .twin(twin)
            .ok_or_else(|| Error::NoSuchTwin(twin.to_owned()))?;
        Ok(call_in_process(&twin, request).await)
    }

    /// Removes the tenants whose time to live has passed, every `every`,
    /// until the handle drops (`serve` starts one).
    pub fn reap_tenants(&self, every: std::time::Duration) -> BackgroundTask {
        let host = self.clone();
        BackgroundTask(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                host.inner.tenants.reap().await;
            }
        }))
    }

    pub(crate) fn tenant_registry(&self) -> &Tenants {
        &self.inner.tenants
    }
}
