//! The PostHog twin: a stateful fake of PostHog's ingestion, feature flag
//! and (a slice of its) management API that the official SDKs talk to
//! unchanged. Every well-formed `phc_…` project key is its own project;
//! every well-formed `phx_…` personal key may manage every project.

use std::sync::LazyLock;

use wt_sdk::{Info, Method, Request, Response, Router, Twin};

pub mod capture_v1;
pub mod cohorts;
pub mod eval;
pub mod flags;
pub mod ingest;
pub mod props;
pub mod wire;

/// PostHog does not version its API; this is the date of the surface
/// `posthog` 7.91 (Python) speaks: `/batch/`, `/flags/?v=4`,
/// `/flags/definitions`.
pub const API_VERSION: &str = "2026-01-01";

pub struct PostHog;

#[wt_sdk::twin]
impl Twin for PostHog {
    fn describe() -> Info {
        Info {
            name: "posthog".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            default_port: 4115,
            license_required: false,
            description: "PostHog: event capture (batch, gzip, forms), persons, feature flags \
                          (remote and local evaluation)."
                .into(),
            settings: Vec::new(),
            idempotency: None,
        }
    }

    fn handle(request: Request) -> Response {
        let origin = request.header("origin").map(str::to_owned);
        if request.method == Method::Options {
            return preflight(&request);
        }
        let response = ROUTER.route(request);
        with_cors(response, origin.as_deref())
    }
}

/// Browsers (posthog-js) call ingestion and `/flags` cross-origin, so
/// PostHog answers preflights and echoes the caller's origin.
fn preflight(request: &Request) -> Response {
    let headers = request
        .header("access-control-request-headers")
        .unwrap_or("content-type")
        .to_owned();
    with_cors(Response::empty(200), request.header("origin"))
        .with_header(
            "access-control-allow-methods",
            "GET, POST, PATCH, PUT, DELETE, OPTIONS",
        )
        .with_header("access-control-allow-headers", headers)
        .with_header("access-control-max-age", "86400")
}

fn with_cors(response: Response, origin: Option<&str>) -> Response {
    match origin {
        Some(o) => response
            .with_header("access-control-allow-origin", o)
            .with_header("access-control-allow-credentials", "true")
            .with_header("vary", "Origin"),
        None => response.with_header("access-control-allow-origin", "*"),
    }
}

/// Adds `pattern` and `pattern/` (PostHog's routes take the trailing slash
/// as optional).
fn both(
    router: Router,
    methods: &[Method],
    bare: &'static str,
    slashed: &'static str,
    handler: wt_sdk::router::Handler,
) -> Router {
    router
        .methods(methods.iter().cloned(), bare, handler)
        .methods(methods.iter().cloned(), slashed, handler)
}

static ROUTER: LazyLock<Router> = LazyLock::new(router);

fn router() -> Router {
    use Method::{Delete, Get, Patch, Post, Put};
    let mut r = Router::new().on_error(wire::render);
    for (bare, slashed) in [
        ("/batch", "/batch/"),
        ("/capture", "/capture/"),
        ("/e", "/e/"),
        ("/i/v0/e", "/i/v0/e/"),
        ("/track", "/track/"),
        ("/engage", "/engage/"),
    ] {
        r = both(r, &[Get, Post], bare, slashed, ingest::capture);
    }
    r = both(
        r,
        &[Post],
        "/i/v1/analytics/events",
        "/i/v1/analytics/events/",
        capture_v1::capture,
    );
    r = both(r, &[Post], "/flags", "/flags/", eval::flags_endpoint);
    r = both(r, &[Post], "/decide", "/decide/", eval::decide);
    r = both(
        r,
        &[Get],
        "/flags/definitions",
        "/flags/definitions/",
        flags::definitions,
    );
    r = both(
        r,
        &[Get],
        "/api/feature_flag/local_evaluation",
        "/api/feature_flag/local_evaluation/",
        flags::definitions,
    );
    for (bare, slashed) in [
        ("/api/projects/{project_id}", "/api/projects/{project_id}/"),
        (
            "/api/environments/{project_id}",
            "/api/environments/{project_id}/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, flags::project);
    }
    for (bare, slashed) in [
        (
            "/api/projects/{project_id}/feature_flags",
            "/api/projects/{project_id}/feature_flags/",
        ),
        (
            "/api/environments/{project_id}/feature_flags",
            "/api/environments/{project_id}/feature_flags/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, flags::list);
        r = both(r, &[Post], bare, slashed, flags::create);
    }
    for (bare, slashed) in [
        (
            "/api/projects/{project_id}/feature_flags/{id}",
            "/api/projects/{project_id}/feature_flags/{id}/",
        ),
        (
            "/api/environments/{project_id}/feature_flags/{id}",
            "/api/environments/{project_id}/feature_flags/{id}/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, flags::retrieve);
        r = both(r, &[Patch, Put], bare, slashed, flags::update);
        r = both(r, &[Delete], bare, slashed, flags::destroy);
    }
    r = both(
        r,
        &[Get],
        "/api/projects/{project_id}/feature_flags/{id}/remote_config",
        "/api/projects/{project_id}/feature_flags/{id}/remote_config/",
        flags::remote_config,
    );
    for (bare, slashed, one, one_slashed) in [
        (
            "/api/projects/{project_id}/cohorts",
            "/api/projects/{project_id}/cohorts/",
            "/api/projects/{project_id}/cohorts/{id}",
            "/api/projects/{project_id}/cohorts/{id}/",
        ),
        (
            "/api/environments/{project_id}/cohorts",
            "/api/environments/{project_id}/cohorts/",
            "/api/environments/{project_id}/cohorts/{id}",
            "/api/environments/{project_id}/cohorts/{id}/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, cohorts::list);
        r = both(r, &[Post], bare, slashed, cohorts::create);
        r = both(r, &[Get], one, one_slashed, cohorts::retrieve);
        r = both(r, &[Patch, Put], one, one_slashed, cohorts::update);
        r = both(r, &[Delete], one, one_slashed, cohorts::destroy);
    }
    r = both(
        r,
        &[Patch],
        "/api/projects/{project_id}/cohorts/{id}/add_persons_to_static_cohort",
        "/api/projects/{project_id}/cohorts/{id}/add_persons_to_static_cohort/",
        cohorts::add_persons,
    );
    for (bare, slashed, one, one_slashed) in [
        (
            "/api/projects/{project_id}/events",
            "/api/projects/{project_id}/events/",
            "/api/projects/{project_id}/events/{id}",
            "/api/projects/{project_id}/events/{id}/",
        ),
        (
            "/api/environments/{project_id}/events",
            "/api/environments/{project_id}/events/",
            "/api/environments/{project_id}/events/{id}",
            "/api/environments/{project_id}/events/{id}/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, ingest::list_events);
        r = both(r, &[Get], one, one_slashed, ingest::get_event);
    }
    for (bare, slashed, one, one_slashed) in [
        (
            "/api/projects/{project_id}/persons",
            "/api/projects/{project_id}/persons/",
            "/api/projects/{project_id}/persons/{id}",
            "/api/projects/{project_id}/persons/{id}/",
        ),
        (
            "/api/environments/{project_id}/persons",
            "/api/environments/{project_id}/persons/",
            "/api/environments/{project_id}/persons/{id}",
            "/api/environments/{project_id}/persons/{id}/",
        ),
    ] {
        r = both(r, &[Get], bare, slashed, ingest::list_persons);
        r = both(r, &[Get], one, one_slashed, ingest::get_person);
        r = both(r, &[Delete], one, one_slashed, ingest::delete_person);
    }
    r
}

#[cfg(test)]
mod tests;
