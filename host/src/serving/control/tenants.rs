//! `/_wt/tenants`: make, list, show and delete tenants. What a tenant's
//! twins answer to is the rest of the control plane, under
//! `/_wt/tenants/{id}/…` (see `world_control`).

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{Plane, bad_request, twin_urls, unknown_tenant};
use crate::exchange::{error_response, json_response};
use crate::tenancy::{TenantError, TenantRequest, World};

/// `POST /_wt/tenants` body; every field optional (`{}` is all twins for
/// the default hour).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    twins: Option<Vec<String>>,
    /// `"2h"`, `"30m"`, `"90s"`.
    ttl: Option<String>,
    name: Option<String>,
    /// Give each twin a port of its own (default: when the host serves its
    /// twins on their own ports).
    ports: Option<bool>,
}

pub(super) async fn create(ctx: &Plane, body: &[u8]) -> http::Response<Bytes> {
    // No body (or `null`) asks for the defaults.
    let asked: Create = if body.iter().all(u8::is_ascii_whitespace) {
        Create::default()
    } else {
        match serde_json::from_slice::<Option<Create>>(body) {
            Ok(asked) => asked.unwrap_or_default(),
            Err(err) => {
                return bad_request(
                    "invalid_tenant_request",
                    &format!(
                        "expected {{\"twins\": [..], \"ttl\": \"2h\", \"name\": \"..\"}}: {err}"
                    ),
                );
            }
        }
    };
    let ttl = match asked.ttl.as_deref().map(crate::units::parse_duration) {
        None => crate::tenancy::DEFAULT_TTL,
        Some(Ok(ttl)) => ttl,
        Some(Err(err)) => return bad_request("invalid_tenant_request", &format!("ttl: {err}")),
    };
    let opener = match (asked.ports, &ctx.ports) {
        (Some(true), None) => {
            return bad_request(
                "invalid_tenant_request",
                "ports: nothing listens in-process; ask for the tenant without ports",
            );
        }
        (Some(false), _) | (None, None) => None,
        (Some(true), Some(opener)) => Some(opener),
        (None, Some(opener)) => opener.by_default().then_some(opener),
    };
    let request = TenantRequest {
        twins: asked.twins.unwrap_or_default(),
        ttl,
        name: asked.name,
    };
    let world = match ctx.host.create_world(request) {
        Ok(world) => world,
        Err(crate::Error::Tenant(err)) => return tenant_error(&err),
        Err(err) => return bad_request("invalid_tenant_request", &err.to_string()),
    };
    if let Some(opener) = opener
        && let Err(err) = opener.open(ctx, &world)
    {
        // All its ports or no tenant: a half-served tenant would fail later
        // and further from the cause.
        let _ = ctx.host.delete_tenant(world.id().unwrap_or_default()).await;
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "tenant_ports_unavailable",
            &format!("could not open ports for the tenant's twins: {err}"),
            None,
        );
    }
    json_response(StatusCode::CREATED, &tenant_json(ctx, &world))
}

pub(super) fn list(ctx: &Plane) -> http::Response<Bytes> {
    let tenants: Vec<_> = ctx
        .host
        .tenant_registry()
        .list()
        .iter()
        .map(|world| tenant_json(ctx, world))
        .collect();
    json_response(StatusCode::OK, &json!({ "tenants": tenants }))
}

pub(super) fn show(ctx: &Plane, id: &str) -> http::Response<Bytes> {
    match ctx.host.tenant_registry().get(id) {
        Some(world) => json_response(StatusCode::OK, &tenant_json(ctx, &world)),
        None => unknown_tenant(id),
    }
}

pub(super) async fn delete(ctx: &Plane, id: &str) -> http::Response<Bytes> {
    match ctx.host.delete_tenant(id).await {
        Ok(()) => json_response(StatusCode::OK, &json!({ "deleted": id })),
        Err(_) => unknown_tenant(id),
    }
}

/// A tenant and, for each twin, the URLs an SDK is pointed at.
fn tenant_json(ctx: &Plane, world: &World) -> serde_json::Value {
    let summary = world.summary();
    let twins: serde_json::Map<String, serde_json::Value> = summary
        .twins
        .iter()
        .map(|name| {
            let urls = twin_urls(ctx, world, name);
            let base_url = urls["own"]
                .as_str()
                .or(urls["prefixed"].as_str())
                .map(str::to_owned);
            let mut twin = json!({ "base_url": base_url });
            if let (Some(twin), Some(urls)) = (twin.as_object_mut(), urls.as_object()) {
                twin.extend(urls.iter().map(|(k, v)| (format!("{k}_url"), v.clone())));
            }
            (name.clone(), twin)
        })
        .collect();
    json!({
        "id": summary.id,
        "twins": twins,
        "ttl_secs": summary.ttl_secs,
        "created_at_millis": summary.created_at_millis,
        "expires_at_millis": summary.expires_at_millis,
        "control_url": ctx
            .addrs
            .as_ref()
            .map(|a| format!("http://{}/_wt/tenants/{}", a.shared, summary.id)),
    })
}

fn tenant_error(err: &TenantError) -> http::Response<Bytes> {
    let (status, code) = match err {
        TenantError::UnknownTwin(_) => (StatusCode::NOT_FOUND, "unknown_twin"),
        TenantError::BadName(_) | TenantError::BadTtl => {
            (StatusCode::BAD_REQUEST, "invalid_tenant_request")
        }
        TenantError::Taken(_) => (StatusCode::CONFLICT, "tenant_exists"),
        TenantError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_tenants"),
    };
    let mut response = error_response(status, code, &err.to_string(), None);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("60"),
        );
    }
    response
}
