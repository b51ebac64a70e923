//! The embedding API of tenants: make, list, call into, delete and reap
//! them (the worlds themselves are `tenancy`).

use bytes::Bytes;

use crate::pipeline::call_in_process;
use crate::tenancy::Tenants;
use crate::{BackgroundTask, Error, Host, TenantRequest, TenantSummary};

impl Host {
    /// Makes a tenant: a world of its own with copies of the default
    /// world's twins (all, or those named), removed after `ttl` without a
    /// request or by [`Host::delete_tenant`].
    pub fn create_tenant(&self, request: TenantRequest) -> Result<TenantSummary, Error> {
        let world = self.inner.tenants.create(
            &self.inner.default,
            request,
            self.inner.limits.max_tenants,
        )?;
        Ok(world.summary())
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
