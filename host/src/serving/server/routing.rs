//! Which twin, or the control plane, a request on the shared listener is
//! for: `/{twin}/…`, `/{tenant}/{twin}/…`, `Host: {twin}[.{tenant}].localhost`,
//! the WonderTwin-style `/admin/*` aliases on a twin's own port, and the
//! admin token.

use super::*;
use crate::tenancy::World;

/// Whether the request carries the admin token, compared in constant time
/// so the comparison leaks nothing about how much of a guess was right.
pub(super) fn bearer_matches(parts: &http::request::Parts, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// WonderTwin served its control plane at `/admin/*` on each twin's own
/// port; those paths keep working there, as aliases of `/_wt/` for that twin
/// (or, on a tenant twin's port, for that tenant's twin).
pub(super) fn admin_alias(
    tenant: Option<&str>,
    twin: &str,
    parts: &http::request::Parts,
) -> Option<http::request::Parts> {
    let rest = parts
        .uri
        .path()
        .strip_prefix("/admin/")?
        .trim_end_matches('/');
    let target = match rest {
        // That twin's health, as WonderTwin's per-twin binary reported.
        "health" => format!("twins/{twin}/health"),
        "reset" => format!("twins/{twin}/reset"),
        "state" => format!("twins/{twin}/state"),
        "config" | "quirks" => format!("twins/{twin}/config"),
        "requests" => format!("twins/{twin}/requests"),
        "faults" | "fault" => format!("twins/{twin}/faults"),
        "webhooks" => format!("twins/{twin}/outbound"),
        "webhooks/flush" => format!("twins/{twin}/outbound/flush"),
        // A WonderTwin twin moved its own time; so does the alias.
        "time" => format!("twins/{twin}/clock"),
        "time/advance" => format!("twins/{twin}/clock/advance"),
        "time/freeze" => format!("twins/{twin}/clock/freeze"),
        "time/unfreeze" => format!("twins/{twin}/clock/unfreeze"),
        "time/reset" => format!("twins/{twin}/clock/reset"),
        _ => return None,
    };
    // Only an alias pays for the tenant's part of the path.
    let world = tenant.map_or_else(String::new, |id| format!("tenants/{id}/"));
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{CONTROL_PREFIX}/{world}{target}?{query}"),
        None => format!("{CONTROL_PREFIX}/{world}{target}"),
    };
    let mut aliased = parts.clone();
    aliased.uri = path_and_query.parse().ok()?;
    Some(aliased)
}

pub(super) enum Target {
    /// A twin, and the path it sees.
    Twin(Arc<Twin>, String),
    Control,
    /// The host answers itself (the index, an unknown twin).
    Answer(http::Response<Bytes>),
}

/// `Host: <twin>.localhost` (or `<twin>.<tenant>.localhost`) wins;
/// otherwise the first path segment names a twin of the default world, or
/// a tenant whose twin the second segment names, and the rest of the path
/// is what the twin sees. Tenant ids never equal twin names, so the first
/// segment is never ambiguous.
pub(super) fn route_shared(ctx: &Ctx, parts: &http::request::Parts) -> Target {
    let path = parts.uri.path();
    if let Some((twin, tenant)) = host_labels(parts, ctx.caller.domain.as_deref()) {
        return match tenant {
            None => twin_of(&ctx.plane.host.default_world(), twin, path.to_owned()),
            Some(id) => match ctx.plane.host.tenant_registry().get(id) {
                Some(world) => twin_of(&world, twin, path.to_owned()),
                None => Target::Answer(control::unknown_tenant(id)),
            },
        };
    }
    if path == CONTROL_PREFIX || path.starts_with("/_wt/") {
        return Target::Control;
    }
    let rest = path.trim_start_matches('/');
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Target::Answer(json_response(
            StatusCode::OK,
            &control::twins_json(&ctx.plane, &ctx.plane.host.default_world()),
        ));
    }
    if let Some(twin) = ctx.plane.host.twin(name) {
        return Target::Twin(twin, format!("/{tail}"));
    }
    let Some(world) = ctx.plane.host.tenant_registry().get(name) else {
        return Target::Answer(control::unknown_twin(&ctx.plane, name));
    };
    let (twin, tail) = tail.split_once('/').unwrap_or((tail, ""));
    if twin.is_empty() {
        world.touch();
        return Target::Answer(json_response(
            StatusCode::OK,
            &control::twins_json(&ctx.plane, &world),
        ));
    }
    twin_of(&world, twin, format!("/{tail}"))
}

/// `name` in `world`, or the host's answer that it has none.
pub(super) fn twin_of(world: &World, name: &str, path: String) -> Target {
    world.touch();
    match world.twin(name) {
        Some(twin) => Target::Twin(twin, path),
        None => Target::Answer(control::unknown_twin_in(world, name)),
    }
}

/// The `<twin>` and `<tenant>` of `Host: <twin>.localhost[:port]` or
/// `Host: <twin>.<tenant>.localhost[:port]` (or under `domain`), if that is
/// the form.
fn host_labels<'a>(
    parts: &'a http::request::Parts,
    domain: Option<&str>,
) -> Option<(&'a str, Option<&'a str>)> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let labels = strip_domain(host, "localhost")
        .or_else(|| domain.and_then(|domain| strip_domain(host, domain)))?;
    let (twin, tenant) = match labels.split_once('.') {
        None => (labels, None),
        Some((twin, tenant)) if !tenant.contains('.') => (twin, Some(tenant)),
        Some(_) => return None,
    };
    let empty = twin.is_empty() || tenant.is_some_and(str::is_empty);
    (!empty).then_some((twin, tenant))
}

/// `host` without `.{domain}` at its end (any case), if it ends so.
fn strip_domain<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let cut = host.len().checked_sub(domain.len() + 1)?;
    if !host.is_char_boundary(cut) {
        return None;
    }
    let (labels, tail) = host.split_at(cut);
    (tail.as_bytes()[0] == b'.' && tail[1..].eq_ignore_ascii_case(domain)).then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::get(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn admin_paths_alias_the_control_plane_for_that_twin() {
        let alias =
            |uri: &str| admin_alias(None, "stripe", &parts(uri, None)).map(|p| p.uri.to_string());
        assert_eq!(
            alias("/admin/reset").as_deref(),
            Some("/_wt/twins/stripe/reset")
        );
        assert_eq!(
            alias("/admin/requests?method=POST").as_deref(),
            Some("/_wt/twins/stripe/requests?method=POST")
        );
        assert_eq!(
            alias("/admin/webhooks/flush").as_deref(),
            Some("/_wt/twins/stripe/outbound/flush")
        );
        assert_eq!(
            alias("/admin/time/advance").as_deref(),
            Some("/_wt/twins/stripe/clock/advance")
        );
        assert_eq!(
            alias("/admin/quirks").as_deref(),
            Some("/_wt/twins/stripe/config")
        );
        assert_eq!(
            admin_alias(Some("ci-1"), "stripe", &parts("/admin/reset", None))
                .map(|p| p.uri.to_string())
                .as_deref(),
            Some("/_wt/tenants/ci-1/twins/stripe/reset")
        );
        assert_eq!(alias("/admin/unknown"), None);
        assert_eq!(alias("/v1/customers"), None);
    }

    #[test]
    fn host_labels_read_twin_and_tenant_dot_localhost_with_or_without_port() {
        let labels = |host: Option<&str>| {
            host_labels(&parts("/x", host), Some("twins.example.internal"))
                .map(|(t, n)| (t.to_owned(), n.map(str::to_owned)))
        };
        let twin = |t: &str| Some((t.to_owned(), None));
        let tenant = |t: &str, n: &str| Some((t.to_owned(), Some(n.to_owned())));
        assert_eq!(labels(Some("stripe.localhost:4100")), twin("stripe"));
        assert_eq!(labels(Some("stripe.localhost")), twin("stripe"));
        assert_eq!(
            labels(Some("stripe.ci-7.localhost:4100")),
            tenant("stripe", "ci-7")
        );
        assert_eq!(labels(Some("localhost:4100")), None);
        assert_eq!(labels(Some("127.0.0.1:4100")), None);
        assert_eq!(labels(Some("a.b.c.localhost")), None);
        assert_eq!(
            labels(Some("stripe.twins.example.internal")),
            twin("stripe")
        );
        assert_eq!(
            labels(Some("stripe.ci-7.TWINS.example.internal:80")),
            tenant("stripe", "ci-7")
        );
        assert_eq!(labels(Some("twins.example.internal")), None);
        assert_eq!(labels(Some("stripe.example.internal")), None);
        assert_eq!(labels(Some(".b.localhost")), None);
        assert_eq!(labels(Some("a..localhost")), None);
        assert_eq!(labels(None), None);
    }
}
